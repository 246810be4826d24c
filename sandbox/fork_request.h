// The request a supervisor sends a fork server's zygote for one forked sandbox (fork_child.h has
// the children's steps): a fixed-size plan, so that the zygote reads it without allocating.
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <cstdint>

#include "sandbox/error.h"
#include "sandbox/rlimits.h"
#include "sandbox/seccomp.h"
#include "sandbox/spec.h"

namespace airlock::sandbox {

struct ForkTmpfs {
  char path[128] = {};  // absolute, inside the sandbox
  uint64_t size_bytes = 0;
  uint32_t mode = 01777;
};

// The zygote's RLIMIT_NOFILE must be above control_fd_number (the children's own limit), so that
// B can put its control socket there before lowering the limit.
//
// Sent on the zygote's fork socket with five fds: the child's stdin (read end), stdout and
// stderr (write ends), the control channel that becomes its fd 3 (write end), and its end of the
// control socket. The two filter programs follow the header, policy first.
struct ForkRequest {
  static constexpr uint32_t kMagic = 0x61726b31;  // "ark1"
  static constexpr int kFdCount = 5;
  static constexpr int kMaxTmpfs = 8;
  static constexpr int kMaxRlimits = 8;
  uint32_t magic = kMagic;
  uint32_t uid = 1000, gid = 1000;  // inside; already the zygote's ids
  int32_t control_fd_number = 256;
  char hostname[64] = {};
  uint32_t tmpfs_count = 0;
  ForkTmpfs tmpfs[kMaxTmpfs];  // tmpfs[0] is the working directory
  uint32_t rlimit_count = 0;
  RlimitSetting rlimits[kMaxRlimits];
  uint32_t policy_length = 0;  // sock_filter instructions
  uint32_t floor_length = 0;
};

// The most filter instructions a request may carry (the kernel's own limit is 4096 per filter).
inline constexpr uint32_t kMaxForkFilterLength = 4096;

// Supervisor side. The request for spec: its ids, hostname, tmpfs mounts (the working dir first,
// then /tmp, /dev/shm and the spec's own), rlimits and filter lengths. A setup error when a part
// does not fit the fixed-size request.
Expected<ForkRequest> plan_fork_request(const Spec& spec, const SeccompFilters& filters,
                                        int control_fd_number);

// Zygote side (no allocation): whether a received request can be served, given how many bytes
// of filter programs followed it. Refuses what the children would otherwise trust: unterminated
// strings, relative tmpfs paths, counts beyond the arrays, filters of the wrong size.
bool fork_request_valid(const ForkRequest& request, size_t filter_bytes);

}  // namespace airlock::sandbox
