// The facts every sandbox's child needs, cold or forked, computed once from a spec by plan_setup:
// ids, hostname, control fd number, rlimits, writable places and filter lengths. Fixed-size and
// allocation-free, so that a cold child reads it after clone and a fork request carries it as is.
#pragma once

#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "sandbox/error.h"
#include "sandbox/mounts.h"
#include "sandbox/rlimits.h"
#include "sandbox/seccomp.h"
#include "sandbox/spec.h"

namespace airlock::sandbox {

// A sized tmpfs the program may write to, as the supervisor plans it.
struct WritablePlace {
  std::string path;  // absolute and clean, inside the sandbox
  uint64_t size_bytes = 0;
  uint32_t mode = 01777;
};

// The working dir first (0700), then /tmp and /dev/shm (1777), then the spec's own tmpfs (1777).
// A cold sandbox binds the working dir from a host tmpfs of that size (Supervisor::
// create_workspace) and mounts the rest (plan_mounts); a forked one mounts all of them. A setup
// error when a path is not absolute and clean, or is "/".
Expected<std::vector<WritablePlace>> writable_places(const Spec& spec);

// A writable place as a SetupPlan carries it.
struct SetupTmpfs {
  char path[256] = {};
  uint64_t size_bytes = 0;
  uint32_t mode = 01777;
};

// What a policy may ask for, so that every sandbox it makes has room in its plan: tmpfs mounts
// besides the working dir, /tmp and /dev/shm, and the length of a tmpfs path.
inline constexpr size_t kMaxPolicyTmpfs = 13;
inline constexpr size_t kMaxTmpfsPathBytes = sizeof(SetupTmpfs::path) - 1;

// The most filter instructions a plan may carry: the kernel's own limit per filter (BPF_MAXINSNS).
inline constexpr uint32_t kMaxFilterLength = 4096;

struct SetupPlan {
  static constexpr int kMaxWritable = 3 + kMaxPolicyTmpfs;
  static constexpr int kMaxRlimits = 8;
  uint32_t uid = 1000, gid = 1000;  // inside the sandbox
  // Where the program-to-be keeps the control socket: at or above its RLIMIT_NOFILE.
  int32_t control_fd_number = 256;
  char hostname[HOST_NAME_MAX + 1] = {};
  uint32_t writable_count = 0;
  SetupTmpfs writable[kMaxWritable];  // as writable_places lists them: writable[0] is the workdir
  uint32_t rlimit_count = 0;
  RlimitSetting rlimits[kMaxRlimits];
  uint32_t policy_length = 0;  // sock_filter instructions of SeccompFilters::policy_program
  uint32_t floor_length = 0;   // and of floor_program
  // Spec::fork_server: the child installs the floor filter only, and reports no listener.
  bool zygote = false;
  uint32_t gateway_port_count = 0;  // Spec::gateway_ports
  uint16_t gateway_ports[kMaxGatewayPorts] = {};
};

// Where the control socket goes for these limits: at the program's RLIMIT_NOFILE (so it cannot
// open an fd there), and never below 4 (0-3 are the program's). The filters are compiled for it.
int control_fd_number_for(const Limits& limits);

// The plan for spec, with filters compiled for control_fd_number_for(spec.limits). A setup error
// when a part does not fit the fixed-size plan (hostname, a path, too many places or rlimits, a
// filter over kMaxFilterLength).
Expected<SetupPlan> plan_setup(const Spec& spec, const SandboxIdentity& identity,
                               const SeccompFilters& filters);

}  // namespace airlock::sandbox
