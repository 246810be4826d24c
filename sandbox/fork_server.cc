// Fork servers, supervisor side: start a zygote, and fork sandboxes from it (fork_child.h has the
// children's steps). A forked sandbox is watched like any live sandbox: the same monitor, cgroup,
// listener and outcome; only its launch differs.
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "sandbox/fd_passing.h"
#include "sandbox/fork_child.h"
#include "sandbox/supervisor.h"

namespace airlock::sandbox {
namespace {

// A bound for a driver that hangs, not an expectation: its imports take about half a second here
// and over 20 s on an emulated CPU (the cgroup-v2 VM stage of scripts/test.sh).
constexpr std::chrono::seconds kZygoteStartTimeout{60};
constexpr std::chrono::seconds kForkSetupTimeout{5};
constexpr size_t kKeptStderr = 4096;

// The child's own tmpfs, kept open by fd: readable and writable by the runner before, during and
// after the run (the mount outlives the child's mount namespace while the fd is open).
class ForkedWorkspace final : public OwnedWorkspace {
 public:
  ForkedWorkspace(UniqueFd dir, uint32_t uid, uint32_t gid)
      : OwnedWorkspace("/proc/self/fd/" + std::to_string(dir.get()), uid, gid),
        dir_(std::move(dir)) {}

 private:
  UniqueFd dir_;
};

int milliseconds_until(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(0, left.count()));
}

// What A and B say once their first steps are done (fork_child.cc): each a pidfd of itself
// (the number the kernel attaches as credentials could belong to another process by the time it
// is used; the pidfd cannot), B also its working directory.
struct Hellos {
  UniqueFd init, program, workdir;
  std::optional<GatewaySockets> gateway;  // B's, from its step 5, when it has gateway ports
};

// The pid (in our namespace) of the process a pidfd refers to: its fdinfo's "Pid:" line; -1 once
// it has exited.
pid_t pid_of(const UniqueFd& pidfd) {
  auto info = read_file("/proc/self/fdinfo/" + std::to_string(pidfd.get()));
  if (!info) return -1;
  size_t at = info->find("\nPid:");
  if (at == std::string::npos) return -1;
  return static_cast<pid_t>(std::strtol(info->c_str() + at + 5, nullptr, 10));
}

bool has_exited(int pidfd) {
  pollfd ended{pidfd, POLLIN, 0};
  return ::poll(&ended, 1, 0) != 0;
}

Expected<Hellos> receive_hellos(int control) {
  Hellos hellos;
  const auto deadline = std::chrono::steady_clock::now() + kForkSetupTimeout;
  while (!hellos.init.valid() || !hellos.program.valid()) {
    pollfd ready{control, POLLIN, 0};
    int polled = ::poll(&ready, 1, milliseconds_until(deadline));
    if (polled < 0 && errno == EINTR) continue;
    if (polled == 0) return SetupError{"the fork server's child did not report within 5 s", 0};
    ControlMessage message;
    struct iovec io {&message, sizeof message};
    int fds[kMaxGatewayFds];
    const Received received = receive_with_fds(control, &io, 1, fds, kMaxGatewayFds, 0);
    if (received.bytes < 0) return errno_error("recvmsg(fork hello)");
    if (received.bytes == 0) return SetupError{"the fork server's child ended during setup", 0};
    UniqueFd passed[kMaxGatewayFds];
    for (int i = 0; i < received.fd_count; ++i) passed[i] = UniqueFd::adopt(fds[i]);
    message.text[sizeof message.text - 1] = '\0';
    if (static_cast<size_t>(received.bytes) != sizeof message) continue;
    if (message.kind == ControlMessage::setup_failed) {
      return SetupError{message.text, message.error_number};
    }
    if (message.kind == ControlMessage::gateway_sockets) {
      hellos.gateway = take_gateway_sockets(passed, received.fd_count);
      continue;
    }
    if (message.kind != ControlMessage::fork_hello || !passed[0].valid()) continue;
    if (std::strcmp(message.text, "init") == 0) {
      hellos.init = std::move(passed[0]);
    } else if (std::strcmp(message.text, "program") == 0 && passed[1].valid()) {
      hellos.program = std::move(passed[0]);
      hellos.workdir = std::move(passed[1]);
    }
  }
  return hellos;
}

}  // namespace

class Zygote final : public ForkServer, public OutputHandler {
 public:
  ~Zygote() override {
    socket.reset();  // the driver sees the end of its requests and exits
    live.reset();
  }
  bool alive() const override { return live && !live->ended() && socket.valid(); }
  uint64_t memory_usage_bytes() override { return live ? live->memory_usage_bytes() : 0; }

