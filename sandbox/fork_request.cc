#include "sandbox/fork_request.h"

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "sandbox/mounts.h"

namespace airlock::sandbox {
namespace {

bool copy_text(char* destination, size_t size, const std::string& text) {
  if (text.size() >= size) return false;
  std::memcpy(destination, text.c_str(), text.size() + 1);
  return true;
}

}  // namespace

Expected<ForkRequest> plan_fork_request(const Spec& spec, const SeccompFilters& filters,
                                        int control_fd_number) {
  ForkRequest request;
  const SandboxIdentity identity;
  request.uid = identity.uid;
  request.gid = identity.gid;
  request.control_fd_number = control_fd_number;
  if (!copy_text(request.hostname, sizeof request.hostname, spec.hostname)) {
    return SetupError{"hostname too long for a forked sandbox", 0};
  }
  std::vector<std::pair<std::string, std::pair<uint64_t, uint32_t>>> tmpfs = {
      {spec.filesystem.workdir, {spec.limits.workdir_size_bytes, 0700}},
      {"/tmp", {spec.limits.tmp_size_bytes, 01777}},
      {"/dev/shm", {spec.limits.shm_size_bytes, 01777}}};
  for (const Tmpfs& extra : spec.filesystem.tmpfs) {
    tmpfs.push_back({extra.sandbox_path, {extra.size_bytes, 01777}});
  }
  if (tmpfs.size() > ForkRequest::kMaxTmpfs) return SetupError{"too many tmpfs mounts to fork", 0};
  for (const auto& [path, size_mode] : tmpfs) {
    ForkTmpfs& entry = request.tmpfs[request.tmpfs_count++];
    if (!is_clean_absolute_path(path) || !copy_text(entry.path, sizeof entry.path, path)) {
      return SetupError{"tmpfs path \"" + path + "\" cannot be forked", 0};
    }
    entry.size_bytes = size_mode.first;
    entry.mode = size_mode.second;
  }
  const std::vector<RlimitSetting> rlimits = plan_rlimits(spec.limits);
  if (rlimits.size() > ForkRequest::kMaxRlimits) return SetupError{"too many rlimits to fork", 0};
  for (const RlimitSetting& setting : rlimits) request.rlimits[request.rlimit_count++] = setting;
  request.policy_length = static_cast<uint32_t>(filters.policy_program.size());
  request.floor_length = static_cast<uint32_t>(filters.floor_program.size());
  if (request.policy_length > kMaxForkFilterLength || request.floor_length > kMaxForkFilterLength) {
    return SetupError{"seccomp filter too long to fork", 0};
  }
  return request;
}

bool fork_request_valid(const ForkRequest& r, size_t filter_bytes) {
  if (r.magic != ForkRequest::kMagic || r.tmpfs_count < 1 ||
      r.tmpfs_count > ForkRequest::kMaxTmpfs || r.rlimit_count > ForkRequest::kMaxRlimits ||
      r.policy_length == 0 || r.floor_length == 0 || r.policy_length > kMaxForkFilterLength ||
      r.floor_length > kMaxForkFilterLength || r.control_fd_number < 4 ||
      filter_bytes != (r.policy_length + r.floor_length) * sizeof(sock_filter)) {
    return false;
  }
  if (::memchr(r.hostname, '\0', sizeof r.hostname) == nullptr) return false;
  for (uint32_t i = 0; i < r.tmpfs_count; ++i) {
    if (::memchr(r.tmpfs[i].path, '\0', sizeof r.tmpfs[i].path) == nullptr ||
        r.tmpfs[i].path[0] != '/') {
      return false;
    }
  }
  return true;
}

}  // namespace airlock::sandbox
