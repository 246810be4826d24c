#include "sandbox/cgroup_v2_home.h"

#include <unistd.h>

#include <charconv>
#include <map>

namespace airlock::sandbox {
namespace {

constexpr const char* kNeeded[] = {"cpu", "memory", "pids"};
constexpr const char* kEnable = "+cpu +memory +pids";
constexpr const char* kDisable = "-cpu -memory -pids";
constexpr std::string_view kLeafPrefix = "airlock-supervisor-";
constexpr const char* kHowToDelegate =
    "start airlock in a cgroup of its own with cpu, memory and pids delegated (a systemd service "
    "or `systemd-run --scope -p Delegate=yes`, or as a container's only process with its own "
    "cgroup namespace)";

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

std::string parent_of(const std::string& dir) {
  return dir.substr(0, dir.rfind('/'));
}
std::string base_name(const std::string& dir) {
  return dir.substr(dir.rfind('/') + 1);
}

// "airlock-supervisor-<pid>-<start ticks>": the start time tells a reused pid from ours.
std::string own_leaf_name() {
  std::string prefix = instance_prefix(::getpid(), process_start_ticks(::getpid()));
  return std::string(kLeafPrefix) + prefix.substr(0, prefix.size() - 1);
}

// A leaf whose process is gone. Older airlocks named leaves by pid alone.
bool leaf_is_stale(const std::string& name) {
  if (name.compare(0, kLeafPrefix.size(), kLeafPrefix) != 0) return false;
  const std::string rest = name.substr(kLeafPrefix.size());
  if (rest.find('-') != std::string::npos) return !instance_is_alive(rest + "-0");
  pid_t pid = 0;
  auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), pid);
  return error == std::errc() && end == rest.data() + rest.size() && process_start_ticks(pid) == 0;
}

// The real root cgroup lacks cgroup.type; a cgroup namespace's root (a container's) has it.
bool is_root_cgroup(CgroupFs& fs, const std::string& dir) {
  return !fs.exists(dir + "/cgroup.type");
}

// One line for a failed step on `dir`: what went wrong, what it means, how to fix it.
SetupError explain(const SetupError& error, const std::string& dir) {
  std::string what = error.message();
  switch (error.error_number) {
    case EROFS:
      return {"cgroup v2: the cgroup filesystem is read-only here (" + what +
                  "); airlock needs it writable (a container: a private cgroup namespace with "
                  "/sys/fs/cgroup mounted read-write)",
              0};
    case EACCES:
    case EPERM:
      return {"cgroup v2: no permission to manage " + dir + " (" + what + "); " + kHowToDelegate,
              0};
    case ENOENT:
      return {"cgroup v2: " + dir + " vanished while airlock set it up (" + what +
                  "); something else removed it: start airlock again",
              0};
    case EBUSY:
      return {"cgroup v2: " + dir + " cannot hand controllers to airlock (" + what +
                  "): other processes or cgroups there use them; " + kHowToDelegate,
              0};
    default:
      return {"cgroup v2: " + what, 0};
  }
}

// Moves this process from its leaf back into `home` and removes the leaf; undoes claim().
void leave(CgroupFs& fs, const std::string& home, const std::string& leaf) {
  const std::string pid = std::to_string(::getpid());
  // Other airlocks still there need the controllers home hands out: theirs is the last word.
  if (!fs.remove_dir(home + "/airlock")) return;
  for (const std::string& name : fs.list_dirs(home)) {
    if (name.compare(0, kLeafPrefix.size(), kLeafPrefix) == 0 && home + "/" + name != leaf &&
        !leaf_is_stale(name)) {
      return;
    }
  }
  // Only a cgroup that hands out no controllers may hold processes (the root excepted): give
  // back what claim() enabled, as it was when airlock came (it held airlock, so it had none).
  if (!is_root_cgroup(fs, home) && !fs.write(home + "/cgroup.subtree_control", kDisable)) return;
  if (!fs.write(home + "/cgroup.procs", pid)) return;
  (void)fs.remove_dir(leaf);
}

std::mutex homes_mutex;
std::map<std::string, std::weak_ptr<SupervisorHome>> homes;  // by cgroup fs root

}  // namespace

