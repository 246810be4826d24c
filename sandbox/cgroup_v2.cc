// The cgroup v2 backend: one unified tree. Controllers must be delegated to airlock's own cgroup;
// the supervisor moves itself into a leaf so that its cgroup may enable them for its children
// (v2 lets only cgroups without processes of their own distribute controllers).
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "sandbox/cgroup.h"
#include "sandbox/unique_fd.h"

namespace airlock::sandbox {
namespace {

constexpr const char* kNeeded[] = {"cpu", "memory", "pids"};
constexpr const char* kEnable = "+cpu +memory +pids";
constexpr int kEmptyAttempts = 200;  // x 5 ms: how long destroy waits for killed tasks to go

bool has_word(const std::string& text, std::string_view word) {
  size_t pos = 0;
  while ((pos = text.find(word, pos)) != std::string::npos) {
    bool starts = pos == 0 || text[pos - 1] == ' ' || text[pos - 1] == '\n';
    size_t end = pos + word.size();
    bool ends = end == text.size() || text[end] == ' ' || text[end] == '\n';
    if (starts && ends) return true;
    pos = end;
  }
  return false;
}

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
    return std::strtoull(usage.value().c_str(), nullptr, 10);
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
    // memory.peak and pids.peak are newer than the rest (5.19, 6.1): optional.
    if (auto peak = fs_->read(dir_ + "/memory.peak")) {
      stats.peak_memory_bytes = std::strtoull(peak.value().c_str(), nullptr, 10);
    }
    if (auto peak = fs_->read(dir_ + "/pids.peak")) {
      stats.peak_processes = std::strtoull(peak.value().c_str(), nullptr, 10);
    }
    return stats;
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
};

class CgroupV2Backend final : public CgroupBackend {
 public:
  CgroupV2Backend(std::shared_ptr<CgroupFs> fs, std::string instance_dir)
      : fs_(std::move(fs)), instance_dir_(std::move(instance_dir)) {}
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
  std::string instance_dir_;
};

Status enable_controllers(CgroupFs& fs, const std::string& dir) {
  auto enabled = fs.read(dir + "/cgroup.subtree_control");
  if (enabled) {
    bool all = true;
    for (const char* controller : kNeeded) all = all && has_word(enabled.value(), controller);
    if (all) return {};
  }
  return fs.write(dir + "/cgroup.subtree_control", kEnable);
}

}  // namespace

Expected<std::unique_ptr<CgroupBackend>> make_cgroup_v2_backend(const std::string& fs_root,
                                                                std::shared_ptr<CgroupFs> fs,
                                                                const std::string& instance_name) {
  const std::string own = own_cgroup_path(fs->read_self_file("/proc/self/cgroup"), "");
  if (own.empty()) return SetupError{"cgroup v2: no '0::' line in /proc/self/cgroup", 0};
  const std::string own_dir = fs_root + (own == "/" ? "" : own);
  auto available = fs->read(own_dir + "/cgroup.controllers");
  if (!available) return available.error();
  for (const char* controller : kNeeded) {
    if (!has_word(available.value(), controller)) {
      return SetupError{
          std::string("cgroup v2: controller '") + controller + "' is not delegated to " + own_dir +
              " (run airlock with Delegate=yes, e.g. under systemd-run -p Delegate=yes)",
          0};
    }
  }
  // Only a cgroup without processes may hand controllers to children: move this supervisor into
  // a leaf of its own first, unless it already lives in one.
  const std::string self_pid = std::to_string(::getpid());
  const std::string leaf = own_dir + "/airlock-supervisor-" + self_pid;
  bool in_own_leaf = own.size() > 19 && own.find("/airlock-supervisor-") != std::string::npos;
  std::string parent = own_dir;
  if (in_own_leaf) {
    parent = own_dir.substr(0, own_dir.rfind('/'));
  } else {
    if (Status s = fs->make_dir(leaf); !s) return s.error();
    if (Status s = fs->write(leaf + "/cgroup.procs", self_pid); !s) return s.error();
  }
  if (Status s = enable_controllers(*fs, parent); !s) {
    return SetupError{"cgroup v2: enabling controllers in " + parent +
                          " failed; other processes may share airlock's cgroup (" +
                          s.error().message() + ")",
                      0};
  }
  const std::string base = parent + "/airlock";
  if (Status s = fs->make_dir(base); !s) return s.error();
  if (Status s = enable_controllers(*fs, base); !s) return s.error();
  for (const std::string& stale : fs->list_dirs(base)) {
    if (instance_is_alive(stale)) continue;
    for (const std::string& run : fs->list_dirs(base + "/" + stale)) {
      (void)kill_and_remove(*fs, base + "/" + stale + "/" + run);
    }
    (void)fs->remove_dir(base + "/" + stale);
  }
  const std::string instance = base + "/" + instance_name;
  if (Status s = fs->make_dir(instance); !s) return s.error();
  if (Status s = enable_controllers(*fs, instance); !s) return s.error();
  return std::unique_ptr<CgroupBackend>(new CgroupV2Backend(std::move(fs), instance));
}

}  // namespace airlock::sandbox
