#include "sandbox/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "sandbox/child_steps.h"
#include "sandbox/namespaces.h"

namespace airlock::sandbox {
namespace {

constexpr uint64_t kCloneIntoCgroup = 0x200000000ULL;
constexpr uint64_t kClonePidfd = 0x00001000ULL;

// struct clone_args from linux/sched.h, spelled out to keep that header (which redefines glibc's
// CLONE_* macros) out of this file.
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};

// ---- child side: from here to spawn_child, only syscalls and stack memory ----

const char* mount_step(const MountOp& op) {
  switch (op.kind) {
    case MountOp::Kind::make_dir: return "mkdir";
    case MountOp::Kind::make_file: return "create";
    case MountOp::Kind::bind: return "bind mount";
    case MountOp::Kind::tmpfs: return "mount tmpfs";
    case MountOp::Kind::proc: return "mount proc";
    case MountOp::Kind::symlink: return "symlink";
    case MountOp::Kind::write_file: return "write";
  }
  return "mount step";
}

// Moves fd to a number above `floor`, close-on-exec, so that later dup2s cannot clobber it.
// pid 2 of the sandbox: steps 10 and 11 of the checklist (child_steps.h), then exec.
[[noreturn]] void run_program(const ChildPlan& plan, const ChildFds& fds) {
  // 10. Only 0, 1, 2 (and 3 for a session driver) reach the program; the control socket sits at an
  // fd number the program cannot open (>= its RLIMIT_NOFILE) and closes on exec.
  const SetupPlan& setup = plan.setup;
  const int socket = place_fds({fds.stdin_read, fds.stdout_write, fds.stderr_write,
                                fds.channel_write, fds.control, setup.control_fd_number});
  reset_signals(SignalReset::all);
  set_rlimits(socket, setup.rlimits, setup.rlimit_count);
  // 11. The policy's filter (reporting to the supervisor) and the floor under it.
  install_filters_and_report(socket, setup.zygote ? nullptr : plan.seccomp->policy_program.data(),
                             setup.policy_length, plan.seccomp->floor_program.data(),
                             setup.floor_length);

  int exec_errno = ENOENT;
  for (const std::string& path : plan.program_paths) {
    ::execve(path.c_str(), plan.argv.data(), plan.envp.data());
    // Keep the most telling error: EACCES from one PATH entry beats ENOENT from the next.
    if (errno != ENOENT || exec_errno == ENOENT) exec_errno = errno;
  }
  fail(socket, "execve", plan.argv[0], exec_errno);
}

// pid 1 of the sandbox: reaps orphans, reports the program's status, and by exiting ends every
// process left in the namespace (a double-forked daemon included).
[[noreturn]] void run_init(const ChildFds& fds, pid_t program) {
  // init keeps only the control socket: pipes must reach EOF when the program's side is done.
  ::close(fds.stdin_read);
  ::close(fds.stdout_write);
  ::close(fds.stderr_write);
  if (fds.channel_write >= 0) ::close(fds.channel_write);
  for (int fd = 0; fd <= 2; ++fd) {
    if (fd != fds.control) ::close(fd);
  }
  for (;;) {
    int status = 0;
    pid_t pid = ::wait4(-1, &status, __WALL, nullptr);
    if (pid == program) {
      ControlMessage message;
      message.kind = ControlMessage::program_status;
      message.wait_status = status;
      send_message(fds.control, message, nullptr, 0);
      ::_exit(0);
    }
    if (pid < 0 && errno == ECHILD) ::_exit(0);
  }
}

// What a program sees of its init: airlock's name, not a copy of the service's command line (a
// cold init is a clone of the service) or its environment. As setproctitle(3) does: a non-zero
// last byte tells the kernel to show the arguments up to their first NUL.
void show_as_init(const ProcessStrings& strings) {
  ::prctl(PR_SET_NAME, kInitName);
  if (strings.env != nullptr) std::memset(strings.env, 0, strings.env_size);
  if (strings.args == nullptr || strings.args_size < 2) return;
  std::memset(strings.args, 0, strings.args_size);
  std::memcpy(strings.args, kInitName, std::min(std::strlen(kInitName), strings.args_size - 2));
  strings.args[strings.args_size - 1] = ' ';
}

[[noreturn]] void child_main(const ChildPlan& plan, const ChildFds& fds) {
  const int socket = fds.control;
  // The clone copied all of the supervisor's fds: other runs' pipes and the service's sockets
  // must not stay open in here.
  static_assert(9 + kMaxCgroupJoinFiles <= kMaxKeptFds);
  int keep[kMaxKeptFds];
  int kept = 0;
  for (int fd : {0, 1, 2, fds.stdin_read, fds.stdout_write, fds.stderr_write, fds.control,
                 fds.sync_read, fds.channel_write}) {
    keep[kept++] = fd;
  }
  for (int i = 0; i < fds.cgroup_join_count; ++i) keep[kept++] = fds.cgroup_join[i];
  close_all_but(keep, kept);
  // 1. Die with the supervisor; then wait until it has written our id maps (and moved us into
  // the run's cgroup, unless we join it ourselves here).
  die_with_supervisor(socket, nullptr);
  char go = 0;
  if (::read(fds.sync_read, &go, 1) != 1 || go != 'g') ::_exit(kSetupFailedExit);
  ::close(fds.sync_read);
  join_cgroup(socket, fds.cgroup_join, static_cast<size_t>(fds.cgroup_join_count));
  // 2. A cgroup namespace rooted at our own cgroup, now that we are in it.
  enter_cgroup_namespace(socket);
  // A time namespace whose clocks start now, which the program enters at its exec.
  if (const char* step = nullptr; !enter_time_namespace(&step)) fail(socket, step, nullptr, errno);
  // Its own inotify caps; a zygote keeps none, since its namespace holds all of its forks'.
  if (!plan.setup.zygote) limit_user_namespace(socket);
  // Files we create in the new root must have an owner that exists in our user namespace; host
  // root does not. Capabilities stay: uid 0 is not mapped here, so this is no drop from root.
  ::setfsgid(plan.setup.gid);
  ::setfsuid(plan.setup.uid);
  // 3. A new session: no controlling terminal to inject into or signal through.
  new_session(socket);
  // 4. The file system: a fresh root, pivoted into, read-only.
  const MountOp* failed = nullptr;
  if (!apply_mount_plan(plan.mounts, &failed)) {
    fail(socket, failed ? mount_step(*failed) : "mount", failed ? failed->target.c_str() : nullptr,
         errno);
  }
  // 5. Network: loopback, and the egress gateway's sockets when the spec has gateway ports.
  bring_up_network(socket, plan.setup.hostname, std::strlen(plan.setup.hostname),
                   plan.setup.gateway_ports, plan.setup.gateway_port_count);
  // 6. Privileges are dropped here: uid/gid 1000, no capabilities, no_new_privs.
  drop_to_sandbox_user(socket, plan.setup.uid, plan.setup.gid, true);
  // 7. Not dumpable: the program, same uid, cannot open /proc/1/mem or our fds.
  if (::prctl(PR_SET_DUMPABLE, 0) != 0) fail(socket, "prctl(PR_SET_DUMPABLE)", nullptr, errno);
  // The kernel clears the parent-death signal on every uid/gid change: arm it again now that
  // they are done, then make sure the supervisor did not die in between. It is the only peer of
  // the control socket, which it never writes to: EOF there means it is gone.
  die_with_supervisor(socket, nullptr);
  char peek;
  if (::recv(socket, &peek, 1, MSG_DONTWAIT | MSG_PEEK) == 0) ::_exit(kSetupFailedExit);
  // 8. pid 1 shows airlock's init, not the service it was cloned from.
  show_as_init(plan.host_strings);
  // 9. The program runs as pid 2; we stay as its init. vfork: no page tables to copy and no
  // atfork handlers (which could wait on locks copied from the supervisor's other threads); we
  // sleep until the program has exec'd. Its steps only make syscalls and write its own stack
  // below ours, which is what vfork permits, and its signal and fd tables are its own.
  pid_t program = ::vfork();
  // Kernels before 6.3 (Debian 12's 6.1) refuse CLONE_VM into the new time namespace of step 2
  // with EINVAL: then a plain fork, by its syscall, so that still no atfork handler runs.
  if (program < 0 && errno == EINVAL) program = static_cast<pid_t>(::syscall(SYS_fork));
  if (program < 0) fail(socket, "fork(program)", nullptr, errno);
  if (program == 0) run_program(plan, fds);
  run_init(fds, program);
}

}  // namespace