std::string unusable_home_reason(CgroupFs& fs, const std::string& dir) {
  auto available = fs.read(dir + "/cgroup.controllers");
  if (!available)
    return "its cgroup " + dir + " cannot be read (" + available.error().message() + ")";
  std::string missing;
  for (const char* controller : kNeeded) {
    if (!has_word(available.value(), controller)) missing += std::string(" ") + controller;
  }
  if (!missing.empty()) {
    return "the" + missing + " controller(s) are not delegated to its cgroup " + dir;
  }
  if (is_root_cgroup(fs, dir)) return "";
  auto procs = fs.read(dir + "/cgroup.procs");
  if (!procs) return "its cgroup " + dir + " cannot be read (" + procs.error().message() + ")";
  const std::string self = std::to_string(::getpid());
  size_t pos = 0;
  const std::string& text = procs.value();
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string pid = text.substr(pos, end - pos);
    if (!pid.empty() && pid != self) {
      return "its cgroup " + dir + " is shared with other processes (pid " + pid +
             " and maybe more)";
    }
    pos = end + 1;
  }
  return "";
}

Status enable_v2_controllers(CgroupFs& fs, const std::string& dir) {
  auto enabled = fs.read(dir + "/cgroup.subtree_control");
  if (enabled) {
    bool all = true;
    for (const char* controller : kNeeded) all = all && has_word(enabled.value(), controller);
    if (all) return {};
  }
  return fs.write(dir + "/cgroup.subtree_control", kEnable);
}

void remove_stale_supervisor_leaves(CgroupFs& fs, const std::string& dir) {
  for (const std::string& name : fs.list_dirs(dir)) {
    if (leaf_is_stale(name)) (void)fs.remove_dir(dir + "/" + name);  // EBUSY while populated
  }
}

Expected<std::shared_ptr<SupervisorHome>> SupervisorHome::claim(const std::string& fs_root,
                                                                std::shared_ptr<CgroupFs> fs,
                                                                const ScopeRequest& request_scope) {
  std::lock_guard lock(homes_mutex);
  if (auto existing = homes[fs_root].lock()) return existing;

  auto own_dir = [&]() -> std::string {
    std::string own = own_cgroup_path(fs->read_self_file("/proc/self/cgroup"), "");
    if (own.empty()) return "";
    return fs_root + (own == "/" ? "" : own);
  };
  std::string dir = own_dir();
  if (dir.empty()) {
    return SetupError{"cgroup v2: /proc/self/cgroup has no '0::' line (no cgroup-v2 hierarchy?)",
                      0};
  }
  std::string home, leaf;
  const std::string name = base_name(dir);
  if (name.compare(0, kLeafPrefix.size(), kLeafPrefix) == 0) {
    // Already in a supervisor's leaf: ours from an earlier claim, or an airlock parent's.
    home = parent_of(dir);
    if (name == own_leaf_name()) leaf = dir;
  } else {
    std::string reason = unusable_home_reason(*fs, dir);
    if (!reason.empty()) {
      const std::string unit = "airlock-" + std::to_string(::getpid()) + ".scope";
      Status moved = request_scope(unit);
      if (!moved) {
        return SetupError{"cgroup v2: airlock cannot use its cgroup: " + reason +
                              "; asking systemd for a delegated scope failed: " +
                              moved.error().message() + "; " + kHowToDelegate,
                          0};
      }
      dir = own_dir();
      reason = unusable_home_reason(*fs, dir);
      if (!reason.empty()) {
        return SetupError{"cgroup v2: in systemd's scope " + unit + ", " + reason, 0};
      }
    }
    home = dir;
    remove_stale_supervisor_leaves(*fs, home);
    leaf = home + "/" + own_leaf_name();
    if (Status s = fs->make_dir(leaf); !s) return explain(s.error(), home);
    if (Status s = fs->write(leaf + "/cgroup.procs", std::to_string(::getpid())); !s) {
      (void)fs->remove_dir(leaf);
      return explain(s.error(), home);
    }
  }
  if (Status s = enable_v2_controllers(*fs, home); !s) {
    if (!leaf.empty()) {
      (void)fs->write(home + "/cgroup.procs", std::to_string(::getpid()));
      (void)fs->remove_dir(leaf);
    }
    return explain(s.error(), home);
  }
  std::shared_ptr<SupervisorHome> made(new SupervisorHome(std::move(fs), home, leaf));
  homes[fs_root] = made;
  return made;
}

SupervisorHome::~SupervisorHome() {
  if (leaf_.empty()) return;
  std::lock_guard lock(homes_mutex);
  leave(*fs_, dir_, leaf_);
}

}  // namespace airlock::sandbox
