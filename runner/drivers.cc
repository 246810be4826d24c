#include "runner/drivers.h"

#include "runner/gateway_link.h"

namespace airlock::runner {

std::optional<std::vector<std::string>> driver_argv(const std::string& runtime,
                                                    const std::string& interpreter) {
  const std::string dir = kDriversSandboxDir;
  // -u: output reaches the client as it is written, not when a buffer fills.
  if (runtime == "python")
    return std::vector<std::string>{interpreter, "-u", dir + "/python_driver.py"};
  if (runtime == "bash") {
    return std::vector<std::string>{interpreter, "--norc", "--noprofile", dir + "/bash_driver.sh"};
  }
  return std::nullopt;
}

sandbox::Spec driver_spec(const policies::Policy& policy, const Runtime& runtime,
                          std::vector<std::string> argv, const std::string& drivers_dir) {
  sandbox::Spec spec;
  spec.argv = std::move(argv);
  for (const auto& [name, value] : policy.environment) spec.env.push_back(name + "=" + value);
  spec.limits = policy.limits;
  spec.filesystem = policy.filesystem;
  // Copied, not bound: a bind would show the drivers' host path in the sandbox's mountinfo.
  spec.filesystem.binds.push_back({drivers_dir, kDriversSandboxDir, false, false, true});
  spec.seccomp = policy.syscalls;
  spec.gateway_ports = gateway_ports(policy.egress);
  spec.control_channel = true;
  add_runtime_setup(spec, runtime, drivers_dir);
  return spec;
}

std::optional<ScriptDriver> script_driver(const std::string& runtime,
                                          const std::string& interpreter) {
  const std::string dir = kDriversSandboxDir;
  if (runtime == "python") return ScriptDriver{*driver_argv(runtime, interpreter), true, false};
  // Node cannot fork once started (its platform threads), and it cannot move its frame pipe off
  // fd 0 (no dup2): each of its sandboxes starts fresh and reads its frame on the program's fd 0.
  if (runtime == "node") return ScriptDriver{{interpreter, dir + "/node_driver.js"}, false, true};
  return std::nullopt;
}

}  // namespace airlock::runner
