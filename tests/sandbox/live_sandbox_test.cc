// A sandbox that keeps running between inputs: what sessions stand on.
#include <catch2/catch.hpp>
#include <condition_variable>
#include <mutex>

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

}  // namespace airlock::sandbox
