#include "api/event_stream.h"

#include <catch2/catch.hpp>

using namespace airlock;
using namespace airlock::api;

namespace {

struct Collected {
  std::vector<v1::Event> events;
  EventTranslator translator{"ex_1", "python", v1::PolicyRef(),
                             [this](const v1::Event& event) { events.push_back(event); }};
};

runner::Event output(runner::EventKind kind, std::string data) {
  return runner::Event{kind, 0, std::move(data), nullptr};
}

}  // namespace

TEST_CASE("events are numbered from 1 and open with started") {
  Collected c;
  c.translator.on_runner_event(output(runner::EventKind::stdout_data, "a"));
  c.translator.on_runner_event(output(runner::EventKind::stderr_data, "b"));
  c.translator.finish_exit(v1::ExecutionResult());
  REQUIRE(c.events.size() == 4);
  CHECK(c.events[0].has_started());
  CHECK(c.events[0].started().execution_id() == "ex_1");
  CHECK(c.events[1].stdout().data() == "a");
  CHECK(c.events[2].stderr().data() == "b");
  CHECK(c.events[3].has_exit());
  for (size_t i = 0; i < c.events.size(); ++i) CHECK(c.events[i].sequence() == i + 1);
}

TEST_CASE("the runner's own exit is replaced by exactly one final event") {
  Collected c;
  c.translator.on_runner_event(output(runner::EventKind::started, ""));
  c.translator.on_runner_event(output(runner::EventKind::exit, ""));
  c.translator.on_runner_event(output(runner::EventKind::error, "x"));
  c.translator.finish_exit(v1::ExecutionResult());
  c.translator.finish_error(v1::Error());
  c.translator.on_runner_event(output(runner::EventKind::stdout_data, "late"));
  REQUIRE(c.events.size() == 2);
  CHECK(c.events[0].has_started());
  CHECK(c.events[1].has_exit());
}

TEST_CASE("a character split between chunks is sent whole, and a dangling one before exit") {
  Collected c;
  c.translator.on_runner_event(output(runner::EventKind::stdout_data, "\xC3"));
  c.translator.on_runner_event(output(runner::EventKind::stdout_data, "\xA9!"));
  c.translator.on_runner_event(output(runner::EventKind::stdout_data, "\xE2\x82"));
  c.translator.finish_exit(v1::ExecutionResult());
  REQUIRE(c.events.size() == 4);
  CHECK(c.events[1].stdout().data() == "\xC3\xA9!");
  CHECK(c.events[2].stdout().data() == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(c.events[3].has_exit());
}

TEST_CASE("an error ends the stream as its final event") {
  Collected c;
  v1::Error error;
  error.set_code("internal");
  c.translator.finish_error(error);
  REQUIRE(c.events.size() == 2);
  CHECK(c.events[1].error().code() == "internal");
  CHECK(c.translator.last_sequence() == 2);
}
