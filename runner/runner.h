// Plans and performs one execution: runtime lookup, working dir, optional compile step, the run
// itself, output capping, file collection, and a summary a model can read.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policies/policy.h"
#include "runner/egress/gateway.h"
#include "runner/gateway_link.h"
#include "runner/ids.h"
#include "runner/runtimes.h"
#include "sandbox/outcome.h"
#include "sandbox/sandbox.h"

namespace airlock::runner {

struct InputFile {
  std::string path;     // relative to the working dir; no "..", not absolute
  std::string content;  // raw bytes (the API decodes utf-8 or base64 before)
  bool executable = false;
};

struct OutputFile {
  std::string path;  // relative to the working dir
  std::string content;
  uint64_t size_bytes = 0;   // the file's full size
  bool truncated = false;    // content holds only the first max_file_bytes
  std::string media_type;    // e.g. "image/png", "text/plain"
  bool binary = false;       // not valid utf-8
};

// Optional per-request limits. A request may only tighten its policy; asking for more is an error.
struct LimitOverrides {
  std::optional<std::chrono::milliseconds> wall_time;
  std::optional<std::chrono::milliseconds> cpu_time;
  std::optional<uint64_t> memory_max_bytes;
  std::optional<uint32_t> max_processes;
  std::optional<uint64_t> output_kept_bytes;  // per stream
};

struct RunRequest {
  std::string id;                 // execution id; generated when empty
  std::string runtime;            // "python", "c", ...; empty: run `argv` as given
  std::string code;               // source for the runtime
  std::vector<std::string> argv;  // program and arguments when runtime is empty; else extra args
  std::string stdin_data;
  int stdin_fd = -1;              // the CLI forwards its own stdin instead of stdin_data
  std::vector<InputFile> files;
  std::vector<std::string> output_globs;  // files to return, relative globs like "*.png"
  uint64_t max_file_bytes = 1 * sandbox::kMiB;
  LimitOverrides limits;
  // Stream every byte as events (the CLI); otherwise streaming stops at the kept head of each
  // stream and the rest reaches the client only as the kept tail in the result.
  bool stream_everything = false;
};

enum class EventKind { started, stdout_data, stderr_data, file, exit, error };

struct RunResult;

struct Event {
  EventKind kind;
  uint64_t sequence = 0;  // 1, 2, 3, ... within one execution
  std::string data;       // output bytes, or the error message
  const OutputFile* file = nullptr;  // with EventKind::file
  const RunResult* result = nullptr;  // with EventKind::exit and EventKind::error
};

// Receives events as they happen, on the runner's thread.
using EventSink = std::function<void(const Event&)>;

// What was kept of one output stream: the head, a marker, the tail.
struct KeptOutput {
  std::string text;            // head + marker + tail, or everything when nothing was dropped
  uint64_t total_bytes = 0;    // what the program wrote
  uint64_t dropped_bytes = 0;  // what is not in `text`
};

// An error in the request itself (bad path, limit above policy, unknown runtime): 4xx material.
struct RequestError {
  std::string field;    // e.g. "limits.memory"
  std::string message;  // what is wrong and what would be valid
};

struct RunResult {
  std::string id;
  sandbox::Outcome outcome;   // status may also be "compile_error", see `compile_error`
  bool compile_error = false; // the compile step failed; `stderr_output` holds the compiler's words
  KeptOutput stdout_output;
  KeptOutput stderr_output;
  std::vector<OutputFile> files;
  std::string policy_name;
  std::string policy_hash;
  std::string runtime;
  std::string summary;  // a few lines for a model: status, code, reason, hint
  // The request was at fault in a way only carrying it out showed (an input file that does not
  // fit the working directory): the outcome is a setup_error, and the API answers 400
  // invalid_request naming `rejected->field`.
  std::optional<RequestError> rejected;
  // Under an egress policy: what the gateway refused (each destination once) and counted.
  bool network_used = false;  // the policy has egress: the run's network reached the gateway
  egress::Report network;

  // "ok", "nonzero_exit", ..., or "compile_error".
  std::string status_name() const;
};

// Checks a request against its policy and the runtimes: known names, safe paths, sizes, and
// limits no higher than the policy's. Returns the first problem, if any.
std::optional<RequestError> validate_request(const RunRequest& request,
                                             const policies::Policy& policy,
                                             const RuntimeTable& runtimes);

// Finds a policy by name (the compile step of C/C++ runs under the runtime's compile policy).
using PolicyLookup = std::function<std::shared_ptr<const policies::Policy>(const std::string&)>;

class Runner {
 public:
  // drivers_dir: runner/drivers/ (installed: <prefix>/lib/airlock/drivers), where the runtimes'
  // support folders are; empty: runs go without them.
  Runner(sandbox::Sandbox& sandbox, RuntimeTable runtimes, PolicyLookup lookup = nullptr,
         std::string drivers_dir = {});

  // Validates the request against the policy; returns the first problem, if any.
  std::optional<RequestError> validate(const RunRequest& request,
                                       const policies::Policy& policy) const;

  // Runs the request under the policy. Call validate first; an invalid request becomes a
  // setup_error result. cancel_fd: an eventfd; writing to it from any thread stops the run.
  RunResult run(const RunRequest& request, const policies::Policy& policy, const EventSink& sink,
                int cancel_fd = -1);

  const RuntimeTable& runtimes() const { return runtimes_; }

  // The egress gateway runs under egress policies use (started at the first); configure it with
  // the service's hosts and secrets.
  GatewayHost& gateway() { return gateway_; }

 private:
  sandbox::Sandbox& sandbox_;
  RuntimeTable runtimes_;
  PolicyLookup lookup_;
  std::string drivers_dir_;
  GatewayHost gateway_;
};

}  // namespace airlock::runner
