// The entry point of the sandbox layer: run one Spec in an isolated process tree and return its
// Outcome. One Sandbox object lives as long as the service; runs may happen on several threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sandbox/error.h"
#include "sandbox/outcome.h"
#include "sandbox/spec.h"
#include "sandbox/unique_fd.h"

namespace airlock::sandbox {

enum class Stream {
  stdout_stream,
  stderr_stream,
  control_stream,  // fd 3 of the program, when Spec::control_channel is set
};

// The sockets of a sandbox whose network reaches the egress gateway (Spec::gateway_ports), each
// made inside its network namespace: a TCP listener on 0.0.0.0 per port and, where the kernel has
// IPv6, one on [::] per port (getsockname tells which),
// the UDP socket on 0.0.0.0:53 for its DNS, and the packet socket that sees the namespace's own
// refusals of everything else (open_refusal_watch in gateway_sockets.h). Non-blocking, close-on-exec.
struct GatewaySockets {
  std::vector<UniqueFd> tcp_listeners;
  UniqueFd dns;
  UniqueFd refusals;
};

// Receives the program's output as it is written, on the thread that called Sandbox::run.
class OutputHandler {
 public:
  virtual ~OutputHandler() = default;
  // One chunk of output. Return false to end the run with status output_limit.
  virtual bool on_output(Stream stream, std::string_view data) = 0;
  // Called once, after the program's setup succeeded and just before it starts (`started` event).
  virtual void on_started() {}
  // A live sandbox's handler: called once the tree has ended and its outcome is known.
  virtual void on_ended() {}
  // Spec::gateway_ports: the sockets in the sandbox's network namespace for airlock's egress
  // gateway, before on_started. On the monitor's thread. The handler owns them from now on.
  virtual void on_gateway_sockets(GatewaySockets /*sockets*/) {}
  // A call refused with an errno, or logged, as it happens (the outcome lists them too, but only
  // once the tree has ended): for a live sandbox's handler to report them with the execution
  // that made them. On the monitor's thread, like on_output.
  virtual void on_blocked(const SyscallEvent& /*event*/) {}
};

struct RunOptions {
  int stdin_fd = -1;       // when >= 0: copied to the program's stdin until EOF (the CLI's stdin)
  std::string stdin_data;  // otherwise: these bytes, then EOF
  int cancel_fd = -1;      // when >= 0 and readable (an eventfd): the run is cancelled
};

enum class CgroupVersion { automatic, v1, v2 };

struct SandboxConfig {
  CgroupVersion cgroup_version = CgroupVersion::automatic;
  // Root of the cgroup hierarchies; tests point the v2 backend at a fake tree.
  std::string cgroup_fs_root = "/sys/fs/cgroup";
  // Where airlock keeps per-run directories (staging root, working dirs).
  std::string state_dir = "/run/airlock";
  // Host ids the sandboxed program runs as (never 0); inside it is uid/gid 1000.
  uint32_t host_uid = 65534;
  uint32_t host_gid = 65534;
};

class Supervisor;

// Limits on one task in a live sandbox (an interpreter's execution), counted from its start.
struct TaskLimits {
  std::chrono::milliseconds wall_time;
  std::chrono::milliseconds cpu_time;
  int cancel_fd = -1;  // when >= 0 and readable (an eventfd): the task is cancelled
};

// A sandbox that keeps running until it is killed or its program ends: a session's interpreter.
// Its monitor runs on a thread of its own (which also cloned it, so that the kernel's
// parent-death signal follows the right thread). The destructor kills the tree, waits for the
// monitor and removes the cgroup. Every method is thread-safe.
class LiveSandbox {
 public:
  virtual ~LiveSandbox() = default;
  // Queues bytes for the program's stdin. False once the program has ended or stdin is closed.
  virtual bool write_stdin(std::string_view data) = 0;
  enum class StdinWrite { queued, full, closed };
  // write_stdin, but refused (full, nothing queued) when bytes already wait to be written and
  // these would take them past max_waiting_bytes: a program that stops reading its stdin cannot
  // make its writers' bytes pile up without bound. A write to an empty queue always goes in.
  virtual StdinWrite write_stdin_bounded(std::string_view data, size_t max_waiting_bytes) = 0;
  // Closes the program's stdin once what is queued has been written.
  virtual void close_stdin() = 0;
  // Ends the whole tree now; the outcome's status is `cancelled`.
  virtual void kill() = 0;
  // True once the tree has ended (the outcome is then available without waiting).
  virtual bool ended() const = 0;
  // Blocks until the tree has ended and returns its outcome.
  virtual const Outcome& wait() = 0;
  // CPU time the tree has used so far (the cgroup's count), in nanoseconds.
  virtual uint64_t cpu_usage_ns() = 0;
  // Memory charged to the sandbox's cgroup now (0 once it has ended).
  virtual uint64_t memory_usage_bytes() = 0;
  // The tree's usage over its whole life so far: CPU split into user and system time, and the
  // cgroup's peak memory (its highest reading, for kernels without memory.peak). Once ended, the
  // outcome's usage. No wall time.
  virtual Usage usage_so_far() = 0;
  // A sandbox started in the background (Spec::background) gets the default CPU weight.
  virtual Status to_foreground() = 0;
  // From now until end_task(), the monitor also holds the tree to `limits`: when the task's wall
  // or cpu time runs out, or its cancel fd becomes readable, the tree ends and its outcome names
  // the task's limit. Replaces the limits of a task begun before. The cancel fd is duplicated.
  virtual Status begin_task(const TaskLimits& limits) = 0;
  // The task is over (in time, or the tree ended with it): only the spec's limits apply again.
  // Returns its usage: wall and cpu time since begin_task; the cgroup's peak memory when it rose
  // during the task, else the higher of the readings at its start and end (a lower bound); the
  // cgroup's peak processes.
  virtual Usage end_task() = 0;
};

// A run's working directory on the host: a sized tmpfs owned by the sandbox's uid. The runner
// puts input files in before the run and reads results after; a session keeps one across runs.
// The destructor unmounts and removes it.
class Workspace {
 public:
  virtual ~Workspace() = default;
  virtual const std::string& path() const = 0;
  // Makes a file or directory the runner created inside usable by the sandboxed program.
  virtual Status give_to_sandbox(const std::string& path) const = 0;
  // The host ids the sandboxed program runs as (for fchown of files made inside).
  virtual uint32_t owner_uid() const = 0;
  virtual uint32_t owner_gid() const = 0;
};

// A fork server (docs/warm_pool.md): an interpreter started once, in a sandbox of its own, that
// forks fresh sandboxes on request. It runs only airlock's driver, never a request's code.
class ForkServer {
 public:
  virtual ~ForkServer() = default;
  // False once the zygote has ended: fork() then fails, and a new server is needed.
  virtual bool alive() const = 0;
  // Memory charged to the zygote's cgroup: the interpreter and its imports, which every child
  // shares until it writes to them.
  virtual uint64_t memory_usage_bytes() = 0;
};

// A sandbox forked from a ForkServer, with its working directory (which lives on after the
// sandbox, until the Workspace is destroyed).
struct ForkedSandbox {
  std::unique_ptr<LiveSandbox> live;
  std::unique_ptr<Workspace> workspace;
};

class Sandbox {
 public:
  // Prepares cgroups (removing stale ones left by a supervisor that died) and the state dir.
  static Expected<std::unique_ptr<Sandbox>> create(const SandboxConfig& config);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Runs spec to completion. Thread-safe. Never throws for what the program does; setup failures
  // come back as status setup_error with a message.
  Outcome run(const Spec& spec, OutputHandler& output, const RunOptions& options);

