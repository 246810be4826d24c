// libairlock_fork.so: the steps of a forked sandbox's children (fork_child.h has the outline).
// The zygote's driver calls these between its os.fork()s; the zygote is single-threaded, so
// unlike a cold child these may use the stack freely, but they still allocate nothing.
#include "sandbox/fork_child.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "sandbox/child_steps.h"
#include "sandbox/fd_passing.h"
#include "sandbox/mounts.h"
#include "sandbox/namespaces.h"
#include "sandbox/process.h"
#include "sandbox/seccomp.h"

namespace airlock::sandbox {
namespace {

// The request being served; copied into A and B by fork.
ForkRequest request;
sock_filter filters[2 * kMaxFilterLength];
// Every entry -1 until a request fills them (a 0 would be taken for stdin and closed).
std::array<int, ForkRequest::kMaxFdCount> request_fds = [] {
  std::array<int, ForkRequest::kMaxFdCount> none;
  none.fill(-1);
  return none;
}();
enum { kStdin, kStdout, kStderr, kChannel, kControl, kCgroupJoin };

void close_request_fds() {
  for (int& fd : request_fds) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
}

// Says hello with a pidfd of this very process (so the supervisor need not trust a pid number,
// which could be reused) and, for B, the working directory's fd.
void hello(int control, const char* role, int workdir) {
  ControlMessage message;
  message.kind = ControlMessage::fork_hello;
  std::snprintf(message.text, sizeof message.text, "%s", role);
  const int self = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
  if (self < 0) fail(control, "pidfd_open(self)", role, errno);
  const int fds[2] = {self, workdir};
  if (!send_message(control, message, fds, workdir >= 0 ? 2 : 1)) {
    fail(control, "sendmsg(hello)", role, errno);
  }
  ::close(self);
}

void write_proc_file(int control, const char* path, const char* text) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) fail(control, "open", path, errno);
  ssize_t length = static_cast<ssize_t>(std::strlen(text));
  if (::write(fd, text, static_cast<size_t>(length)) != length) fail(control, "write", path, errno);
  ::close(fd);
}

}  // namespace
}  // namespace airlock::sandbox

using namespace airlock::sandbox;

extern "C" int airlock_zygote_next(int fork_socket) {
  close_request_fds();
  struct iovec parts[2] = {{&request, sizeof request}, {filters, sizeof filters}};
  const Received received =
      receive_with_fds(fork_socket, parts, 2, request_fds.data(), ForkRequest::kMaxFdCount, 0);
  if (received.bytes <= 0) return 0;
  // Fds beyond the most a request has were closed; the request is refused, as is one whose fds
  // are not the five plus the cgroup files it says it carries.
  const bool whole = received.bytes >= static_cast<ssize_t>(sizeof request) &&
                     !received.truncated && received.fds_closed == 0;
  if (!whole ||
      !fork_request_valid(request, static_cast<size_t>(received.bytes) - sizeof request) ||
      received.fd_count != ForkRequest::kFdCount + static_cast<int>(request.cgroup_join_count)) {
    close_request_fds();
    return -1;
  }
  return 1;
}

