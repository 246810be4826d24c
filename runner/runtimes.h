// Runtimes are configuration: a source file name, an optional compile step and a run command,
// loaded from runtimes.yaml.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "sandbox/error.h"
#include "sandbox/spec.h"

namespace airlock::runner {

struct Runtime {
  std::string name;                       // "python"
  std::string description;
  std::string source_file;                // "main.py", written into the working dir
  std::vector<std::string> compile;       // empty: no compile step; else argv, e.g. gcc ... main.c
  std::vector<std::string> run;           // argv, e.g. /usr/bin/python3 main.py
  std::string compile_policy;             // policy for the compile step; empty: the run's policy
  std::vector<std::string> preload;       // modules a warm interpreter imports ahead (issue 6)
  // For runtimes that compile as they start (java's single-file launch): the last line of stderr
  // that means the compiler rejected the program, so the run reports compile_error.
  std::string compile_error_line;
  // Code a warm interpreter runs once after its preloads, before it is forked or handed out
  // (a first chart, so that an execution's costs only its own plotting); its output is dropped.
  std::string warm_up;
  // Variables every sandbox of the runtime gets, under the policy's: a policy's own value wins.
  std::map<std::string, std::string> environment;
  // A folder of the drivers directory (runner/drivers/) its sandboxes see read-only at
  // kSupportSandboxDir/<support>: python's sitecustomize.py, for one.
  std::string support;
};

// Where a runtime's support folder appears inside its sandboxes (the drivers' own directory).
inline constexpr const char* kSupportSandboxDir = "/opt/airlock";

using RuntimeTable = std::map<std::string, Runtime>;

// Loads runtimes from a YAML file; errors name file:line:column.
sandbox::Expected<RuntimeTable> load_runtimes(const std::string& path);

// Adds what the runtime gives each sandbox it runs in (a cold run's, a session's, a warm one's):
// its environment where the policy's left a name unset, and its support folder, copied from
// drivers_dir (skipped when drivers_dir is empty or the spec already holds the drivers there).
void add_runtime_setup(sandbox::Spec& spec, const Runtime& runtime,
                       const std::string& drivers_dir);

}  // namespace airlock::runner