  // The zygote's own output is its driver's complaints: kept for error messages.
  bool on_output(Stream stream, std::string_view data) override {
    if (stream != Stream::stderr_stream) return true;
    std::lock_guard lock(stderr_mutex);
    stderr_tail.append(data);
    if (stderr_tail.size() > kKeptStderr) stderr_tail.erase(0, stderr_tail.size() - kKeptStderr);
    return true;
  }
  std::string complaints() {
    std::lock_guard lock(stderr_mutex);
    return stderr_tail.empty() ? std::string("(nothing on stderr)") : stderr_tail;
  }

  std::unique_ptr<LiveSandbox> live;
  UniqueFd socket;
  std::mutex socket_mutex;  // one request at a time on the socket

 private:
  std::mutex stderr_mutex;
  std::string stderr_tail;
};

Expected<std::unique_ptr<ForkServer>> Supervisor::start_fork_server(const Spec& spec) {
  if (!spec.fork_server) return SetupError{"a fork server's spec must set fork_server", 0};
  auto zygote = std::make_unique<Zygote>();
  UniqueFd socket;
  // The launcher runs on the sandbox's thread, before start_live returns.
  auto live = start_live(*this, spec, *zygote, [this, &socket](const Spec& running) {
    auto launched = launch(running, false);
    if (launched) socket = std::move(launched.value()->fork_socket);
    return launched;
  });
  if (!live) return live.error();
  zygote->live = std::move(live.value());
  zygote->socket = std::move(socket);
  // The driver says "ready" once its imports are done.
  const auto deadline = std::chrono::steady_clock::now() + kZygoteStartTimeout;
  for (;;) {
    pollfd ready{zygote->socket.get(), POLLIN, 0};
    int polled = ::poll(&ready, 1, milliseconds_until(deadline));
    if (polled < 0 && errno == EINTR) continue;
    char word[16] = {};
    ssize_t n = polled > 0 ? ::recv(zygote->socket.get(), word, sizeof word - 1, MSG_DONTWAIT) : -1;
    if (n == 5 && std::strcmp(word, "ready") == 0) break;
    if (polled == 0 || n == 0 || (n < 0 && errno != EAGAIN)) {
      zygote->live->kill();
      zygote->live->wait();
      return SetupError{"the fork server did not start: " + zygote->complaints(), 0};
    }
  }
  return std::unique_ptr<ForkServer>(std::move(zygote));
}

Expected<ForkedSandbox> Supervisor::fork(ForkServer& server, const Spec& spec,
                                         OutputHandler& output) {
  Zygote& zygote = static_cast<Zygote&>(server);  // the only kind there is
  std::unique_ptr<Workspace> workspace;
  auto live = start_live(*this, spec, output,
                         [this, &zygote, &workspace, &output](const Spec& running) {
    auto launched = fork_launch(zygote, running);
    if (launched) {
      workspace = std::move(launched.value()->forked_workspace);
      // On the sandbox's thread, before its monitor starts: before on_started, as a cold one's.
      if (launched.value()->gateway_sockets) {
        output.on_gateway_sockets(std::move(*launched.value()->gateway_sockets));
      }
    }
    return launched;
  });
  if (!live) return live.error();
  return ForkedSandbox{std::move(live.value()), std::move(workspace)};
}

