// The entry point of the sandbox layer: run one Spec in an isolated process tree and return its
// Outcome. One Sandbox object lives as long as the service; runs may happen on several threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "sandbox/error.h"
#include "sandbox/outcome.h"
#include "sandbox/spec.h"

namespace airlock::sandbox {

enum class Stream { stdout_stream, stderr_stream };

// Receives the program's output as it is written, on the thread that called Sandbox::run.
class OutputHandler {
 public:
  virtual ~OutputHandler() = default;
  // One chunk of output. Return false to end the run with status output_limit.
  virtual bool on_output(Stream stream, std::string_view data) = 0;
  // Called once, after the program's setup succeeded and just before it starts (`started` event).
  virtual void on_started() {}
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

  // A fresh working directory of size_bytes; pass its path() as Spec::host_workdir.
  Expected<std::unique_ptr<Workspace>> create_workspace(uint64_t size_bytes);

  // "v1" or "v2": the cgroup backend in use.
  std::string_view cgroup_backend_name() const;

 private:
  explicit Sandbox(std::unique_ptr<Supervisor> supervisor);
  std::unique_ptr<Supervisor> supervisor_;
};

}  // namespace airlock::sandbox
