// Conversions between the wire messages and the runner's plain values: a request's strings with
// units become typed limits, a run's result becomes the message a client reads.
#pragma once

#include <optional>
#include <string>

#include "api/airlock.pb.h"
#include "policies/policy.h"
#include "runner/runner.h"
#include "runner/runtimes.h"

namespace airlock::api {

// Caps on what one request may ask for, whatever its policy says.
inline constexpr size_t kMaxInputFiles = 1000;
inline constexpr size_t kMaxArgs = 1000;
inline constexpr size_t kMaxOutputGlobs = 100;

// Fills out from in (runtime, code, args, stdin, decoded files, limits, output options). Does not
// look names up; the caller checks the runtime and policy. max_file_bytes_ceiling caps
// output.max_file_bytes and is its default.
std::optional<v1::Error> to_run_request(const v1::ExecutionRequest& in,
                                        uint64_t max_file_bytes_ceiling, runner::RunRequest& out);

// The client's view of a finished run, under the API's execution id.
v1::ExecutionResult to_result(const runner::RunResult& result, const std::string& id);

// One output file as sent on the wire: utf-8 text as is, anything else base64.
v1::OutputFile to_output_file(const runner::OutputFile& file);

v1::RuntimeInfo to_runtime_info(const runner::Runtime& runtime);

// A policy's effective form; `effective` (the canonical text) only when with_canonical.
v1::PolicyInfo to_policy_info(const policies::Policy& policy, bool with_canonical);

}  // namespace airlock::api