Expected<std::unique_ptr<Launch>> Supervisor::fork_launch(Zygote& zygote, const Spec& spec) {
  if (!zygote.alive()) return SetupError{"the fork server has ended: " + zygote.complaints(), 0};
  // The zygote's children install the policy's filter; a zygote's plan would have them skip it.
  if (spec.fork_server) return SetupError{"a fork server cannot be forked from a fork server", 0};
  auto launch = std::make_unique<Launch>();
  auto filters = filters_for(spec.seccomp, control_fd_number_for(spec.limits));
  if (!filters) return filters.error();
  launch->plan.seccomp = filters.value();
  ForkRequest request;
  auto setup = plan_setup(spec, SandboxIdentity{}, *filters.value());
  if (!setup) return setup.error();
  request.setup = setup.value();

  auto cgroup = cgroups_->create("run-" + std::to_string(next_run_++), spec.limits);
  if (!cgroup) return cgroup.error();
  launch->cgroup = std::move(cgroup.value());
  if (spec.background) {
    if (Status s = launch->cgroup->set_cpu_share(CpuShare::background); !s) return s.error();
  }
  auto fail = [&launch](SetupError error) -> Expected<std::unique_ptr<Launch>> {
    launch->child.reset();  // kills what was forked
    (void)launch->cgroup->destroy();
    return error;
  };

  auto join_files = launch->cgroup->self_join_files();
  if (!join_files) return fail(join_files.error());
  request.cgroup_join_count = static_cast<uint32_t>(join_files->size());
  const bool joins_itself = !join_files->empty();

  auto stdin_pipe = make_pipe_nonblocking_end(false);
  auto stdout_pipe = make_pipe_nonblocking_end(true);
  auto stderr_pipe = make_pipe_nonblocking_end(true);
  auto channel = make_pipe_nonblocking_end(true);
  auto control = make_socketpair();
  for (const SetupError* error :
       {stdin_pipe ? nullptr : &stdin_pipe.error(), stdout_pipe ? nullptr : &stdout_pipe.error(),
        stderr_pipe ? nullptr : &stderr_pipe.error(), channel ? nullptr : &channel.error(),
        control ? nullptr : &control.error()}) {
    if (error) return fail(*error);
  }

  {
    const SeccompFilters& compiled = *filters.value();
    struct iovec parts[3] = {{&request, sizeof request},
                             {const_cast<sock_filter*>(compiled.policy_program.data()),
                              compiled.policy_program.size() * sizeof(sock_filter)},
                             {const_cast<sock_filter*>(compiled.floor_program.data()),
                              compiled.floor_program.size() * sizeof(sock_filter)}};
    int fds[ForkRequest::kMaxFdCount] = {stdin_pipe->read_end.get(), stdout_pipe->write_end.get(),
                                         stderr_pipe->write_end.get(), channel->write_end.get(),
                                         control->second.get()};
    for (size_t i = 0; i < join_files->size(); ++i) {
      fds[ForkRequest::kFdCount + i] = (*join_files)[i].get();
    }
    const int fd_count = ForkRequest::kFdCount + static_cast<int>(join_files->size());
    // Bounded: a zygote that stopped reading must not hang every thread that forks.
    std::lock_guard lock(zygote.socket_mutex);
    const auto deadline = std::chrono::steady_clock::now() + kForkSetupTimeout;
    for (;;) {
      if (send_with_fds(zygote.socket.get(), parts, 3, fds, fd_count,
                        MSG_NOSIGNAL | MSG_DONTWAIT) >= 0) {
        break;
      }
      if (errno != EAGAIN) return fail(errno_error("sendmsg(fork request)"));
      pollfd writable{zygote.socket.get(), POLLOUT, 0};
      if (::poll(&writable, 1, milliseconds_until(deadline)) == 0) {
        return fail(SetupError{"the fork server did not take a request within 5 s", 0});
      }
    }
  }
  // The child's ends are the child's now: holding them would keep the pipes from EOF.
  stdin_pipe->read_end.reset();
  stdout_pipe->write_end.reset();
  stderr_pipe->write_end.reset();
  channel->write_end.reset();
  control->second.reset();
  join_files->clear();

  auto hellos = receive_hellos(control->first.get());
  if (!hellos) return fail(hellos.error());
  const pid_t init = pid_of(hellos->init);
  const pid_t program = pid_of(hellos->program);
  if (init <= 0 || program <= 0) {
    return fail(SetupError{"the fork server's child ended during setup", 0});
  }
  launch->child.emplace(ChildProcess::forked(init, std::move(hellos->init),
                                             std::move(hellos->program)));
  // Both in the run's cgroup, as a cold sandbox's init and program are: A's pages and its place
  // in the process count belong to this run, not to the zygote's limits. A joined before its
  // hello where the request carried the cgroup's files (v1), and B is A's fork; else here.
  if (!joins_itself) {
    for (pid_t pid : {program, init}) {
      if (Status s = launch->cgroup->attach(pid); !s) return fail(s.error());
    }
  }
  // Neither can end on its own before "go" (B waits for it; A waits for B). Alive now: where
  // the supervisor attached them by pid, the pids were still theirs when it did.
  if (has_exited(launch->child->pidfd()) || has_exited(launch->child->program_pidfd())) {
    return fail(SetupError{"the fork server's child ended during setup", 0});
  }
  if (::send(control->first.get(), "g", 1, MSG_NOSIGNAL) != 1) return fail(errno_error("send(go)"));

  launch->stdout_read = std::move(stdout_pipe->read_end);
  launch->stderr_read = std::move(stderr_pipe->read_end);
  launch->stdin_write = std::move(stdin_pipe->write_end);
  launch->control = std::move(control->first);
  launch->channel_read = std::move(channel->read_end);
  launch->forked_workspace = std::make_unique<ForkedWorkspace>(
      std::move(hellos->workdir), config_.host_uid, config_.host_gid);
  if (request.setup.gateway_port_count > 0) {
    if (!hellos->gateway) return fail(SetupError{"the forked sandbox sent no gateway sockets", 0});
    launch->gateway_sockets = std::move(hellos->gateway);
  }
  return launch;
}

}  // namespace airlock::sandbox
