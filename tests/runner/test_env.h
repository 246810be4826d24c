// The runner integration tests' shared pieces: one Sandbox per test process (two would claim the
// same instance directories), the shipped runtimes and policies, a Runner over them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "policies/loader.h"
#include "runner/runner.h"

namespace airlock::runner::testing {

struct Env {
  std::unique_ptr<sandbox::Sandbox> sandbox;
  RuntimeTable runtimes;
  std::vector<std::string> dirs = {AIRLOCK_SOURCE_DIR "/policies"};
  PolicyLookup lookup;  // shipped policies by name
  std::unique_ptr<Runner> runner;
};

// True when the tests may create sandboxes (root); else false after a WARN naming the reason.
bool can_run();

// The process's environment, made on first use.
Env& env();

// A shipped policy; fails the test when it does not load.
std::shared_ptr<const policies::Policy> policy(const std::string& name);

// A request to run code with the python runtime, everything else left to the policy.
inline RunRequest python(std::string code) {
  RunRequest request;
  request.runtime = "python";
  request.code = std::move(code);
  return request;
}

}  // namespace airlock::runner::testing
