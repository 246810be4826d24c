// Turns the runner's events for one execution into the wire's events: numbered 1, 2, 3, ... by
// the API itself, always opened by `started`, output repaired to valid utf-8 without splitting
// characters across chunks, and closed by exactly one final event (exit or error) that the API,
// not the runner, sends.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "api/airlock.pb.h"
#include "api/wire/text.h"
#include "runner/runner.h"

namespace airlock::api {

class EventTranslator {
 public:
  using Emit = std::function<void(const v1::Event&)>;

  EventTranslator(std::string execution_id, std::string runtime, v1::PolicyRef policy, Emit emit);

  // Emits the wire events for one runner event (none for empty output or the runner's own
  // exit/error, which finish_* replace). Ignored after a finish_* call.
  void on_runner_event(const runner::Event& event);

  // Emits held-back output and then the single final event. Only the first finish_* call counts.
  void finish_exit(const v1::ExecutionResult& result);
  void finish_error(const v1::Error& error);

  uint64_t last_sequence() const { return sequence_; }

 private:
  v1::Event next();
  void ensure_started();
  void emit_output(bool is_stdout, std::string text);
  bool begin_finish();

  std::string execution_id_;
  std::string runtime_;
  v1::PolicyRef policy_;
  Emit emit_;
  uint64_t sequence_ = 0;
  bool started_ = false;
  bool finished_ = false;
  Utf8Stream stdout_;
  Utf8Stream stderr_;
};

}  // namespace airlock::api