namespace {

// A: hello, new namespaces, id maps (the steps are numbered as in child_steps.h).
void prepare_namespaces() {
  const int control = request_fds[kControl];
  const SetupPlan& plan = request.setup;
  // 1. Die with the supervisor; join the run's cgroup where the request carries its files (else
  // the supervisor moves A and B after their hellos, and B waits for that).
  die_with_supervisor(control, "A");
  static_assert(ForkRequest::kMaxFdCount <= kMaxKeptFds);
  close_all_but(request_fds.data(), ForkRequest::kMaxFdCount);
  join_cgroup(control, request_fds.data() + kCgroupJoin, request.cgroup_join_count);
  for (uint32_t i = 0; i < request.cgroup_join_count; ++i) request_fds[kCgroupJoin + i] = -1;
  // The zygote lets the kernel reap its children; A waits for its own.
  ::signal(SIGCHLD, SIG_DFL);
  hello(control, "init", -1);
  if (::unshare(static_cast<int>(sandbox_clone_flags())) != 0) {
    fail(control, "unshare(namespaces)", nullptr, errno);
  }
  // The new user namespace maps our own ids only: inside, the program keeps the ids it has.
  char line[64];
  std::snprintf(line, sizeof line, "%u %u 1\n", plan.uid, plan.uid);
  write_proc_file(control, "/proc/self/uid_map", line);
  write_proc_file(control, "/proc/self/setgroups", "deny");
  std::snprintf(line, sizeof line, "%u %u 1\n", plan.gid, plan.gid);
  write_proc_file(control, "/proc/self/gid_map", line);
  // 2. Clocks of its own, as a cold sandbox has, which B enters at its fork; inotify caps.
  if (const char* step = nullptr; !enter_time_namespace(&step)) fail(control, step, nullptr, errno);
  limit_user_namespace(control);
}

// B: the rest of the checklist, ending with fds 0-3 in place and both filters installed.
void enter_sandbox() {
  const int control = request_fds[kControl];
  const SetupPlan& plan = request.setup;
  die_with_supervisor(control, "B");
  // 4. The file system: what the zygote saw, with every writable place replaced by an empty one
  // and a /proc of our own pid namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    fail(control, "mount(private)", "/", errno);
  }
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    fail(control, "mount proc", "/proc", errno);
  }
  if (const char* path = nullptr; !mask_proc(&path)) fail(control, "mask /proc", path, errno);
  for (uint32_t i = 0; i < plan.writable_count; ++i) {
    const SetupTmpfs& tmpfs = plan.writable[i];
    char options[128];
    std::snprintf(options, sizeof options, "size=%llu,mode=%o,uid=%u,gid=%u",
                  static_cast<unsigned long long>(tmpfs.size_bytes), tmpfs.mode, plan.uid,
                  plan.gid);
    if (::mount("tmpfs", tmpfs.path, "tmpfs", MS_NOSUID | MS_NODEV, options) != 0) {
      fail(control, "mount tmpfs", tmpfs.path, errno);
    }
  }
  // The zygote's working directory is still ours until we leave it: into the fresh one.
  const char* workdir_path = plan.writable[0].path;
  if (::chdir(workdir_path) != 0) fail(control, "chdir", workdir_path, errno);
  // 5. Network: loopback only, in a namespace of its own.
  bring_up_network(control, plan.hostname, std::strlen(plan.hostname), plan.gateway_ports,
                   plan.gateway_port_count);
  // 1. Hello, with the working directory for the supervisor's file transfers; then wait for its
  // go, which comes once we are in the run's cgroup (A's, which A joined before forking us, or
  // where the supervisor moved us).
  int workdir = ::open(workdir_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (workdir < 0) fail(control, "open", workdir_path, errno);
  hello(control, "program", workdir);
  ::close(workdir);
  char go = 0;
  if (::recv(control, &go, 1, 0) != 1 || go != 'g') ::_exit(kSetupFailedExit);
  // 2. A cgroup namespace; 3. a new session.
  enter_cgroup_namespace(control);
  new_session(control);
  // 6. Privileges: no capabilities, no_new_privs (inherited, and set again); 7. armed again.
  drop_to_sandbox_user(control, plan.uid, plan.gid, false);
  die_with_supervisor(control, "B");
  // 10. Only 0-3 reach the program; the control socket sits where the program cannot open an fd.
  const int socket = place_fds({request_fds[kStdin], request_fds[kStdout], request_fds[kStderr],
                                request_fds[kChannel], control, plan.control_fd_number});
  reset_signals(SignalReset::sigchld_only);
  set_rlimits(socket, plan.rlimits, plan.rlimit_count);
  // 11. The policy's filter (reporting to the supervisor) and the floor under it.
  ::close(install_filters_and_report(socket, filters, plan.policy_length,
                                     filters + plan.policy_length, plan.floor_length));
  ::close(socket);
}

// A, after forking B: waits for B and reports its wait status.
void watch_program(pid_t pid) {
  const int control = request_fds[kControl];
  const int keep[] = {control};
  close_all_but(keep, 1);  // the pipes reach EOF once B's side is done with them
  int status = 0;
  pid_t waited;
  do {
    waited = ::waitpid(pid, &status, __WALL);
  } while (waited < 0 && errno == EINTR);
  ControlMessage message;
  message.kind = ControlMessage::program_status;
  message.wait_status = waited == pid ? status : W_EXITCODE(kSetupFailedExit, 0);
  send_message(control, message, nullptr, 0);
}

}  // namespace

extern "C" int airlock_zygote_fork(void) {
  // fork(), not the interpreter's os.fork(): A runs none of the interpreter's code (so copies
  // none of its pages), and B returns into it as from this call, once it is a sandbox.
  const pid_t init = ::fork();
  if (init != 0) {
    close_request_fds();  // the child's now; holding them would keep its pipes from EOF
    return init < 0 ? -1 : static_cast<int>(init);
  }
  prepare_namespaces();
  const pid_t program = ::fork();
  if (program < 0) fail(request_fds[kControl], "fork(program)", nullptr, errno);
  if (program == 0) {
    enter_sandbox();
    return 0;
  }
  watch_program(program);
  ::_exit(0);
}

extern "C" int airlock_zygote_serve(int fork_socket) {
  for (;;) {
    const int loaded = airlock_zygote_next(fork_socket);
    if (loaded == 0) return 1;
    if (loaded > 0 && airlock_zygote_fork() == 0) return 0;
  }
}
