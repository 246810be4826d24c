#include "sandbox/systemd_scope.h"

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

struct BusCloser {
  void operator()(sd_bus* bus) const { sd_bus_flush_close_unref(bus); }
};
struct MessageUnref {
  void operator()(sd_bus_message* message) const { sd_bus_message_unref(message); }
};
using Bus = std::unique_ptr<sd_bus, BusCloser>;
using Message = std::unique_ptr<sd_bus_message, MessageUnref>;

// The system bus, or (as root, where no bus daemon runs) systemd's own private socket, which is
// what systemctl falls back to as well.
Expected<Bus> connect_to_systemd() {
  sd_bus* raw = nullptr;
  int r = sd_bus_open_system(&raw);
  if (r >= 0) return Bus(raw);
  if (::geteuid() == 0) {
    sd_bus* direct = nullptr;
    if (sd_bus_new(&direct) >= 0) {
      Bus bus(direct);
      if (sd_bus_set_address(direct, "unix:path=/run/systemd/private") >= 0 &&
          sd_bus_start(direct) >= 0) {
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
  auto bus = connect_to_systemd();
  if (!bus) return bus.error();

  // StartTransientUnit(name, mode, properties a(sv), auxiliary units a(sa(sv))).
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_call(bus->get(), &raw, "org.freedesktop.systemd1",
                                         "/org/freedesktop/systemd1",
                                         "org.freedesktop.systemd1.Manager", "StartTransientUnit");
  if (r < 0) return SetupError{"D-Bus: making the StartTransientUnit call", -r};
  Message call(raw);
  const uint32_t pid = static_cast<uint32_t>(::getpid());
  if ((r = sd_bus_message_append(raw, "ss", unit.c_str(), "fail")) < 0 ||
      (r = sd_bus_message_open_container(raw, 'a', "(sv)")) < 0 ||
      (r = sd_bus_message_append(raw, "(sv)", "Description", "s", "airlock: sandbox supervisor")) <
          0 ||
      (r = sd_bus_message_append(raw, "(sv)", "PIDs", "au", 1, pid)) < 0 ||
      // Delegate=yes: airlock may make cgroups below the scope and enable controllers there.
      (r = sd_bus_message_append(raw, "(sv)", "Delegate", "b", 1)) < 0 ||
      // Gone once its last process exits, even if that exit was a failure.
      (r = sd_bus_message_append(raw, "(sv)", "CollectMode", "s", "inactive-or-failed")) < 0 ||
      (r = sd_bus_message_close_container(raw)) < 0 ||
      (r = sd_bus_message_append(raw, "a(sa(sv))", 0)) < 0) {
    return SetupError{"D-Bus: building the StartTransientUnit call", -r};
  }
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  r = sd_bus_call(bus->get(), raw, kCallTimeoutUsec, &error, &reply);
  Message reply_owner(reply);
  if (r < 0) {
    std::string why = error.message != nullptr ? error.message : "";
    sd_bus_error_free(&error);
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
