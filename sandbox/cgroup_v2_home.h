// The supervisor's place in a cgroup-v2 tree. v2 lets only a cgroup without processes of its own
// hand controllers to its children, so a supervisor moves out of its delegated cgroup (its home)
// into a leaf beside its runs, `<home>/airlock-supervisor-<pid>`, and back at exit so that the
// leaf can be removed. A home shared with other processes (a login shell's session scope) cannot
// hand out controllers at all: then systemd is asked for a delegated scope of airlock's own.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "sandbox/cgroup.h"
#include "sandbox/systemd_scope.h"

namespace airlock::sandbox {

class SupervisorHome {
 public:
  // The home of this process under `fs_root`, shared by every backend of the process: the first
  // claim moves the process into its leaf (asking `request_scope` for a scope when the cgroup it
  // started in cannot be used) and enables cpu, memory and pids in the home. A failure is one line
  // saying what is missing and how to fix it, and leaves nothing behind.
  static Expected<std::shared_ptr<SupervisorHome>> claim(const std::string& fs_root,
                                                         std::shared_ptr<CgroupFs> fs,
                                                         const ScopeRequest& request_scope);
  // The last backend of the process is gone: move back home and remove the leaf, unless another
  // airlock still runs there (the last one out, or the next one to start, removes it then).
  ~SupervisorHome();

  SupervisorHome(const SupervisorHome&) = delete;
  SupervisorHome& operator=(const SupervisorHome&) = delete;

  // The delegated cgroup: runs go under dir()/airlock.
  const std::string& dir() const { return dir_; }

 private:
  SupervisorHome(std::shared_ptr<CgroupFs> fs, std::string dir, std::string leaf)
      : fs_(std::move(fs)), dir_(std::move(dir)), leaf_(std::move(leaf)) {}

  std::shared_ptr<CgroupFs> fs_;
  std::string dir_;
  std::string leaf_;  // empty when the process sits in a leaf an airlock parent made
};

// Why `dir` cannot be a supervisor's home, or "" when it can: controllers not delegated to it,
// other processes in it (only the root cgroup may hold processes and hand out controllers).
std::string unusable_home_reason(CgroupFs& fs, const std::string& dir);

// Enables cpu, memory and pids in `dir`'s cgroup.subtree_control unless they already are.
Status enable_v2_controllers(CgroupFs& fs, const std::string& dir);

// Removes `airlock-supervisor-<pid>` leaves in `dir` whose process is gone and which are empty.
void remove_stale_supervisor_leaves(CgroupFs& fs, const std::string& dir);

}  // namespace airlock::sandbox
