// The cgroup v1 backend: one directory per controller hierarchy (memory, pids, cpu, cpuacct).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <iterator>
#include <map>
#include <thread>

#include "sandbox/cgroup.h"

namespace airlock::sandbox {
namespace {

constexpr const char* kControllers[] = {"memory", "pids", "cpu", "cpuacct"};
static_assert(std::size(kControllers) <= kMaxCgroupJoinFiles, "a child joins every hierarchy");
constexpr int kKillAttempts = 200;  // x 5 ms: how long destroy waits for killed tasks to go

// One mounted hierarchy (several controllers may share it) and this instance's dir in it.
struct Hierarchy {
  std::vector<std::string> controllers;
  std::string instance_dir;  // <mount>/<own path>/airlock/<instance>
};

// Kills every task in `dir` (all started by an airlock supervisor) and removes the dir.
Status kill_and_remove(CgroupFs& fs, const std::string& dir) {
  for (int attempt = 0; attempt < kKillAttempts; ++attempt) {
    auto procs = fs.read(dir + "/cgroup.procs");
    if (!procs) break;  // already gone
    if (procs.value().empty()) break;
    size_t pos = 0;
    const std::string& text = procs.value();
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      pid_t pid = static_cast<pid_t>(std::atoi(text.substr(pos, end - pos).c_str()));
      if (pid > 0) ::kill(pid, SIGKILL);
      pos = end + 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return fs.remove_dir(dir);
}

class CgroupV1 final : public Cgroup {
 public:
  CgroupV1(std::shared_ptr<CgroupFs> fs, std::map<std::string, std::string> dirs)
      : fs_(std::move(fs)), dirs_(std::move(dirs)) {}
  ~CgroupV1() override { (void)destroy(); }

  Status attach(pid_t pid) override {
    for (const auto& [hierarchy, dir] : unique_dirs()) {
      if (Status s = fs_->write(dir + "/cgroup.procs", std::to_string(pid)); !s) return s;
    }
    return {};
  }

  Expected<std::vector<UniqueFd>> self_join_files() override {
    std::vector<UniqueFd> files;
    for (const auto& [hierarchy, dir] : unique_dirs()) {
      auto file = open_fd(dir + "/tasks", O_WRONLY | O_CLOEXEC);
      if (!file) return file.error();
      files.push_back(std::move(file.value()));
    }
    return files;
  }

  Expected<uint64_t> cpu_usage_ns() override {
    auto usage = fs_->read(dir("cpuacct") + "/cpuacct.usage");
    if (!usage) return usage.error();
    return std::strtoull(usage.value().c_str(), nullptr, 10);
  }

  Expected<uint64_t> memory_usage_bytes() override {
    auto usage = fs_->read(dir("memory") + "/memory.usage_in_bytes");
    if (!usage) return usage.error();
    return std::strtoull(usage.value().c_str(), nullptr, 10);
  }

  Expected<CgroupStats> stats() override {
    CgroupStats stats;
    auto user = fs_->read(dir("cpuacct") + "/cpuacct.usage_user");
    auto sys = fs_->read(dir("cpuacct") + "/cpuacct.usage_sys");
    auto peak = fs_->read(dir("memory") + "/memory.max_usage_in_bytes");
    auto oom = fs_->read(dir("memory") + "/memory.oom_control");
    auto pids = fs_->read(dir("pids") + "/pids.events");
    for (auto* file : {&user, &sys, &peak, &oom, &pids}) {
      if (!*file) return file->error();
    }
    stats.cpu_user_ns = std::strtoull(user.value().c_str(), nullptr, 10);
    stats.cpu_system_ns = std::strtoull(sys.value().c_str(), nullptr, 10);
    stats.peak_memory_bytes = std::strtoull(peak.value().c_str(), nullptr, 10);
    stats.oom_kills = parse_keyed_value(oom.value(), "oom_kill");
    stats.pids_max_hits = parse_keyed_value(pids.value(), "max");
    return stats;
  }

  Status set_cpu_share(CpuShare share) override {
    const CgroupWrite write = plan_cpu_share_v1(share);
    return fs_->write(dir(write.controller) + "/" + write.file, write.value);
  }

  Status destroy() override {
    Status result;
    for (const auto& [hierarchy, dir] : unique_dirs()) {
      if (Status s = kill_and_remove(*fs_, dir); !s && result) result = s;
    }
    dirs_.clear();
    return result;
  }

 private:
  std::string dir(const std::string& controller) const {
    auto it = dirs_.find(controller);
    return it == dirs_.end() ? std::string() : it->second;
  }
  // Controllers sharing a hierarchy share one directory.
  std::map<std::string, std::string> unique_dirs() const {
    std::map<std::string, std::string> unique;
    for (const auto& [controller, path] : dirs_) unique.emplace(path, path);
    return unique;
  }

  std::shared_ptr<CgroupFs> fs_;
  std::map<std::string, std::string> dirs_;  // controller -> run dir
};

class CgroupV1Backend final : public CgroupBackend {
 public:
  CgroupV1Backend(std::shared_ptr<CgroupFs> fs, std::map<std::string, std::string> instance_dirs,
                  bool has_memsw)
      : fs_(std::move(fs)), instance_dirs_(std::move(instance_dirs)), has_memsw_(has_memsw) {}

  ~CgroupV1Backend() override {
    for (const auto& [controller, dir] : instance_dirs_) (void)fs_->remove_dir(dir);
  }

  std::string_view name() const override { return "v1"; }
  std::string instance_path() const override { return instance_dirs_.at("memory"); }

  Expected<std::unique_ptr<Cgroup>> create(const std::string& run_name,
                                           const Limits& limits) override {
    std::map<std::string, std::string> dirs;
    for (const auto& [controller, instance] : instance_dirs_) {
      dirs[controller] = instance + "/" + run_name;
    }
    auto cgroup = std::make_unique<CgroupV1>(fs_, dirs);
    for (const auto& [controller, dir] : dirs) {
      if (Status s = fs_->make_dir(dir); !s) return s.error();
    }
    for (const CgroupWrite& write : plan_cgroup_v1(limits, has_memsw_)) {
      if (Status s = fs_->write(dirs[write.controller] + "/" + write.file, write.value); !s) {
        return s.error();
      }
    }
    return std::unique_ptr<Cgroup>(std::move(cgroup));
  }

 private:
  std::shared_ptr<CgroupFs> fs_;
  std::map<std::string, std::string> instance_dirs_;  // controller -> instance dir
  bool has_memsw_;
};

}  // namespace

Expected<std::unique_ptr<CgroupBackend>> make_cgroup_v1_backend(const std::string& fs_root,
                                                                std::shared_ptr<CgroupFs> fs,
                                                                const std::string& instance) {
  const std::string self = fs->read_self_file("/proc/self/cgroup");
  std::map<std::string, std::string> instance_dirs;
  for (const char* controller : kControllers) {
    std::string own = own_cgroup_path(self, controller);
    std::string mount = fs_root + "/" + controller;
    if (own.empty() || !fs->exists(mount + own)) {
      return SetupError{std::string("cgroup v1: no usable '") + controller + "' hierarchy at " +
                            mount + own +
                            " (airlock needs the memory, pids, cpu and cpuacct "
                            "controllers)",
                        0};
    }
    std::string base = mount + (own == "/" ? "" : own) + "/airlock";
    if (Status s = fs->make_dir(base); !s) return s.error();
    // Remove what supervisors that died left behind: their runs, then their instance dir.
    for (const std::string& stale : fs->list_dirs(base)) {
      if (instance_is_alive(stale)) continue;
      for (const std::string& run : fs->list_dirs(base + "/" + stale)) {
        (void)kill_and_remove(*fs, base + "/" + stale + "/" + run);
      }
      (void)fs->remove_dir(base + "/" + stale);
    }
    instance_dirs[controller] = base + "/" + instance;
    if (Status s = fs->make_dir(instance_dirs[controller]); !s) return s.error();
  }
  bool has_memsw = fs->exists(instance_dirs["memory"] + "/memory.memsw.limit_in_bytes");
  return std::unique_ptr<CgroupBackend>(
      new CgroupV1Backend(std::move(fs), std::move(instance_dirs), has_memsw));
}

}  // namespace airlock::sandbox
