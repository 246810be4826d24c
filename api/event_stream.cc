#include "api/event_stream.h"

#include "api/wire/translate.h"

namespace airlock::api {

EventTranslator::EventTranslator(std::string execution_id, std::string runtime,
                                 v1::PolicyRef policy, Emit emit)
    : execution_id_(std::move(execution_id)),
      runtime_(std::move(runtime)),
      policy_(std::move(policy)),
      emit_(std::move(emit)) {}

v1::Event EventTranslator::next() {
  v1::Event event;
  event.set_sequence(++sequence_);
  event.set_execution_id(execution_id_);
  return event;
}

void EventTranslator::ensure_started() {
  if (started_) return;
  started_ = true;
  v1::Event event = next();
  v1::Started* started = event.mutable_started();
  started->set_execution_id(execution_id_);
  started->set_runtime(runtime_);
  *started->mutable_policy() = policy_;
  emit_(event);
}

void EventTranslator::emit_output(bool is_stdout, std::string text) {
  if (text.empty()) return;
  v1::Event event = next();
  (is_stdout ? event.mutable_stdout() : event.mutable_stderr())->set_data(std::move(text));
  emit_(event);
}

void EventTranslator::on_runner_event(const runner::Event& event) {
  if (finished_) return;
  ensure_started();
  switch (event.kind) {
    case runner::EventKind::started:
      break;  // already sent by ensure_started
    case runner::EventKind::stdout_data:
      emit_output(true, stdout_.feed(event.data));
      break;
    case runner::EventKind::stderr_data:
      emit_output(false, stderr_.feed(event.data));
      break;
    case runner::EventKind::file:
      if (event.file != nullptr) {
        v1::Event out = next();
        *out.mutable_file() = to_output_file(*event.file);
        emit_(out);
      }
      break;
    case runner::EventKind::exit:
    case runner::EventKind::error:
      break;  // the final event comes from finish_*
  }
}

bool EventTranslator::begin_finish() {
  if (finished_) return false;
  ensure_started();
  emit_output(true, stdout_.finish());
  emit_output(false, stderr_.finish());
  finished_ = true;
  return true;
}

void EventTranslator::finish_exit(const v1::ExecutionResult& result) {
  if (!begin_finish()) return;
  v1::Event event = next();
  *event.mutable_exit()->mutable_result() = result;
  emit_(event);
}

void EventTranslator::finish_error(const v1::Error& error) {
  if (!begin_finish()) return;
  v1::Event event = next();
  *event.mutable_error() = error;
  emit_(event);
}

}  // namespace airlock::api
