// Cgroups: one interface over the v1 and v2 hierarchies. Every run gets a cgroup of its own inside
// the service's own subtree, created before the run and removed after it; a supervisor that died
// leaves stale cgroups, which the next start removes.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/error.h"
#include "sandbox/spec.h"
#include "sandbox/unique_fd.h"

namespace airlock::sandbox {

// The file operations a backend needs; the real one talks to the kernel, tests use a fake tree.
class CgroupFs {
 public:
  virtual ~CgroupFs() = default;
  virtual Status make_dir(const std::string& path) = 0;  // EEXIST is not an error
  virtual Status remove_dir(const std::string& path) = 0;
  virtual Expected<std::string> read(const std::string& path) = 0;
  virtual Status write(const std::string& path, std::string_view value) = 0;
  virtual bool exists(const std::string& path) = 0;
  virtual std::vector<std::string> list_dirs(const std::string& path) = 0;  // names only
  virtual std::string read_self_file(const std::string& proc_file) = 0;     // /proc/self/cgroup...
};
std::shared_ptr<CgroupFs> make_kernel_cgroup_fs();

// One control-file write of a cgroup's settings, as data (controller is "" on v2).
struct CgroupWrite {
  std::string controller;
  std::string file;
  std::string value;
};
std::vector<CgroupWrite> plan_cgroup_v1(const Limits& limits, bool has_memsw);
std::vector<CgroupWrite> plan_cgroup_v2(const Limits& limits);

// A cgroup's CPU weight against its siblings (the other runs): the default, or the lowest.
enum class CpuShare { normal, background };
CgroupWrite plan_cpu_share_v1(CpuShare share);  // cpu.shares: 1024 or 2
CgroupWrite plan_cpu_share_v2(CpuShare share);  // cpu.weight: 100 or 1

struct CgroupStats {
  uint64_t cpu_user_ns = 0;
  uint64_t cpu_system_ns = 0;
  uint64_t peak_memory_bytes = 0;
  uint64_t oom_kills = 0;       // processes the OOM killer ended in this cgroup
  uint64_t pids_max_hits = 0;   // forks refused by pids.max
  uint64_t peak_processes = 0;  // 0 when the kernel does not tell
};

// The most files Cgroup::self_join_files gives: one per v1 hierarchy (memory, pids, cpu, cpuacct).
inline constexpr int kMaxCgroupJoinFiles = 4;

// The cgroup of one run. Its destructor kills what is left in it and removes it.
class Cgroup {
 public:
  virtual ~Cgroup() = default;
  virtual Status attach(pid_t pid) = 0;
  // A directory fd for clone3(CLONE_INTO_CGROUP), or -1 when the backend has none (v1).
  virtual int clone_into_fd() const { return -1; }
  // Files a child writes "0" into to move itself in (v1: each hierarchy's `tasks`, at most
  // kMaxCgroupJoinFiles), opened for writing by the supervisor; empty when the backend has none
  // (v2 has clone_into_fd). attach() takes cgroup_threadgroup_rwsem for writing, which waits for
  // an RCU grace period (5-10 ms on this VM, the largest single cost of a cold start); a thread
  // moving itself skips that lock on current kernels (measured on 6.18).
  virtual Expected<std::vector<UniqueFd>> self_join_files() { return std::vector<UniqueFd>{}; }
  virtual Expected<uint64_t> cpu_usage_ns() = 0;
  // Memory charged to the cgroup now (pages first touched by its processes).
  virtual Expected<uint64_t> memory_usage_bytes() = 0;
  virtual Expected<CgroupStats> stats() = 0;
  virtual Status set_cpu_share(CpuShare share) = 0;
  // Kills every process in the cgroup and removes it. Safe to call more than once.
  virtual Status destroy() = 0;
};

class CgroupBackend {
 public:
  virtual ~CgroupBackend() = default;
  virtual std::string_view name() const = 0;
  // Creates the cgroup of one run with the limits applied.
  virtual Expected<std::unique_ptr<Cgroup>> create(const std::string& run_name,
                                                   const Limits& limits) = 0;
  // The directory this supervisor instance creates its runs in (per controller on v1).
  virtual std::string instance_path() const = 0;
};

enum class CgroupVersion;
// Picks v1 or v2 from the mounted hierarchies (or as configured), claims this instance's
// directory and removes stale instances of dead supervisors.
Expected<std::unique_ptr<CgroupBackend>> make_cgroup_backend(CgroupVersion version,
                                                             const std::string& fs_root,
                                                             std::shared_ptr<CgroupFs> fs,
                                                             const std::string& instance_name);

// Instance directories are named "<pid>-<start time in ticks>-<n>": n counts the Sandbox objects
// of one process, so two of them never share a directory. A directory whose pid is gone or has
// another start time belongs to a dead supervisor.
std::string instance_prefix(pid_t pid, uint64_t start_ticks);  // "<pid>-<ticks>-"
std::string new_instance_name();                               // this process's next one
bool instance_is_alive(const std::string& dir_name);
uint64_t process_start_ticks(pid_t pid);  // 0 when the process does not exist

// Parses "key value" lines (memory.events, cpu.stat, pids.events...) for one key.
uint64_t parse_keyed_value(std::string_view text, std::string_view key);

// Internal constructors, used by make_cgroup_backend and by tests.
Expected<std::unique_ptr<CgroupBackend>> make_cgroup_v1_backend(const std::string& fs_root,
                                                                std::shared_ptr<CgroupFs> fs,
                                                                const std::string& instance_name);
// `request_scope` moves the process into a delegated systemd scope when its own cgroup cannot
// be used (move_into_systemd_scope; tests pass a stand-in).
Expected<std::unique_ptr<CgroupBackend>> make_cgroup_v2_backend(
    const std::string& fs_root, std::shared_ptr<CgroupFs> fs, const std::string& instance_name,
    const std::function<Status(const std::string& unit)>& request_scope);

// The cgroup path of this process for a v1 controller ("memory") or v2 (controller ""), from the
// text of /proc/self/cgroup.
std::string own_cgroup_path(std::string_view proc_self_cgroup, std::string_view controller);

}  // namespace airlock::sandbox
