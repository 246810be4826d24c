#include "sandbox/systemd_scope.h"

#include <dlfcn.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>

#include "sandbox/cgroup.h"
#include "sandbox/unique_fd.h"

namespace airlock::sandbox {
namespace {

constexpr uint64_t kCallTimeoutUsec = 10'000'000;
constexpr auto kMoveTimeout = std::chrono::seconds(5);
constexpr const char* kLibsystemd = "libsystemd.so.0";

// libsystemd is opened here, when a scope is asked for, not linked: as a NEEDED library it and the
// six it pulls in (libgcrypt, liblzma, libzstd, liblz4, libcap, libgpg-error) were mapped and
// relocated at every start of `airlock`, ~2 ms of each `airlock run` (docs/benchmarks.md), and
// again in every interpreter that loads libairlock_fork.so. The types come from the header, so a
// signature that does not match sd-bus.h does not compile.
struct SdBus {
  decltype(&::sd_bus_open_system) open_system = nullptr;
  decltype(&::sd_bus_new) bus_new = nullptr;
  decltype(&::sd_bus_set_address) set_address = nullptr;
  decltype(&::sd_bus_start) start = nullptr;
  decltype(&::sd_bus_flush_close_unref) flush_close_unref = nullptr;
  decltype(&::sd_bus_message_new_method_call) message_new_method_call = nullptr;
  decltype(&::sd_bus_message_unref) message_unref = nullptr;
  decltype(&::sd_bus_message_append) message_append = nullptr;
  decltype(&::sd_bus_message_open_container) message_open_container = nullptr;
  decltype(&::sd_bus_message_close_container) message_close_container = nullptr;
  decltype(&::sd_bus_call) call = nullptr;
  decltype(&::sd_bus_error_free) error_free = nullptr;
};

template <typename F>
bool resolve(void* library, const char* name, F& out) {
  out = reinterpret_cast<F>(::dlsym(library, name));
  return out != nullptr;
}

// The library's functions, loaded once per process (never unloaded); an error if it is missing.
Expected<const SdBus*> sd_bus_library() {
  static const Expected<const SdBus*> loaded = []() -> Expected<const SdBus*> {
    void* library = ::dlopen(kLibsystemd, RTLD_NOW | RTLD_LOCAL);
    if (library == nullptr) {
      const char* why = ::dlerror();
      return SetupError{std::string("loading ") + kLibsystemd + " to speak D-Bus to systemd" +
                            (why != nullptr ? std::string(": ") + why : std::string()),
                        0};
    }
    static SdBus bus;
    if (!resolve(library, "sd_bus_open_system", bus.open_system) ||
        !resolve(library, "sd_bus_new", bus.bus_new) ||
        !resolve(library, "sd_bus_set_address", bus.set_address) ||
        !resolve(library, "sd_bus_start", bus.start) ||
        !resolve(library, "sd_bus_flush_close_unref", bus.flush_close_unref) ||
        !resolve(library, "sd_bus_message_new_method_call", bus.message_new_method_call) ||
        !resolve(library, "sd_bus_message_unref", bus.message_unref) ||
        !resolve(library, "sd_bus_message_append", bus.message_append) ||
        !resolve(library, "sd_bus_message_open_container", bus.message_open_container) ||
        !resolve(library, "sd_bus_message_close_container", bus.message_close_container) ||
        !resolve(library, "sd_bus_call", bus.call) ||
        !resolve(library, "sd_bus_error_free", bus.error_free)) {
      return SetupError{std::string(kLibsystemd) + " lacks an sd-bus function airlock calls", 0};
    }
    return &bus;
  }();
  return loaded;
}

struct BusCloser {
  const SdBus* sd;
  void operator()(sd_bus* bus) const { sd->flush_close_unref(bus); }
};
struct MessageUnref {
  const SdBus* sd;
  void operator()(sd_bus_message* message) const { sd->message_unref(message); }
};
using Bus = std::unique_ptr<sd_bus, BusCloser>;
using Message = std::unique_ptr<sd_bus_message, MessageUnref>;

// The system bus, or (as root, where no bus daemon runs) systemd's own private socket, which is
// what systemctl falls back to as well.
Expected<Bus> connect_to_systemd(const SdBus& sd) {
  sd_bus* raw = nullptr;
  int r = sd.open_system(&raw);
  if (r >= 0) return Bus(raw, BusCloser{&sd});
  if (::geteuid() == 0) {
    sd_bus* direct = nullptr;
    if (sd.bus_new(&direct) >= 0) {
      Bus bus(direct, BusCloser{&sd});
      if (sd.set_address(direct, "unix:path=/run/systemd/private") >= 0 &&
          sd.start(direct) >= 0) {
        return bus;
      }
    }
  }
  return SetupError{"connecting to systemd over D-Bus", -r};
}

bool in_unit(const std::string& unit) {
  auto text = read_file("/proc/self/cgroup");
  if (!text) return false;
  const std::string own = own_cgroup_path(text.value(), "");
  return own.size() > unit.size() &&
         own.compare(own.size() - unit.size(), unit.size(), unit) == 0 &&
         own[own.size() - unit.size() - 1] == '/';
}

}  // namespace

Status move_into_systemd_scope(const std::string& unit) {
  if (::access("/run/systemd/system", F_OK) != 0) {
    return SetupError{
        "no systemd runs here to ask for a delegated scope (/run/systemd/system is "
        "missing)",
        0};
  }
  auto library = sd_bus_library();
  if (!library) return library.error();
  const SdBus& sd = *library.value();
  auto bus = connect_to_systemd(sd);
  if (!bus) return bus.error();

  // StartTransientUnit(name, mode, properties a(sv), auxiliary units a(sa(sv))).
  sd_bus_message* raw = nullptr;
  int r = sd.message_new_method_call(bus->get(), &raw, "org.freedesktop.systemd1",
                                     "/org/freedesktop/systemd1",
                                     "org.freedesktop.systemd1.Manager", "StartTransientUnit");
  if (r < 0) return SetupError{"D-Bus: making the StartTransientUnit call", -r};
  Message call(raw, MessageUnref{&sd});
  const uint32_t pid = static_cast<uint32_t>(::getpid());
  if ((r = sd.message_append(raw, "ss", unit.c_str(), "fail")) < 0 ||
      (r = sd.message_open_container(raw, 'a', "(sv)")) < 0 ||
      (r = sd.message_append(raw, "(sv)", "Description", "s", "airlock: sandbox supervisor")) <
          0 ||
      (r = sd.message_append(raw, "(sv)", "PIDs", "au", 1, pid)) < 0 ||
      // Delegate=yes: airlock may make cgroups below the scope and enable controllers there.
      (r = sd.message_append(raw, "(sv)", "Delegate", "b", 1)) < 0 ||
      // Gone once its last process exits, even if that exit was a failure.
      (r = sd.message_append(raw, "(sv)", "CollectMode", "s", "inactive-or-failed")) < 0 ||
      (r = sd.message_close_container(raw)) < 0 ||
      (r = sd.message_append(raw, "a(sa(sv))", 0)) < 0) {
    return SetupError{"D-Bus: building the StartTransientUnit call", -r};
  }
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  r = sd.call(bus->get(), raw, kCallTimeoutUsec, &error, &reply);
  Message reply_owner(reply, MessageUnref{&sd});
  if (r < 0) {
    std::string why = error.message != nullptr ? error.message : "";
    sd.error_free(&error);
    return SetupError{"systemd did not start the scope " + unit + (why.empty() ? "" : ": " + why),
                      why.empty() ? -r : 0};
  }
  // The call returns once the job is queued; the move itself follows shortly after.
  const auto deadline = std::chrono::steady_clock::now() + kMoveTimeout;
  while (!in_unit(unit)) {
    if (std::chrono::steady_clock::now() > deadline) {
      return SetupError{"systemd started " + unit + " but did not move airlock into it", 0};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return {};
}

}  // namespace airlock::sandbox
