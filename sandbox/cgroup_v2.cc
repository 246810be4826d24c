// The cgroup v2 backend: one unified tree. Runs live in <home>/airlock/<instance>/run-<n>, where
// home is the supervisor's delegated cgroup (cgroup_v2_home.h says how it is found and left).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "sandbox/cgroup.h"
#include "sandbox/cgroup_v2_home.h"
#include "sandbox/unique_fd.h"

namespace airlock::sandbox {
namespace {

constexpr int kEmptyAttempts = 200;  // x 5 ms: how long destroy waits for killed tasks to go

// Kills every process in `dir` with cgroup.kill, waits until it is empty, removes it.
Status kill_and_remove(CgroupFs& fs, const std::string& dir) {
  if (!fs.exists(dir)) return {};
  (void)fs.write(dir + "/cgroup.kill", "1");
  for (int attempt = 0; attempt < kEmptyAttempts; ++attempt) {
    auto events = fs.read(dir + "/cgroup.events");
    if (!events || parse_keyed_value(events.value(), "populated") == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return fs.remove_dir(dir);
}

class CgroupV2 final : public Cgroup {
 public:
  CgroupV2(std::shared_ptr<CgroupFs> fs, std::string dir)
      : fs_(std::move(fs)), dir_(std::move(dir)) {
    auto fd = open_fd(dir_, O_DIRECTORY | O_PATH);
    if (fd) dir_fd_ = std::move(fd.value());
  }
  ~CgroupV2() override { (void)destroy(); }

  Status attach(pid_t pid) override {
    return fs_->write(dir_ + "/cgroup.procs", std::to_string(pid));
  }
  int clone_into_fd() const override { return dir_fd_.get(); }

  Expected<uint64_t> cpu_usage_ns() override {
    auto stat = fs_->read(dir_ + "/cpu.stat");
    if (!stat) return stat.error();
    return parse_keyed_value(stat.value(), "usage_usec") * 1000;
  }

  Expected<uint64_t> memory_usage_bytes() override {
    auto usage = fs_->read(dir_ + "/memory.current");
    if (!usage) return usage.error();
    uint64_t bytes = std::strtoull(usage.value().c_str(), nullptr, 10);
    uint64_t seen = sampled_peak_.load();
    while (bytes > seen && !sampled_peak_.compare_exchange_weak(seen, bytes)) {
    }
    return bytes;
  }

  Expected<CgroupStats> stats() override {
    CgroupStats stats;
    auto cpu = fs_->read(dir_ + "/cpu.stat");
    auto memory = fs_->read(dir_ + "/memory.events");
    auto pids = fs_->read(dir_ + "/pids.events");
    for (auto* file : {&cpu, &memory, &pids}) {
      if (!*file) return file->error();
    }
    stats.cpu_user_ns = parse_keyed_value(cpu.value(), "user_usec") * 1000;
    stats.cpu_system_ns = parse_keyed_value(cpu.value(), "system_usec") * 1000;
    stats.oom_kills = parse_keyed_value(memory.value(), "oom_kill");
    stats.pids_max_hits = parse_keyed_value(pids.value(), "max");
    // memory.peak and pids.peak are newer than the rest (5.19, 6.1): optional. Without
    // memory.peak (kernels before 5.19), the highest memory.current read stands in: a live
    // sandbox's readings, and at least the charge left at the end. A lower bound, not the peak.
    if (auto peak = fs_->read(dir_ + "/memory.peak")) {
      stats.peak_memory_bytes = std::strtoull(peak.value().c_str(), nullptr, 10);
    } else if (auto now = memory_usage_bytes()) {
      stats.peak_memory_bytes = std::max(sampled_peak_.load(), now.value());
    }
    if (auto peak = fs_->read(dir_ + "/pids.peak")) {
      stats.peak_processes = std::strtoull(peak.value().c_str(), nullptr, 10);
    }
    return stats;
  }

  Status set_cpu_share(CpuShare share) override {
    const CgroupWrite write = plan_cpu_share_v2(share);
    return fs_->write(dir_ + "/" + write.file, write.value);
  }

  Status destroy() override {
    if (dir_.empty()) return {};
    dir_fd_.reset();
    Status status = kill_and_remove(*fs_, dir_);
    dir_.clear();
    return status;
  }

 private:
  std::shared_ptr<CgroupFs> fs_;
  std::string dir_;
  UniqueFd dir_fd_;
  std::atomic<uint64_t> sampled_peak_{0};  // highest memory.current read
};

class CgroupV2Backend final : public CgroupBackend {
 public:
  CgroupV2Backend(std::shared_ptr<CgroupFs> fs, std::shared_ptr<SupervisorHome> home,
                  std::string instance_dir)
      : fs_(std::move(fs)), home_(std::move(home)), instance_dir_(std::move(instance_dir)) {}
  // The instance dir goes first; then, with the last backend of the process, the home's leaf.
  ~CgroupV2Backend() override { (void)fs_->remove_dir(instance_dir_); }

  std::string_view name() const override { return "v2"; }
  std::string instance_path() const override { return instance_dir_; }

  Expected<std::unique_ptr<Cgroup>> create(const std::string& run_name,
                                           const Limits& limits) override {
    const std::string dir = instance_dir_ + "/" + run_name;
    if (Status s = fs_->make_dir(dir); !s) return s.error();
    auto cgroup = std::make_unique<CgroupV2>(fs_, dir);
    for (const CgroupWrite& write : plan_cgroup_v2(limits)) {
      if (Status s = fs_->write(dir + "/" + write.file, write.value); !s) return s.error();
    }
    return std::unique_ptr<Cgroup>(std::move(cgroup));
  }

 private:
  std::shared_ptr<CgroupFs> fs_;
  std::shared_ptr<SupervisorHome> home_;
  std::string instance_dir_;
};

}  // namespace

Expected<std::unique_ptr<CgroupBackend>> make_cgroup_v2_backend(const std::string& fs_root,
                                                                std::shared_ptr<CgroupFs> fs,
                                                                const std::string& instance_name,
                                                                const ScopeRequest& request_scope) {
  auto home = SupervisorHome::claim(fs_root, fs, request_scope);
  if (!home) return home.error();
  const std::string base = (*home)->dir() + "/airlock";
  if (Status s = fs->make_dir(base); !s) return s.error();
  if (Status s = enable_v2_controllers(*fs, base); !s) return s.error();
  for (const std::string& stale : fs->list_dirs(base)) {
    if (instance_is_alive(stale)) continue;
    for (const std::string& run : fs->list_dirs(base + "/" + stale)) {
      (void)kill_and_remove(*fs, base + "/" + stale + "/" + run);
    }
    (void)fs->remove_dir(base + "/" + stale);
  }
  const std::string instance = base + "/" + instance_name;
  if (Status s = fs->make_dir(instance); !s) return s.error();
  if (Status s = enable_v2_controllers(*fs, instance); !s) {
    (void)fs->remove_dir(instance);
    return s.error();
  }
  return std::unique_ptr<CgroupBackend>(
      new CgroupV2Backend(std::move(fs), std::move(home.value()), instance));
}

}  // namespace airlock::sandbox