std::optional<GatewaySockets> take_gateway_sockets(UniqueFd* passed, int count) {
  if (count < 3) return std::nullopt;
  GatewaySockets sockets;
  for (int i = 0; i + 2 < count; ++i) sockets.tcp_listeners.push_back(std::move(passed[i]));
  sockets.dns = std::move(passed[count - 2]);
  sockets.refusals = std::move(passed[count - 1]);
  return sockets;
}

const ProcessStrings& own_process_strings() {
  static const ProcessStrings strings = [] {
    ProcessStrings found;
    auto read = read_file("/proc/self/stat");
    if (!read) return found;
    const std::string& stat = read.value();
    // After "pid (comm) ", whose comm may hold spaces: fields 3 onwards; 48-51 are arg_start,
    // arg_end, env_start, env_end.
    size_t at = stat.rfind(')');
    if (at == std::string::npos) return found;
    std::vector<unsigned long long> fields;
    const char* cursor = stat.c_str() + at + 1;
    char* end = nullptr;
    while (fields.size() < 49) {
      while (*cursor == ' ') ++cursor;
      if (*cursor == '\0' || *cursor == '\n') break;
      // Field 3 is a letter (the state); strtoull makes it 0 and we skip to the next space.
      fields.push_back(std::strtoull(cursor, &end, 10));
      cursor = end;
      while (*cursor != ' ' && *cursor != '\0') ++cursor;
    }
    if (fields.size() < 49) return found;
    auto field = [&](size_t number) { return fields[number - 3]; };
    if (field(49) > field(48)) {
      found.args = reinterpret_cast<char*>(field(48));
      found.args_size = field(49) - field(48);
    }
    if (field(51) > field(50)) {
      found.env = reinterpret_cast<char*>(field(50));
      found.env_size = field(51) - field(50);
    }
    return found;
  }();
  return strings;
}

