#include "sandbox/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <fstream>
#include <sstream>

#include "sandbox/sandbox.h"
#include "sandbox/systemd_scope.h"
#include "sandbox/unique_fd.h"

namespace airlock::sandbox {
namespace {

class KernelCgroupFs final : public CgroupFs {
 public:
  Status make_dir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
      return errno_error("mkdir(\"" + path + "\")");
    }
    return {};
  }
  Status remove_dir(const std::string& path) override {
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT)
      return errno_error("rmdir(\"" + path + "\")");
    return {};
  }
  Expected<std::string> read(const std::string& path) override { return read_file(path); }
  Status write(const std::string& path, std::string_view value) override {
    return write_file(path, value);
  }
  bool exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
  std::vector<std::string> list_dirs(const std::string& path) override {
    std::vector<std::string> names;
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return names;
    while (dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (entry->d_type == DT_DIR && name != "." && name != "..") names.push_back(name);
    }
    ::closedir(dir);
    return names;
  }
  std::string read_self_file(const std::string& proc_file) override {
    auto text = read_file(proc_file);
    return text ? text.value() : std::string();
  }
};

}  // namespace

std::shared_ptr<CgroupFs> make_kernel_cgroup_fs() {
  return std::make_shared<KernelCgroupFs>();
}

std::vector<CgroupWrite> plan_cgroup_v1(const Limits& limits, bool has_memsw) {
  const std::string memory = std::to_string(limits.memory_max_bytes);
  std::vector<CgroupWrite> writes = {
      {"memory", "memory.limit_in_bytes", memory},
  };
  // Without swap: RAM+swap capped at the same value (memsw must be set after the RAM limit).
  if (has_memsw) writes.push_back({"memory", "memory.memsw.limit_in_bytes", memory});
  writes.push_back({"memory", "memory.swappiness", "0"});
  writes.push_back({"pids", "pids.max", std::to_string(limits.max_processes)});
  writes.push_back({"cpu", "cpu.cfs_period_us", "100000"});
  writes.push_back({"cpu", "cpu.cfs_quota_us", std::to_string(limits.cpu_millicores * 100)});
  return writes;
}

std::vector<CgroupWrite> plan_cgroup_v2(const Limits& limits) {
  return {
      {"", "memory.max", std::to_string(limits.memory_max_bytes)},
      {"", "memory.swap.max", "0"},
      // One OOM kill ends the whole run, as on v1 where the pid namespace ends with its init.
      {"", "memory.oom.group", "1"},
      {"", "pids.max", std::to_string(limits.max_processes)},
      {"", "cpu.max", std::to_string(limits.cpu_millicores * 100) + " 100000"},
  };
}

CgroupWrite plan_cpu_share_v1(CpuShare share) {
  return {"cpu", "cpu.shares", share == CpuShare::background ? "2" : "1024"};
}

CgroupWrite plan_cpu_share_v2(CpuShare share) {
  return {"", "cpu.weight", share == CpuShare::background ? "1" : "100"};
}

std::string own_cgroup_path(std::string_view text, std::string_view controller) {
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    size_t first = line.find(':');
    size_t second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    std::string_view controllers(line.data() + first + 1, second - first - 1);
    std::string path = line.substr(second + 1);
    if (controller.empty()) {
      if (controllers.empty() && line.compare(0, first, "0") == 0) return path;
      continue;
    }
    size_t start = 0;
    while (start <= controllers.size()) {
      size_t end = controllers.find(',', start);
      if (end == std::string_view::npos) end = controllers.size();
      if (controllers.substr(start, end - start) == controller) return path;
      start = end + 1;
    }
  }
  return "";
}

uint64_t parse_keyed_value(std::string_view text, std::string_view key) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ' ') {
      uint64_t value = 0;
      std::string_view number = line.substr(key.size() + 1);
      std::from_chars(number.data(), number.data() + number.size(), value);
      return value;
    }
    pos = end + 1;
  }
  return 0;
}

uint64_t process_start_ticks(pid_t pid) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return 0;
  // Field 22 (starttime), counted after the parenthesised command name, which may hold spaces.
  const std::string& text = stat.value();
  size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  for (int index = 3; index <= 22 && fields >> field; ++index) {
    if (index == 22) return std::stoull(field);
  }
  return 0;
}

std::string instance_prefix(pid_t pid, uint64_t start_ticks) {
  return std::to_string(pid) + "-" + std::to_string(start_ticks) + "-";
}

std::string new_instance_name() {
  static std::atomic<uint64_t> next{1};
  return instance_prefix(::getpid(), process_start_ticks(::getpid())) + std::to_string(next++);
}

bool instance_is_alive(const std::string& dir_name) {
  const char* text = dir_name.data();
  const char* end = text + dir_name.size();
  pid_t pid = 0;
  uint64_t ticks = 0, number = 0;
  auto [after_pid, e1] = std::from_chars(text, end, pid);
  if (e1 != std::errc() || pid <= 0 || after_pid == end || *after_pid != '-') return false;
  auto [after_ticks, e2] = std::from_chars(after_pid + 1, end, ticks);
  if (e2 != std::errc() || after_ticks == end || *after_ticks != '-') return false;
  auto [after_number, e3] = std::from_chars(after_ticks + 1, end, number);
  if (e3 != std::errc() || after_number != end) return false;
  return process_start_ticks(pid) == ticks;
}

Expected<std::unique_ptr<CgroupBackend>> make_cgroup_backend(CgroupVersion version,
                                                             const std::string& fs_root,
                                                             std::shared_ptr<CgroupFs> fs,
                                                             const std::string& instance_name) {
  if (version == CgroupVersion::automatic) {
    // A pure v2 host has cgroup.controllers at its root; a v1 or hybrid host has per-controller
    // hierarchies (here /sys/fs/cgroup/memory) and at most an empty v2 tree beside them.
    version = fs->exists(fs_root + "/cgroup.controllers") ? CgroupVersion::v2 : CgroupVersion::v1;
  }
  if (version == CgroupVersion::v2) {
    return make_cgroup_v2_backend(fs_root, std::move(fs), instance_name, move_into_systemd_scope);
  }
  return make_cgroup_v1_backend(fs_root, std::move(fs), instance_name);
}

}  // namespace airlock::sandbox
