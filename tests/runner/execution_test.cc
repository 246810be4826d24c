// How every execution ends (runner/execution.h), without a sandbox: the events a client sees,
// their order and numbers, and what the result says.
#include "runner/execution.h"

#include <catch2/catch.hpp>
#include <cerrno>
#include <vector>

#include "runner/interpreter.h"
#include "runner/output_capture.h"

namespace airlock::runner {
namespace {

// One event as the sink saw it, copied while it was valid.
struct Seen {
  EventKind kind;
  uint64_t sequence = 0;
  std::string data;
  std::string file;     // the file event's path
  std::string status;   // the final event's result's status
  std::string summary;  // and its summary
};

struct Recorder {
  std::vector<Seen> events;
  EventSink sink = [this](const Event& event) {
    Seen seen{event.kind, event.sequence, event.data, {}, {}, {}};
    if (event.file) seen.file = event.file->path;
    if (event.result) {
      seen.status = event.result->status_name();
      seen.summary = event.result->summary;
    }
    events.push_back(std::move(seen));
  };
  size_t count(EventKind kind) const {
    size_t n = 0;
    for (const Seen& seen : events) n += seen.kind == kind;
    return n;
  }
};

policies::Policy test_policy() {
  policies::Policy policy;
  policy.name = "test";
  policy.hash = "sha256:0123";
  policy.limits.wall_time = std::chrono::seconds(10);
  policy.limits.cpu_time = std::chrono::seconds(5);
  policy.limits.memory_max_bytes = 256 * sandbox::kMiB;
  policy.limits.max_processes = 32;
  return policy;
}

}  // namespace

TEST_CASE(
    "a finished execution sends its files, then exactly one exit event, numbered on from its "
    "output") {
  const policies::Policy policy = test_policy();
  RunRequest request;
  request.id = "ex_0001";
  Recorder recorder;
  Execution execution(request, policy, "python", recorder.sink, policy.limits);
  OutputCapture capture(1024, false, true, &execution.sink(), execution.sequence());
  REQUIRE(capture.take(sandbox::Stream::stdout_stream, "one\n"));
  REQUIRE(capture.take(sandbox::Stream::stderr_stream, "two\n"));
  execution.result().outcome.status = sandbox::RunStatus::ok;
  execution.result().stdout_output = capture.kept(sandbox::Stream::stdout_stream);
  execution.result().files = {OutputFile{"a.png", "x", 1}, OutputFile{"b.csv", "y", 1}};

  RunResult result = execution.finish();

  REQUIRE(recorder.events.size() == 5);
  for (size_t i = 0; i < recorder.events.size(); ++i) {
    CHECK(recorder.events[i].sequence == i + 1);
  }
  CHECK(recorder.events[0].kind == EventKind::stdout_data);
  CHECK(recorder.events[1].kind == EventKind::stderr_data);
  CHECK(recorder.events[2].kind == EventKind::file);
  CHECK(recorder.events[2].file == "a.png");
  CHECK(recorder.events[3].kind == EventKind::file);
  CHECK(recorder.events[3].file == "b.csv");
  CHECK(recorder.events[4].kind == EventKind::exit);
  CHECK(recorder.count(EventKind::exit) == 1);
  CHECK(recorder.count(EventKind::error) == 0);
  // The final event carries the finished result: summary written before it is sent.
  CHECK(recorder.events[4].status == "ok");
  CHECK(recorder.events[4].summary == result.summary);
  CHECK_THAT(result.summary, Catch::StartsWith("status: ok\n"));
  CHECK_THAT(result.summary, Catch::Contains("files: a.png (1 B) b.csv (1 B)"));
  CHECK(result.id == "ex_0001");
  CHECK(result.policy_name == "test");
  CHECK(result.policy_hash == "sha256:0123");
  CHECK(result.runtime == "python");
  CHECK(result.stdout_output.text == "one\n");
}

TEST_CASE("a setup failure ends with an error event naming what failed") {
  const policies::Policy policy = test_policy();
  RunRequest request;
  Recorder recorder;
  Execution execution(request, policy, "python", recorder.sink, policy.limits);

  RunResult result = execution.fail("session setup", {"the session was closed", 0});

  REQUIRE(recorder.events.size() == 1);
  CHECK(recorder.events[0].kind == EventKind::error);
  CHECK(recorder.events[0].sequence == 1);
  CHECK(recorder.events[0].data == "session setup failed: the session was closed");
  CHECK(recorder.events[0].status == "setup_error");
  CHECK(result.outcome.status == sandbox::RunStatus::setup_error);
  REQUIRE(result.outcome.setup_error.has_value());
  CHECK(result.outcome.setup_error->operation == "the session was closed");
  CHECK_THAT(
      result.summary,
      Catch::StartsWith("status: setup_error — session setup failed: the session was closed"));
  CHECK_FALSE(result.rejected.has_value());
  // An execution with no id gets a new one.
  CHECK(result.id.starts_with("ex_"));
}

TEST_CASE("a note goes above the summary") {
  const policies::Policy policy = test_policy();
  RunRequest request;
  Recorder recorder;
  Execution execution(request, policy, "python", recorder.sink, policy.limits);
  execution.result().outcome.status = sandbox::RunStatus::nonzero_exit;
  execution.result().outcome.exit_code = 1;
  execution.result().stderr_output.text = "Traceback (most recent call last):\nValueError: no\n";

  RunResult result = execution.finish("note: the interpreter was restarted.");

  CHECK_THAT(result.summary, Catch::StartsWith("note: the interpreter was restarted.\n"
                                               "status: nonzero_exit — ValueError: no\n"));
  REQUIRE(recorder.events.size() == 1);
  CHECK(recorder.events[0].kind == EventKind::exit);
  CHECK(recorder.events[0].summary == result.summary);
}

TEST_CASE("a rejected execution ends as a setup error that names the request's field") {
  const policies::Policy policy = test_policy();
  RunRequest request;
  Recorder recorder;
  Execution execution(request, policy, "python", recorder.sink, policy.limits);

  execution.reject({"files[0].path", "'big.bin' does not fit the working directory"});
  RunResult result = execution.fail("sandbox setup", {"write(\"big.bin\")", ENOSPC});

  REQUIRE(result.rejected.has_value());
  CHECK(result.rejected->field == "files[0].path");
  CHECK(result.outcome.status == sandbox::RunStatus::setup_error);
  REQUIRE(recorder.events.size() == 1);
  CHECK(recorder.events[0].kind == EventKind::error);
  CHECK_THAT(recorder.events[0].data,
             Catch::StartsWith("sandbox setup failed: write(\"big.bin\"): ENOSPC"));
}

TEST_CASE("an interpreter's execution runs under the request's times, the policy's memory") {
  policies::Policy policy = test_policy();
  policy.output.kept_bytes = 4096;
  RunRequest request;
  request.code = "print(1)";
  request.limits.wall_time = std::chrono::seconds(2);
  request.limits.memory_max_bytes = 64 * sandbox::kMiB;
  request.limits.output_kept_bytes = 512;
  EventSink none;
  Execution execution(request, policy, "python", none, interpreter_limits(policy, request.limits),
                      7);

  InterpreterRequest run = execution.interpreter_request();
  CHECK(run.code == "print(1)");
  CHECK(run.wall_time == std::chrono::seconds(2));
  CHECK(run.cpu_time == std::chrono::seconds(5));
  CHECK(run.kept_bytes == 512);
  CHECK(run.cancel_fd == 7);
  CHECK(run.sequence == &execution.sequence());
  CHECK(execution.limits().memory_max_bytes == 256 * sandbox::kMiB);
  CHECK(effective_limits(policy, request.limits).memory_max_bytes == 64 * sandbox::kMiB);

  // Without a sink, finishing sends nothing and still completes the result.
  InterpreterResult ran;
  ran.outcome.status = sandbox::RunStatus::ok;
  ran.stdout_output.text = "1\n";
  execution.take(std::move(ran), nullptr);
  RunResult result = execution.finish();
  CHECK(result.stdout_output.text == "1\n");
  CHECK_THAT(result.summary, Catch::StartsWith("status: ok\n"));
}

}  // namespace airlock::runner
