// The mount plan: the sandbox's file system as a list of plain operations computed in the
// supervisor, unit-tested as data, and applied by the child before pivot_root.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sandbox/error.h"
#include "sandbox/spec.h"

namespace airlock::sandbox {

struct MountOp {
  enum class Kind {
    make_dir,    // mkdir target (mode)
    make_file,   // create an empty file at target (a bind-mount point for a file)
    bind,        // bind source onto target, then remount with `flags` (MS_RDONLY etc.)
    tmpfs,       // mount a tmpfs at target with `data` ("size=...,mode=...")
    proc,        // mount a fresh proc at target
    symlink,     // symlink target -> source
    write_file,  // write `data` into a new file at target (mode): identity files, copied binds
  };
  Kind kind;
  std::string source;  // host path (bind) or link text (symlink)
  std::string target;  // absolute path under the staging root
  unsigned long flags = 0;
  std::string data;
  unsigned mode = 0755;
};

struct MountPlan {
  std::string staging_root;  // host dir the new root tmpfs is mounted on, inside the child's ns
  std::vector<MountOp> ops;  // in order
  std::string workdir;       // absolute path inside the sandbox, for chdir after pivot_root
  // The new root tmpfs's mount data: room for the files written into it.
  std::string root_options = "size=1048576,nr_inodes=4096,mode=0755";
  // mask_proc() once the root is in place. Off for a fork server's zygote, which runs only
  // airlock's driver: the kernel lets its children mount a /proc of their own only while every
  // /proc they can see is fully visible, and they mask theirs themselves.
  bool mask_proc = true;
};

// /proc entries that show the host rather than the sandbox, hidden as container runtimes (runc)
// hide them: files get /dev/null bound over them, directories an empty read-only tmpfs. Entries
// this kernel does not have are skipped.
inline constexpr const char* kMaskedProcFiles[] = {
    "/proc/kcore",         // the host's physical memory, as an ELF core
    "/proc/keys",          // keys of the shared sandbox uid, host-wide
    "/proc/key-users",     // key counts of every uid on the host
    "/proc/timer_list",    // every timer on the host, with the names of the processes owning them
    "/proc/timer_stats",   // (older kernels) the same
    "/proc/sched_debug",   // (older kernels) every task on the host by name and pid
    "/proc/latency_stats", // kernel call sites of the host's latencies
    "/proc/kallsyms",      // the kernel's symbols: its build and modules, aid to kernel exploits
    "/proc/modules",       // the host's loaded modules
    "/proc/interrupts",    // the host's devices and their interrupt counts (a side channel)
};
inline constexpr const char* kMaskedProcDirs[] = {"/proc/acpi", "/proc/asound", "/proc/scsi"};
// Read-only binds: kernel and device tunables, which the sandbox's uid cannot write anyway;
// read-only also to any capability a future bug might leave.
inline constexpr const char* kReadOnlyProcPaths[] = {"/proc/sys", "/proc/sysrq-trigger",
                                                      "/proc/bus", "/proc/fs", "/proc/irq"};

// Child side (no allocation): applies the three lists above to the /proc mounted at /proc, using
// /dev/null of the current root. On failure returns false with `failed_path` set and errno set.
// Shared by a cold sandbox (apply_mount_plan) and a forked one (fork_child.cc).
bool mask_proc(const char** failed_path);

struct SandboxIdentity {
  uint32_t uid = 1000;  // inside the sandbox
  uint32_t gid = 1000;
  std::string user_name = "sandbox";
};

// A name safe to write into /etc/passwd: 1 to 32 of [A-Za-z0-9_-], not starting with '-'.
bool valid_user_name(std::string_view name);

// Computes the mount plan for spec. host_workdir is the host directory bound (read-write) as the
// working dir. Fails when a required host path is missing or a path is not absolute and clean.
Expected<MountPlan> plan_mounts(const Spec& spec, const std::string& staging_root,
                                const std::string& host_workdir, const SandboxIdentity& identity);

// Child side: applies the plan, pivots into the new root and makes it read-only. Does not allocate.
// On failure returns false with `failed_op` pointing at the step and errno set.
bool apply_mount_plan(const MountPlan& plan, const MountOp** failed_op);

// True when path is absolute, has no "." or ".." components and no repeated '/'.
bool is_clean_absolute_path(const std::string& path);

}  // namespace airlock::sandbox
