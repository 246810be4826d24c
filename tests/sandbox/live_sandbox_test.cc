// A sandbox that keeps running between inputs: what sessions stand on.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "sandbox/unique_fd.h"
#include "test_support.h"

namespace airlock::sandbox {
using namespace testing;

namespace {

// Collects output and lets a test wait for a given text on a stream, without timing assumptions.
struct Waiting : OutputHandler {
  std::mutex mutex;
  std::condition_variable changed;
  std::string out, control;
  bool on_output(Stream stream, std::string_view data) override {
    {
      std::lock_guard lock(mutex);
      (stream == Stream::control_stream ? control : out).append(data);
    }
    changed.notify_all();
    return true;
  }
  void wait_for(const std::string& text) {
    std::unique_lock lock(mutex);
    changed.wait(lock, [&] { return out.find(text) != std::string::npos; });
  }
};

// A probe the spec lets run for long: only a task's limits can end it soon.
Spec long_lived(std::vector<std::string> argv) {
  Spec spec = probe_spec(std::move(argv));
  spec.limits.wall_time = std::chrono::seconds(60);
  spec.limits.cpu_time = std::chrono::seconds(60);
  return spec;
}

}  // namespace

TEST_CASE("a live sandbox answers input after input until stdin closes", "[root]") {
  if (!can_sandbox()) return;
  Waiting output;
  auto live = shared_sandbox().start(probe_spec({kProbe, "lines"}), output);
  REQUIRE(live.ok());
  REQUIRE((*live)->write_stdin("one\n"));
  output.wait_for("got one\n");
  CHECK_FALSE((*live)->ended());
  REQUIRE((*live)->write_stdin("two\n"));
  output.wait_for("got two\n");
  (*live)->close_stdin();
  const Outcome& outcome = (*live)->wait();
  CHECK(outcome.status == RunStatus::ok);
  CHECK(output.out == "got one\ngot two\n");
  CHECK_FALSE((*live)->write_stdin("three\n"));
}

TEST_CASE("the control channel is fd 3 and reaches the handler apart from stdout", "[root]") {
  if (!can_sandbox()) return;
  Waiting output;
  Spec spec = probe_spec({kProbe, "channel", "done 1"});
  spec.control_channel = true;
  auto live = shared_sandbox().start(spec, output);
  REQUIRE(live.ok());
  CHECK((*live)->wait().status == RunStatus::ok);
  CHECK(output.control == "done 1");
  CHECK(output.out == "OK\n");
}

TEST_CASE("without a control channel fd 3 is closed", "[root]") {
  if (!can_sandbox()) return;
  Waiting output;
  auto live = shared_sandbox().start(probe_spec({kProbe, "channel", "x"}), output);
  REQUIRE(live.ok());
  CHECK((*live)->wait().status == RunStatus::nonzero_exit);
  CHECK(output.out == "EBADF\n");
}

TEST_CASE("killing a live sandbox ends it as cancelled; destroying one cleans up", "[root]") {
  if (!can_sandbox()) return;
  Waiting output;
  auto live = shared_sandbox().start(probe_spec({kProbe, "sleep", "30"}), output);
  REQUIRE(live.ok());
  (*live)->kill();
  CHECK((*live)->wait().status == RunStatus::cancelled);
  auto other = shared_sandbox().start(probe_spec({kProbe, "sleep", "30"}), output);
  REQUIRE(other.ok());
  other->reset();  // the destructor kills, waits and removes the cgroup
}

TEST_CASE("a live sandbox that cannot start is an error, not a sandbox", "[root]") {
  if (!can_sandbox()) return;
  Waiting output;
  Spec spec = probe_spec({kProbe});
  spec.filesystem.binds.push_back({"/no/such/dir", "", false, false});
  auto live = shared_sandbox().start(spec, output);
  REQUIRE_FALSE(live.ok());
  CHECK_THAT(live.error().message(), Catch::Contains("/no/such/dir"));
}

TEST_CASE("a task's wall time ends a live sandbox as a timeout naming the task's limit", "[root]") {
  if (!can_sandbox()) return;
  Waiting output;
  auto live = shared_sandbox().start(long_lived({kProbe, "sleep", "60"}), output);
  REQUIRE(live.ok());
  REQUIRE((*live)->begin_task({std::chrono::milliseconds(300), std::chrono::seconds(60)}));
  const Outcome& outcome = (*live)->wait();
  CHECK(outcome.status == RunStatus::timeout);
  CHECK(outcome.timeout == TimeoutKind::wall);
  CHECK(outcome.reason == "wall time limit 300 ms reached");
}

TEST_CASE("a task's cpu time counts from the task's start, not the sandbox's", "[root]") {
  if (!can_sandbox()) return;
  Waiting output;
  auto live = shared_sandbox().start(long_lived({kProbe, "busy"}), output);
  REQUIRE(live.ok());
  const uint64_t before_task_ns = 400'000'000;
  while ((*live)->cpu_usage_ns() < before_task_ns) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE((*live)->begin_task({std::chrono::seconds(60), std::chrono::milliseconds(300)}));
  const Outcome& outcome = (*live)->wait();
  CHECK(outcome.status == RunStatus::timeout);
  CHECK(outcome.timeout == TimeoutKind::cpu);
  CHECK(outcome.reason == "cpu time limit 300 ms reached");
  // The 400 ms before the task did not count against its 300 ms.
  CHECK(outcome.usage.cpu_user + outcome.usage.cpu_system >= std::chrono::milliseconds(650));
}

TEST_CASE("a task's usage counts from its start, also when the tree ended with it", "[root]") {
  if (!can_sandbox()) return;
  using std::chrono::milliseconds;
  Waiting output;
  auto live = shared_sandbox().start(long_lived({kProbe, "busy"}), output);
  REQUIRE(live.ok());
  auto cpu_ms = [&] {
    return std::chrono::duration_cast<milliseconds>(
        std::chrono::nanoseconds((*live)->cpu_usage_ns()));
  };
  while (cpu_ms() < milliseconds(400)) std::this_thread::sleep_for(milliseconds(10));
  const milliseconds before = cpu_ms();  // at least 400 ms, all of it before the task
  REQUIRE((*live)->begin_task({std::chrono::seconds(60), std::chrono::seconds(60)}));
  const milliseconds at_begin = cpu_ms();
  while (cpu_ms() < at_begin + milliseconds(300)) std::this_thread::sleep_for(milliseconds(10));
  const Usage in_time = (*live)->end_task();
  const milliseconds at_end = cpu_ms();
  // The split into user and system time is the kernel's sampling, in ticks: slack of 150 ms,
  // well under the 400 ms before the task that must not count.
  const milliseconds cpu = in_time.cpu_user + in_time.cpu_system;
  CHECK(cpu >= milliseconds(250));
  CHECK(cpu <= at_end - before + milliseconds(150));
  CHECK(in_time.peak_memory_bytes > 0);

  REQUIRE((*live)->begin_task({milliseconds(300), std::chrono::seconds(60)}));
  REQUIRE((*live)->wait().status == RunStatus::timeout);
  const Usage killed = (*live)->end_task();
  CHECK(killed.wall >= milliseconds(300));
  // One busy thread: about the wall time since the task began (ticks of slack), not the
  // tree's 700 ms and more.
  CHECK(killed.cpu_user + killed.cpu_system <= killed.wall + milliseconds(150));
}

TEST_CASE("a task's cancel fd ends it as cancelled", "[root]") {
  if (!can_sandbox()) return;
  Waiting output;
  auto live = shared_sandbox().start(long_lived({kProbe, "sleep", "60"}), output);
  REQUIRE(live.ok());
  auto cancel = make_eventfd();
  REQUIRE(cancel.ok());
  REQUIRE((*live)->begin_task(
      {std::chrono::seconds(60), std::chrono::seconds(60), cancel.value().get()}));
  uint64_t one = 1;
  REQUIRE(::write(cancel.value().get(), &one, sizeof one) == sizeof one);
  CHECK((*live)->wait().status == RunStatus::cancelled);
}

TEST_CASE("a task that ends in time leaves the sandbox running", "[root]") {
  if (!can_sandbox()) return;
  Waiting output;
  auto live = shared_sandbox().start(long_lived({kProbe, "lines"}), output);
  REQUIRE(live.ok());
  auto cancel = make_eventfd();
  REQUIRE(cancel.ok());
  REQUIRE((*live)->begin_task(
      {std::chrono::milliseconds(200), std::chrono::milliseconds(200), cancel.value().get()}));
  REQUIRE((*live)->write_stdin("one\n"));
  output.wait_for("got one\n");
  (*live)->end_task();
  // Past the ended task's wall time, and its cancel fd (the caller's to reuse) firing.
  uint64_t one = 1;
  REQUIRE(::write(cancel.value().get(), &one, sizeof one) == sizeof one);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  CHECK_FALSE((*live)->ended());
  REQUIRE((*live)->write_stdin("two\n"));
  output.wait_for("got two\n");
  (*live)->close_stdin();
  CHECK((*live)->wait().status == RunStatus::ok);
}

TEST_CASE("a program that stops reading stdin gets a bounded queue, refused beyond it", "[root]") {
  if (!can_sandbox()) return;
  Waiting output;
  auto live = shared_sandbox().start(long_lived({kProbe, "sleep", "60"}), output);
  REQUIRE(live.ok());
  constexpr size_t kCap = 4 * kMiB;
  const std::string chunk(kMiB, 'x');
  // The pipe takes a little; past that, what waits is counted against the cap.
  size_t accepted = 0;
  LiveSandbox::StdinWrite result = LiveSandbox::StdinWrite::queued;
  while (accepted < 64 && result == LiveSandbox::StdinWrite::queued) {
    result = (*live)->write_stdin_bounded(chunk, kCap);
    if (result == LiveSandbox::StdinWrite::queued) ++accepted;
  }
  CHECK(result == LiveSandbox::StdinWrite::full);
  CHECK(accepted <= kCap / kMiB + 1);
  CHECK((*live)->write_stdin_bounded(chunk, kCap) == LiveSandbox::StdinWrite::full);
  (*live)->kill();
  (*live)->wait();
  CHECK((*live)->write_stdin_bounded("small", kCap) == LiveSandbox::StdinWrite::closed);
}

}  // namespace airlock::sandbox
