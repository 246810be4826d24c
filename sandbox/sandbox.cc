#include "sandbox/sandbox.h"

#include "sandbox/supervisor.h"

namespace airlock::sandbox {

Expected<std::unique_ptr<Sandbox>> Sandbox::create(const SandboxConfig& config) {
  auto supervisor = Supervisor::create(config);
  if (!supervisor) return supervisor.error();
  return std::unique_ptr<Sandbox>(new Sandbox(std::move(supervisor.value())));
}

Sandbox::Sandbox(std::unique_ptr<Supervisor> supervisor) : supervisor_(std::move(supervisor)) {}
Sandbox::~Sandbox() = default;

Outcome Sandbox::run(const Spec& spec, OutputHandler& output, const RunOptions& options) {
  return supervisor_->run(spec, output, options);
}

Expected<std::unique_ptr<LiveSandbox>> Sandbox::start(const Spec& spec, OutputHandler& output) {
  return supervisor_->start(spec, output);
}

Expected<std::unique_ptr<ForkServer>> Sandbox::start_fork_server(const Spec& spec) {
  return supervisor_->start_fork_server(spec);
}

Expected<ForkedSandbox> Sandbox::fork(ForkServer& server, const Spec& spec, OutputHandler& output) {
  return supervisor_->fork(server, spec, output);
}

Expected<std::unique_ptr<Workspace>> Sandbox::create_workspace(uint64_t size_bytes) {
  return supervisor_->create_workspace(size_bytes);
}

std::string_view Sandbox::cgroup_backend_name() const { return supervisor_->cgroup_backend_name(); }

}  // namespace airlock::sandbox
