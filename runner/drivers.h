// The driver programs (runner/drivers/) that sessions and warm pools run in their sandboxes: which
// driver serves a runtime, with what argv, and the sandbox spec every driver runs under.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "policies/policy.h"
#include "runner/runtimes.h"
#include "sandbox/spec.h"

namespace airlock::runner {

// Where the drivers are mounted inside a driver's sandbox (read-only).
inline constexpr const char* kDriversSandboxDir = "/opt/airlock";

// The driver's argv for a runtime ("python", "bash"), or nullopt when sessions do not support it.
// interpreter: the runtime's own program (its run command's argv[0]).
std::optional<std::vector<std::string>> driver_argv(const std::string& runtime,
                                                    const std::string& interpreter);

// What every driver's sandbox (a session's, a warm pool's) takes from its policy: its
// environment, limits, file system with the drivers (drivers_dir) bound read-only at
// kDriversSandboxDir, syscalls and egress gateway ports; with the control channel; and what its
// runtime adds (add_runtime_setup). Callers set its lifetime limits.
sandbox::Spec driver_spec(const policies::Policy& policy, const Runtime& runtime,
                          std::vector<std::string> argv, const std::string& drivers_dir);

// A warm pool's driver for a runtime: started ahead (AIRLOCK_DRIVER_MODE=script), it runs the one
// execution it is sent as `run` would run the source file.
struct ScriptDriver {
  std::vector<std::string> argv;
  bool forks = false;  // it has a zygote mode: its sandboxes can come from a fork server
  // It reads its frame from the program's own fd 0; see InterpreterRequest.
  bool close_stdin_after_frame = false;
};
// nullopt for a runtime without one. interpreter: the runtime's own program (run's argv[0]).
std::optional<ScriptDriver> script_driver(const std::string& runtime,
                                          const std::string& interpreter);

}  // namespace airlock::runner
