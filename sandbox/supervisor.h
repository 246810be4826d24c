// The supervisor: owns what outlives single runs (cgroup backend, state directory, compiled
// seccomp filters) and performs runs: plan, spawn, monitor, classify, clean up.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "sandbox/cgroup.h"
#include "sandbox/monitor.h"
#include "sandbox/process.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp.h"

namespace airlock::sandbox {

// A spawned sandbox: what its monitor watches, and what must be cleaned up after it.
struct Launch {
  std::unique_ptr<Workspace> temporary_workspace;  // when the spec named no working dir
  ChildPlan plan;
  std::unique_ptr<Cgroup> cgroup;
  std::optional<ChildProcess> child;
  UniqueFd stdout_read, stderr_read, stdin_write, control, channel_read;
  UniqueFd fork_socket;                          // Spec::fork_server: the zygote's fd 3
  std::unique_ptr<Workspace> forked_workspace;   // forked: the child's working dir, for the caller
  std::optional<GatewaySockets> gateway_sockets;  // forked with gateway ports: for the handler
};

class Zygote;
class Supervisor;

// Sandbox::start and fork: a live sandbox whose launch is `launcher`, run on the sandbox's own
// thread before start_live returns (so it may hand parts of the launch to the caller).
using Launcher = std::function<Expected<std::unique_ptr<Launch>>(const Spec&)>;
Expected<std::unique_ptr<LiveSandbox>> start_live(Supervisor& supervisor, const Spec& spec,
                                                  OutputHandler& output, Launcher launcher);

// What the monitor of a launched sandbox watches; the launch's fds move into it.
MonitorInputs monitor_inputs(Launch& launch, OutputHandler& output, const Limits& limits,
                             const RunOptions& options, StdinQueue* stdin_queue = nullptr);

// A working directory the runner reaches by a host path, owned by the sandbox's host ids; the
// subclasses differ in what they hold and undo.
class OwnedWorkspace : public Workspace {
 public:
  OwnedWorkspace(std::string path, uint32_t uid, uint32_t gid)
      : path_(std::move(path)), uid_(uid), gid_(gid) {}
  const std::string& path() const override { return path_; }
  uint32_t owner_uid() const override { return uid_; }
  uint32_t owner_gid() const override { return gid_; }
  Status give_to_sandbox(const std::string& path) const override;

 private:
  std::string path_;
  uint32_t uid_, gid_;
};

// A zygote's filter (Spec::fork_server): everything allowed but the floor, minus the floor
// rules its children's setup steps need.
SeccompPolicy zygote_policy();

class Supervisor {
 public:
  static Expected<std::unique_ptr<Supervisor>> create(const SandboxConfig& config);
  ~Supervisor();

  Outcome run(const Spec& spec, OutputHandler& output, const RunOptions& options);
  Expected<std::unique_ptr<LiveSandbox>> start(const Spec& spec, OutputHandler& output);
  Expected<std::unique_ptr<ForkServer>> start_fork_server(const Spec& spec);
  Expected<ForkedSandbox> fork(ForkServer& server, const Spec& spec, OutputHandler& output);

  // The steps of a run: set up and spawn (the calling thread becomes the child's parent), then
  // monitor(), then finish: reap, read the counters, classify, remove the cgroup.
  Expected<std::unique_ptr<Launch>> launch(const Spec& spec, bool blocking_stdin);
  // A forked sandbox's setup: fork_server.cc.
  Expected<std::unique_ptr<Launch>> fork_launch(Zygote& zygote, const Spec& spec);
  Outcome finish(Launch& launch, const MonitorResult& result, const Limits& limits);
  Expected<std::unique_ptr<Workspace>> create_workspace(uint64_t size_bytes);
  std::string_view cgroup_backend_name() const { return cgroups_->name(); }

 private:
  Supervisor(SandboxConfig config, std::unique_ptr<CgroupBackend> cgroups,
             std::string instance_dir);
  Expected<std::shared_ptr<const SeccompFilters>> filters_for(const SeccompPolicy& policy,
                                                              int control_fd);

  SandboxConfig config_;
  std::unique_ptr<CgroupBackend> cgroups_;
  std::string instance_dir_;  // <state_dir>/<pid>-<start ticks>
  std::string staging_root_;  // empty dir every child mounts its new root on (in its own ns)
  std::atomic<uint64_t> next_run_{1};
  std::mutex filters_mutex_;
  std::map<std::string, std::shared_ptr<const SeccompFilters>> filters_;  // by policy key
};

}  // namespace airlock::sandbox