  // Starts spec and returns at once with the running sandbox; output reaches `output` on the
  // sandbox's own thread (which must outlive nothing: the handler must outlive the LiveSandbox).
  // A setup failure is returned as an error. The spec's wall and cpu limits bound the sandbox's
  // whole life; LiveSandbox::begin_task sets shorter ones for a task.
  Expected<std::unique_ptr<LiveSandbox>> start(const Spec& spec, OutputHandler& output);

  // Starts a fork server for spec (which must set fork_server) and waits until its driver says
  // it is ready, or fails with what the zygote wrote to stderr.
  Expected<std::unique_ptr<ForkServer>> start_fork_server(const Spec& spec);
  // Forks a sandbox from server: spec gives its limits, seccomp policy and hostname, and names
  // the same working directory and tmpfs paths as the server's spec. Its program is the
  // server's driver, continuing as a live sandbox whose output reaches `output`.
  Expected<ForkedSandbox> fork(ForkServer& server, const Spec& spec, OutputHandler& output);

  // A fresh working directory of size_bytes; pass its path() as Spec::host_workdir.
  Expected<std::unique_ptr<Workspace>> create_workspace(uint64_t size_bytes);

  // "v1" or "v2": the cgroup backend in use.
  std::string_view cgroup_backend_name() const;

 private:
  explicit Sandbox(std::unique_ptr<Supervisor> supervisor);
  std::unique_ptr<Supervisor> supervisor_;
};

}  // namespace airlock::sandbox
