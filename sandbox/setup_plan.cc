#include "sandbox/setup_plan.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstring>

namespace airlock::sandbox {
namespace {

bool copy_text(char* destination, size_t size, const std::string& text) {
  if (text.size() >= size || text.find('\0') != std::string::npos) return false;
  std::memcpy(destination, text.c_str(), text.size() + 1);
  return true;
}

}  // namespace

Expected<std::vector<WritablePlace>> writable_places(const Spec& spec) {
  std::vector<WritablePlace> places = {
      {spec.filesystem.workdir, spec.limits.workdir_size_bytes, 0700},
      {"/tmp", spec.limits.tmp_size_bytes, 01777},
      {"/dev/shm", spec.limits.shm_size_bytes, 01777}};
  if (!is_clean_absolute_path(spec.filesystem.workdir) || spec.filesystem.workdir == "/") {
    return SetupError{
        "workdir \"" + spec.filesystem.workdir + "\" must be an absolute path below /", 0};
  }
  for (const Tmpfs& extra : spec.filesystem.tmpfs) {
    if (!is_clean_absolute_path(extra.sandbox_path) || extra.sandbox_path == "/") {
      return SetupError{"tmpfs \"" + extra.sandbox_path + "\": path must be absolute", 0};
    }
    places.push_back({extra.sandbox_path, extra.size_bytes, 01777});
  }
  return places;
}

int control_fd_number_for(const Limits& limits) {
  return static_cast<int>(std::max<uint32_t>(limits.max_open_files, 4));
}

Expected<SetupPlan> plan_setup(const Spec& spec, const SandboxIdentity& identity,
                               const SeccompFilters& filters) {
  SetupPlan plan;
  plan.uid = identity.uid;
  plan.gid = identity.gid;
  plan.control_fd_number = control_fd_number_for(spec.limits);
  // The control socket goes to that number, which the kernel allows only below our own limit.
  if (struct rlimit files{}; ::getrlimit(RLIMIT_NOFILE, &files) == 0 &&
                             static_cast<rlim_t>(plan.control_fd_number) >= files.rlim_cur) {
    return SetupError{"open_files " + std::to_string(spec.limits.max_open_files) +
                          " is more than this host lets airlock's processes open (" +
                          std::to_string(files.rlim_cur) + "); lower the policy's open_files",
                      0};
  }
  plan.zygote = spec.fork_server;
  if (!copy_text(plan.hostname, sizeof plan.hostname, spec.hostname)) {
    return SetupError{"hostname \"" + spec.hostname + "\" is longer than " +
                          std::to_string(HOST_NAME_MAX) + " bytes",
                      0};
  }
  auto places = writable_places(spec);
  if (!places) return places.error();
  if (places->size() > SetupPlan::kMaxWritable) {
    return SetupError{"too many tmpfs mounts: at most " +
                          std::to_string(kMaxPolicyTmpfs) +
                          " besides /tmp and /dev/shm",
                      0};
  }
  for (const WritablePlace& place : places.value()) {
    SetupTmpfs& entry = plan.writable[plan.writable_count++];
    if (!copy_text(entry.path, sizeof entry.path, place.path)) {
      return SetupError{"tmpfs \"" + place.path + "\": path longer than " +
                            std::to_string(sizeof entry.path - 1) + " bytes",
                        0};
    }
    entry.size_bytes = place.size_bytes;
    entry.mode = place.mode;
  }
  const std::vector<RlimitSetting> rlimits = plan_rlimits(spec.limits);
  if (rlimits.size() > SetupPlan::kMaxRlimits) return SetupError{"too many rlimits", 0};
  for (const RlimitSetting& setting : rlimits) plan.rlimits[plan.rlimit_count++] = setting;
  if (filters.policy_program.size() > kMaxFilterLength ||
      filters.floor_program.size() > kMaxFilterLength) {
    return SetupError{
        "seccomp filter longer than " + std::to_string(kMaxFilterLength) + " instructions", 0};
  }
  // A fork server's own spec may name gateway ports, for the /etc/resolv.conf its children see;
  // the sockets are its children's, each in its own namespace, never its own.
  for (uint16_t port : spec.fork_server ? std::vector<uint16_t>{} : spec.gateway_ports) {
    if (port == 0) return SetupError{"gateway port 0", 0};
    const uint16_t* begin = plan.gateway_ports;
    const uint16_t* end = begin + plan.gateway_port_count;
    if (std::find(begin, end, port) != end) continue;
    if (plan.gateway_port_count == kMaxGatewayPorts) {
      return SetupError{"more than " + std::to_string(kMaxGatewayPorts) + " gateway ports", 0};
    }
    plan.gateway_ports[plan.gateway_port_count++] = port;
  }
  plan.policy_length = static_cast<uint32_t>(filters.policy_program.size());
  plan.floor_length = static_cast<uint32_t>(filters.floor_program.size());
  return plan;
}

}  // namespace airlock::sandbox
