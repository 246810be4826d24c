// Runtimes are configuration: a source file name, an optional compile step and a run command,
// loaded from runtimes.yaml.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "sandbox/error.h"

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
};

using RuntimeTable = std::map<std::string, Runtime>;

// Loads runtimes from a YAML file; errors name file:line:column.
sandbox::Expected<RuntimeTable> load_runtimes(const std::string& path);

}  // namespace airlock::runner
