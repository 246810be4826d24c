// The request a supervisor sends a fork server's zygote for one forked sandbox (fork_child.h has
// the children's steps): the run's SetupPlan, the same one a cold child reads, behind a magic.
#pragma once

#include <cstddef>
#include <cstdint>

#include "sandbox/cgroup.h"
#include "sandbox/setup_plan.h"

namespace airlock::sandbox {

// The zygote's RLIMIT_NOFILE must be above setup.control_fd_number (the children's own limit), so
// that B can put its control socket there before lowering the limit.
//
// Sent on the zygote's fork socket with five fds: the child's stdin (read end), stdout and
// stderr (write ends), the control channel that becomes its fd 3 (write end), and its end of the
// control socket; then cgroup_join_count files of Cgroup::self_join_files (v1), which A writes
// "0" into before its hello, so that A and B (forked from A) are in the run's cgroup. The two
// filter programs follow the header, policy first.
struct ForkRequest {
  static constexpr uint32_t kMagic = 0x61726b33;  // "ark3"
  static constexpr int kFdCount = 5;
  static constexpr int kMaxFdCount = kFdCount + kMaxCgroupJoinFiles;
  uint32_t magic = kMagic;
  uint32_t cgroup_join_count = 0;  // at most kMaxCgroupJoinFiles
  SetupPlan setup;                 // from plan_setup; never a zygote's
};

// Zygote side (no allocation): whether a received request can be served, given how many bytes
// of filter programs followed it. Refuses what the children would otherwise trust: unterminated
// strings, relative paths, counts beyond the arrays, filters of the wrong size, a zygote's plan
// (whose children would go without the policy's filter).
bool fork_request_valid(const ForkRequest& request, size_t filter_bytes);

}  // namespace airlock::sandbox