void ChildPlan::finalize() {
  argv.clear();
  envp.clear();
  for (std::string& arg : argv_storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  for (std::string& variable : env_storage) envp.push_back(variable.data());
  envp.push_back(nullptr);
  program_paths.clear();
  if (argv_storage.empty()) return;
  const std::string& program = argv_storage[0];
  if (program.find('/') != std::string::npos) {
    program_paths.push_back(program);
    return;
  }
  std::string path = "/usr/local/bin:/usr/bin:/bin";
  for (const std::string& variable : env_storage) {
    if (variable.rfind("PATH=", 0) == 0) path = variable.substr(5);
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    program_paths.push_back((dir.empty() ? "." : dir) + "/" + program);
    start = end + 1;
  }
}

ChildProcess::~ChildProcess() {
  if (!pidfd_.valid() || reaped_) return;
  kill();
  if (!own_child_) {
    // Not ours to wait for: watch for its end, which follows B's within milliseconds.
    pollfd ended{pidfd_.get(), POLLIN, 0};
    ::poll(&ended, 1, 2000);
    return;
  }
  siginfo_t info{};
  ::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED);
}

void ChildProcess::kill() {
  if (reaped_) return;
  if (program_pidfd_.valid()) ::syscall(SYS_pidfd_send_signal, program_pidfd_.get(), SIGKILL, nullptr, 0);
  if (pidfd_.valid()) ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
}

bool ChildProcess::try_reap(int* wait_status) {
  if (reaped_) return true;
  if (!own_child_) {
    pollfd ended{pidfd_.get(), POLLIN, 0};
    if (::poll(&ended, 1, 0) != 1) return false;
    reaped_ = true;
    *wait_status = 0;  // A reports B's status on the control socket before it exits
    return true;
  }
  siginfo_t info{};
  if (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED | WNOHANG) != 0) {
    return false;
  }
  if (info.si_pid == 0) return false;
  reaped_ = true;
  if (info.si_code == CLD_EXITED) {
    *wait_status = W_EXITCODE(info.si_status, 0);
  } else {
    *wait_status = info.si_status & 0x7f;  // the terminating signal
  }
  return true;
}

Expected<ChildProcess> spawn_child(const ChildPlan& plan, const ChildFds& fds, int cgroup_fd) {
  int pidfd = -1;
  CloneArgs args{};
  args.flags = sandbox_clone_flags() | kClonePidfd;
  args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  args.exit_signal = SIGCHLD;
  if (cgroup_fd >= 0) {
    args.flags |= kCloneIntoCgroup;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  long pid = ::syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) return errno_error("clone3(namespaces)");
  if (pid == 0) child_main(plan, fds);
  return ChildProcess(static_cast<pid_t>(pid), UniqueFd::adopt(pidfd));
}

}  // namespace airlock::sandbox
