#include "sandbox/mounts.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <set>

#include "sandbox/setup_plan.h"
#include "sandbox/unique_fd.h"

namespace airlock::sandbox {
namespace {

constexpr unsigned long kReadOnlyBind = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV;

// Flags a bind must keep when remounted inside a user namespace: the kernel locks them.
unsigned long locked_flags(const std::string& host_path) {
  struct statvfs st {};
  if (::statvfs(host_path.c_str(), &st) != 0) return 0;
  unsigned long flags = 0;
  if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

class PlanBuilder {
 public:
  PlanBuilder(MountPlan& plan) : plan_(plan) {}

  // Ensures every directory from the root down to `dir` (a sandbox path) exists.
  void make_dirs(const std::string& dir) {
    if (dir == "/" || dir.empty()) return;
    make_dirs(dir.substr(0, std::max<size_t>(dir.rfind('/'), 1)));
    if (made_.insert(dir).second) add({MountOp::Kind::make_dir, "", under_root(dir)});
  }

  void add(MountOp op) { plan_.ops.push_back(std::move(op)); }
  std::string under_root(const std::string& path) const { return plan_.staging_root + path; }
  void mark_made(const std::string& dir) { made_.insert(dir); }

 private:
  MountPlan& plan_;
  std::set<std::string> made_;
};

std::string parent_of(const std::string& path) {
  return path.substr(0, std::max<size_t>(path.rfind('/'), 1));
}

}  // namespace

bool valid_user_name(std::string_view name) {
  if (name.empty() || name.size() > 32 || name.front() == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

namespace {

// The host symlink at `host`, recreated at `inside` with the same link text.
Status plan_symlink(PlanBuilder& builder, const std::string& host, const std::string& inside) {
  char link[4096];
  ssize_t n = ::readlink(host.c_str(), link, sizeof link - 1);
  if (n < 0) return errno_error("readlink(\"" + host + "\")");
  builder.add({MountOp::Kind::symlink, std::string(link, static_cast<size_t>(n)),
               builder.under_root(inside)});
  return {};
}

// A host file or directory tree recreated under the new root: directories, regular files (with
// their permission bits) and symlinks; anything else (sockets, devices) is left out.
Status plan_copy(PlanBuilder& builder, const std::string& host, const std::string& inside,
                 uint64_t& copied_bytes) {
  struct stat st {};
  if (::lstat(host.c_str(), &st) != 0) return errno_error("lstat(\"" + host + "\")");
  if (S_ISLNK(st.st_mode)) return plan_symlink(builder, host, inside);
  if (S_ISDIR(st.st_mode)) {
    builder.make_dirs(inside);
    std::vector<std::string> names;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(host, error)) {
      names.push_back(entry.path().filename().string());
    }
    if (error) return SetupError{"list \"" + host + "\"", error.value()};
    std::sort(names.begin(), names.end());  // the same plan every time
    for (const std::string& name : names) {
      if (Status s = plan_copy(builder, host + "/" + name, inside + "/" + name, copied_bytes); !s) {
        return s;
      }
    }
    return {};
  }
  if (!S_ISREG(st.st_mode)) return {};
  copied_bytes += static_cast<uint64_t>(st.st_size);
  if (copied_bytes > kMaxCopiedBytes) {
    return SetupError{"copy \"" + host + "\": more than " + std::to_string(kMaxCopiedBytes) +
                          " bytes copied in all; bind it instead",
                      EFBIG};
  }
  auto content = read_file(host);
  if (!content) return content.error();
  builder.add({MountOp::Kind::write_file, "", builder.under_root(inside), 0,
               std::move(content.value()), static_cast<unsigned>(st.st_mode & 0755)});
  return {};
}

Status plan_bind(PlanBuilder& builder, const BindMount& bind, uint64_t& copied_bytes) {
  const std::string& inside = bind.sandbox_path.empty() ? bind.host_path : bind.sandbox_path;
  if (!is_clean_absolute_path(bind.host_path) || !is_clean_absolute_path(inside)) {
    return SetupError{"bind \"" + bind.host_path + "\" -> \"" + inside +
                          "\": paths must be absolute, without '.' or '..'",
                      0};
  }
  struct stat st {};
  if (::lstat(bind.host_path.c_str(), &st) != 0) {
    if (errno == ENOENT && bind.optional) return {};
    return errno_error("lstat(\"" + bind.host_path + "\")");
  }
  builder.make_dirs(parent_of(inside));
  if (bind.copy) return plan_copy(builder, bind.host_path, inside, copied_bytes);
  // Debian's /bin, /lib, /lib64 point into /usr: recreate the link rather than bind its target.
  if (S_ISLNK(st.st_mode)) return plan_symlink(builder, bind.host_path, inside);
  if (S_ISDIR(st.st_mode)) {
    builder.make_dirs(inside);
  } else {
    builder.add({MountOp::Kind::make_file, "", builder.under_root(inside), 0, "", 0644});
  }
  unsigned long flags = bind.writable ? (MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV)
                                      : kReadOnlyBind;
  builder.add({MountOp::Kind::bind, bind.host_path, builder.under_root(inside),
               flags | locked_flags(bind.host_path)});
  return {};
}

std::string tmpfs_options(uint64_t size_bytes, uint32_t mode) {
  char octal[16];
  std::snprintf(octal, sizeof octal, "%04o", mode);
  return "size=" + std::to_string(size_bytes) + ",mode=" + octal;
}

}  // namespace

bool is_clean_absolute_path(const std::string& path) {
  if (path.empty() || path[0] != '/') return false;
  if (path == "/") return true;
  if (path.back() == '/') return false;
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view part(path.data() + start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

Expected<MountPlan> plan_mounts(const Spec& spec, const std::string& staging_root,
                                const std::string& host_workdir, const SandboxIdentity& identity) {
  MountPlan plan;
  plan.staging_root = staging_root;
  plan.workdir = spec.filesystem.workdir;
  if (!is_clean_absolute_path(plan.workdir) || plan.workdir == "/") {
    return SetupError{"workdir \"" + plan.workdir + "\" must be an absolute path below /", 0};
  }
  PlanBuilder builder(plan);
  builder.mark_made("/");

  uint64_t copied_bytes = 0;
  for (const BindMount& bind : spec.filesystem.binds) {
    if (Status status = plan_bind(builder, bind, copied_bytes); !status) return status.error();
  }
  // 1 MiB for directories and the identity files, plus what is copied in.
  plan.root_options = "size=" + std::to_string(kMiB + copied_bytes) + ",nr_inodes=4096,mode=0755";

  // A fresh /proc for the sandbox's own pid namespace.
  plan.mask_proc = !spec.fork_server;
  builder.make_dirs("/proc");
  builder.add({MountOp::Kind::proc, "proc", builder.under_root("/proc"),
               MS_NOSUID | MS_NODEV | MS_NOEXEC});

  // A minimal /dev: a few harmless device nodes bound from the host, and the usual links.
  builder.make_dirs("/dev");
  builder.add({MountOp::Kind::tmpfs, "", builder.under_root("/dev"), MS_NOSUID | MS_NOEXEC,
               tmpfs_options(64 * kKiB, 0755)});
  for (const char* node : {"null", "zero", "full", "random", "urandom"}) {
    std::string target = builder.under_root(std::string("/dev/") + node);
    builder.add({MountOp::Kind::make_file, "", target, 0, "", 0666});
    builder.add({MountOp::Kind::bind, std::string("/dev/") + node, target,
                 MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC});
  }
  builder.add({MountOp::Kind::symlink, "/proc/self/fd", builder.under_root("/dev/fd")});
  builder.add({MountOp::Kind::symlink, "/proc/self/fd/0", builder.under_root("/dev/stdin")});
  builder.add({MountOp::Kind::symlink, "/proc/self/fd/1", builder.under_root("/dev/stdout")});
  builder.add({MountOp::Kind::symlink, "/proc/self/fd/2", builder.under_root("/dev/stderr")});
  // The writable places but the working dir (bound below): /tmp, /dev/shm and the spec's own,
  // with the sizes and modes a forked sandbox gets from the same list (setup_plan.h).
  auto places = writable_places(spec);
  if (!places) return places.error();
  for (size_t i = 1; i < places->size(); ++i) {
    const WritablePlace& place = (*places)[i];
    builder.make_dirs(place.path);
    builder.add({MountOp::Kind::tmpfs, "", builder.under_root(place.path), MS_NOSUID | MS_NODEV,
                 tmpfs_options(place.size_bytes, place.mode)});
  }

  // Identity files: who the program is, and that localhost is loopback.
  builder.make_dirs("/etc");
  const std::string uid = std::to_string(identity.uid), gid = std::to_string(identity.gid);
  builder.add({MountOp::Kind::write_file, "", builder.under_root("/etc/passwd"), 0,
               identity.user_name + ":x:" + uid + ":" + gid + "::" + plan.workdir +
                   ":/bin/sh\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n",
               0644});
  builder.add({MountOp::Kind::write_file, "", builder.under_root("/etc/group"), 0,
               identity.user_name + ":x:" + gid + ":\nnogroup:x:65534:\n", 0644});
  builder.add({MountOp::Kind::write_file, "", builder.under_root("/etc/hosts"), 0,
               "127.0.0.1 localhost " + spec.hostname + "\n::1 localhost\n", 0644});
  builder.add({MountOp::Kind::write_file, "", builder.under_root("/etc/hostname"), 0,
               spec.hostname + "\n", 0644});
  if (!spec.gateway_ports.empty()) {  // every name is asked of the egress gateway
    builder.add({MountOp::Kind::write_file, "", builder.under_root("/etc/resolv.conf"), 0,
                 std::string("nameserver ") + kGatewayResolver + "\noptions attempts:2\n", 0644});
  }

  // The working directory: the host's per-run directory, writable.
  builder.make_dirs(plan.workdir);
  builder.add({MountOp::Kind::bind, host_workdir, builder.under_root(plan.workdir),
               MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | locked_flags(host_workdir)});
  return plan;
}

// ---- child side: raw syscalls only, no allocation ----

namespace {

bool write_whole_file(const char* path, const std::string& content, unsigned mode) {
  int fd = ::open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return false;
  const char* data = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return false;
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  ::close(fd);
  return true;
}

bool apply_op(const MountOp& op) {
  switch (op.kind) {
    case MountOp::Kind::make_dir:
      return ::mkdir(op.target.c_str(), op.mode) == 0 || errno == EEXIST;
    case MountOp::Kind::make_file: {
      int fd = ::open(op.target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, op.mode);
      if (fd < 0) return false;
      ::close(fd);
      return true;
    }
    case MountOp::Kind::bind:
      // The first call binds; only the remount can apply read-only and the other flags.
      if (::mount(op.source.c_str(), op.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        return false;
      }
      return ::mount(nullptr, op.target.c_str(), nullptr, op.flags, nullptr) == 0;
    case MountOp::Kind::tmpfs:
      return ::mount("tmpfs", op.target.c_str(), "tmpfs", op.flags, op.data.c_str()) == 0;
    case MountOp::Kind::proc:
      return ::mount("proc", op.target.c_str(), "proc", op.flags, nullptr) == 0;
    case MountOp::Kind::symlink:
      return ::symlink(op.source.c_str(), op.target.c_str()) == 0;
    case MountOp::Kind::write_file:
      return write_whole_file(op.target.c_str(), op.data, op.mode);
  }
  errno = EINVAL;
  return false;
}

}  // namespace

bool mask_proc(const char** failed_path) {
  constexpr unsigned long kHidden = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  constexpr const char* kEmpty = "size=4k,nr_inodes=1,mode=0555";
  for (const char* path : kMaskedProcFiles) {
    *failed_path = path;
    if (::mount("/dev/null", path, nullptr, MS_BIND, nullptr) != 0 && errno != ENOENT) return false;
  }
  for (const char* path : kMaskedProcDirs) {
    *failed_path = path;
    if (::mount("tmpfs", path, "tmpfs", MS_RDONLY | kHidden, kEmpty) != 0 && errno != ENOENT) {
      return false;
    }
  }
  for (const char* path : kReadOnlyProcPaths) {
    *failed_path = path;
    if (::mount(path, path, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      if (errno == ENOENT) continue;
      return false;
    }
    if (::mount(nullptr, path, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | kHidden, nullptr) != 0) {
      return false;
    }
  }
  *failed_path = nullptr;
  return true;
}

bool apply_mount_plan(const MountPlan& plan, const MountOp** failed_op) {
  static const MountOp kRoot{MountOp::Kind::tmpfs, "", "new root"};
  static const MountOp kPivot{MountOp::Kind::bind, "", "pivot_root"};
  static const MountOp kReadOnlyRoot{MountOp::Kind::bind, "", "remount / read-only"};
  static const MountOp kReadOnlyDev{MountOp::Kind::bind, "", "remount /dev read-only"};
  static const MountOp kChdir{MountOp::Kind::make_dir, "", "chdir(workdir)"};
  static const MountOp kMaskProc{MountOp::Kind::bind, "", "mask /proc"};
  *failed_op = &kRoot;
  // Nothing done here may propagate back to the host's mount namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  if (::mount("tmpfs", plan.staging_root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
              plan.root_options.c_str()) != 0) {
    return false;
  }
  for (const MountOp& op : plan.ops) {
    *failed_op = &op;
    if (!apply_op(op)) return false;
  }
  *failed_op = &kPivot;
  // pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only ours.
  if (::chdir(plan.staging_root.c_str()) != 0) return false;
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return false;
  if (::umount2(".", MNT_DETACH) != 0) return false;
  *failed_op = &kReadOnlyRoot;
  if (::mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
              nullptr) != 0) {
    return false;
  }
  // /dev is a tmpfs of its own, populated above: read-only too, so that nothing can be left in
  // it (a forked sandbox shares its zygote's, and so would share what one child left there).
  *failed_op = &kReadOnlyDev;
  if (::mount(nullptr, "/dev", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
              nullptr) != 0) {
    return false;
  }
  *failed_op = &kMaskProc;
  const char* masked = nullptr;
  if (plan.mask_proc && !mask_proc(&masked)) return false;
  *failed_op = &kChdir;
  if (::chdir(plan.workdir.c_str()) != 0) return false;
  *failed_op = nullptr;
  return true;
}

}  // namespace airlock::sandbox
