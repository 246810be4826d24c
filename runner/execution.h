// One execution as the rest of airlock sees it: its id, policy, event numbering and RunResult,
// and the one way each of them ends (finished, failed in setup, refused for its request). One-shot
// runs, sessions and the warm pool all finish their results here.
#pragma once

#include <cstdint>
#include <string>

#include "policies/policy.h"
#include "runner/runner.h"
#include "sandbox/error.h"
#include "sandbox/sandbox.h"

namespace airlock::runner {

struct InterpreterRequest;
struct InterpreterResult;

// The limits of a one-shot run: the policy's, each tightened by the request where it asks.
sandbox::Limits effective_limits(const policies::Policy& policy, const LimitOverrides& overrides);

// The limits of one execution on an interpreter (a session's, a warm pool's): the request's wall
// and CPU time over the policy's; memory and processes are the sandbox's, fixed when it started.
sandbox::Limits interpreter_limits(const policies::Policy& policy, const LimitOverrides& overrides);

class Execution {
 public:
  // Takes the request's id (a new one when it has none) and the policy's name and hash. runtime:
  // what the result reports. limits: what the execution runs under, as its summary quotes them.
  // request, policy and sink must outlive the execution. cancel_fd: see InterpreterRequest.
  Execution(const RunRequest& request, const policies::Policy& policy, std::string runtime,
            const EventSink& sink, const sandbox::Limits& limits, int cancel_fd = -1);

  // The result so far; finish, fail and reject complete it.
  RunResult& result() { return result_; }
  // The event counter: output and started events are numbered by ++sequence().
  uint64_t& sequence() { return sequence_; }
  const EventSink& sink() const { return sink_; }
  const sandbox::Limits& limits() const { return limits_; }

  // The request was at fault (an input file that does not fit, a path that collides): the
  // result names the field, so the API answers 400. The execution still ends through fail.
  void reject(RequestError problem);

  // The interpreter's part of the request, with this execution's limits, sink and counter.
  InterpreterRequest interpreter_request();
  // Takes the interpreter's result (outcome and output) into the result, and, when the
  // interpreter's sandbox is under egress, what this execution's code reached or was refused.
  void take(InterpreterResult ran, GatewayLink* gateway);

  // Quotes the error line, writes the summary (below `note`, if any), sends a file event per
  // output file and then exactly one final event: error for a setup_error, else exit. Call once.
  RunResult finish(const std::string& note = {});
  // Ends as a setup error: "<what> failed: <error>" ("sandbox setup", "session setup").
  RunResult fail(const std::string& what, const sandbox::SetupError& error);

 private:
  const RunRequest& request_;
  const policies::Policy& policy_;
  const EventSink& sink_;
  const sandbox::Limits limits_;
  const int cancel_fd_;
  uint64_t sequence_ = 0;
  RunResult result_;
};

}  // namespace airlock::runner
