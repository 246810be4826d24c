// Shared pieces of the sandbox tests: a spec like the default policy's, an output collector, and
// one Sandbox per test process.
#pragma once

#include <string>
#include <vector>

#include "sandbox/sandbox.h"

namespace airlock::sandbox::testing {

// The probe helper's directory is bound read-only at /helpers.
inline constexpr const char* kProbe = "/helpers/probe";

// A spec with the binds runtimes need, an empty environment but PATH/HOME/LANG, short limits.
Spec probe_spec(std::vector<std::string> argv);

struct Captured : OutputHandler {
  std::string out, err;
  bool started = false;
  bool on_output(Stream stream, std::string_view data) override {
    (stream == Stream::stdout_stream ? out : err).append(data);
    return true;
  }
  void on_started() override { started = true; }
};

// True when the tests may create sandboxes (root); else false after a WARN naming the reason.
bool can_sandbox();

// The process's Sandbox (created on first use).
Sandbox& shared_sandbox();

// True on a cgroup v1 host (no cgroup.controllers at the hierarchy's root).
bool cgroup_v1();

// On v1: the processes (lines of cgroup.procs) in all run cgroups of this process's sandboxes,
// under one controller ("memory", "pids", "cpu", "cpuacct").
size_t processes_in_own_runs_v1(const std::string& controller);

// Runs argv with probe_spec defaults (or the given spec) and returns the outcome.
Outcome run(const Spec& spec, Captured& captured, const RunOptions& options = {});

}  // namespace airlock::sandbox::testing
