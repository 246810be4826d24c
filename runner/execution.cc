#include "runner/execution.h"

#include "runner/ids.h"
#include "runner/interpreter.h"
#include "runner/summary.h"

namespace airlock::runner {

sandbox::Limits effective_limits(const policies::Policy& policy, const LimitOverrides& overrides) {
  sandbox::Limits limits = interpreter_limits(policy, overrides);
  if (overrides.memory_max_bytes) limits.memory_max_bytes = *overrides.memory_max_bytes;
  if (overrides.max_processes) limits.max_processes = *overrides.max_processes;
  return limits;
}

sandbox::Limits interpreter_limits(const policies::Policy& policy,
                                   const LimitOverrides& overrides) {
  sandbox::Limits limits = policy.limits;
  if (overrides.wall_time) limits.wall_time = *overrides.wall_time;
  if (overrides.cpu_time) limits.cpu_time = *overrides.cpu_time;
  return limits;
}

Execution::Execution(const RunRequest& request, const policies::Policy& policy, std::string runtime,
                     const EventSink& sink, const sandbox::Limits& limits, int cancel_fd)
    : request_(request), policy_(policy), sink_(sink), limits_(limits), cancel_fd_(cancel_fd) {
  result_.id = request.id.empty() ? new_execution_id() : request.id;
  result_.policy_name = policy.name;
  result_.policy_hash = policy.hash;
  result_.runtime = std::move(runtime);
}

void Execution::reject(RequestError problem) {
  result_.rejected = std::move(problem);
}

InterpreterRequest Execution::interpreter_request() {
  InterpreterRequest run;
  run.code = request_.code;
  run.stdin_data = request_.stdin_data;
  run.wall_time = limits_.wall_time;
  run.cpu_time = limits_.cpu_time;
  run.kept_bytes = request_.limits.output_kept_bytes.value_or(policy_.output.kept_bytes);
  run.kill_on_overflow = policy_.output.on_overflow == policies::OverflowAction::kill;
  run.stream_everything = request_.stream_everything;
  run.sink = &sink_;
  run.sequence = &sequence_;
  run.cancel_fd = cancel_fd_;
  return run;
}

void Execution::take(InterpreterResult ran, GatewayLink* gateway) {
  result_.outcome = std::move(ran.outcome);
  result_.stdout_output = std::move(ran.stdout_output);
  result_.stderr_output = std::move(ran.stderr_output);
  if (gateway != nullptr) {
    result_.network_used = true;
    result_.network = gateway->take();  // since the interpreter's last execution
  }
}

RunResult Execution::finish(const std::string& note) {
  // What a session's driver reports itself (the exception line) is found in stderr for the rest:
  // one-shot runs, and drivers that report none (bash's, node's after an uncaught error).
  quote_error_line(result_);
  result_.summary = (note.empty() ? "" : note + "\n") + summarize(result_, limits_);
  if (sink_) {
    for (const OutputFile& file : result_.files) {
      sink_(Event{EventKind::file, ++sequence_, {}, &file});
    }
    const bool failed = result_.outcome.status == sandbox::RunStatus::setup_error;
    sink_(Event{failed ? EventKind::error : EventKind::exit, ++sequence_,
                failed ? result_.outcome.reason : std::string(), nullptr, &result_});
  }
  return std::move(result_);
}

RunResult Execution::fail(const std::string& what, const sandbox::SetupError& error) {
  result_.outcome = sandbox::setup_failure(error, what);
  return finish();
}

}  // namespace airlock::runner
