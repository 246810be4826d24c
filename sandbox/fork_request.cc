#include "sandbox/fork_request.h"

#include <linux/filter.h>

#include <cstring>

namespace airlock::sandbox {

bool fork_request_valid(const ForkRequest& request, size_t filter_bytes) {
  const SetupPlan& r = request.setup;
  if (request.magic != ForkRequest::kMagic ||
      request.cgroup_join_count > static_cast<uint32_t>(kMaxCgroupJoinFiles) || r.zygote ||
      r.writable_count < 1 || r.writable_count > SetupPlan::kMaxWritable ||
      r.rlimit_count > SetupPlan::kMaxRlimits || r.policy_length == 0 || r.floor_length == 0 ||
      r.policy_length > kMaxFilterLength || r.floor_length > kMaxFilterLength ||
      r.control_fd_number < 4 ||
      filter_bytes != (r.policy_length + r.floor_length) * sizeof(sock_filter)) {
    return false;
  }
  if (::memchr(r.hostname, '\0', sizeof r.hostname) == nullptr) return false;
  for (uint32_t i = 0; i < r.writable_count; ++i) {
    if (::memchr(r.writable[i].path, '\0', sizeof r.writable[i].path) == nullptr ||
        r.writable[i].path[0] != '/') {
      return false;
    }
  }
  return true;
}

}  // namespace airlock::sandbox
