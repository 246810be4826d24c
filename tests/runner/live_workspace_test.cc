// LiveWorkspace over a scripted sandbox: how a request that cannot be written is answered.
#include "runner/live_workspace.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

namespace airlock::runner {
namespace {

using StdinWrite = sandbox::LiveSandbox::StdinWrite;

// A live sandbox whose stdin takes, refuses or has closed, as the test says.
class ScriptedLive final : public sandbox::LiveSandbox {
 public:
  explicit ScriptedLive(StdinWrite answer) : answer_(answer) {}
  bool write_stdin(std::string_view data) override {
    return write_stdin_bounded(data, SIZE_MAX) == StdinWrite::queued;
  }
  StdinWrite write_stdin_bounded(std::string_view data, size_t max_waiting_bytes) override {
    last_cap = max_waiting_bytes;
    if (answer_ == StdinWrite::queued) written += data;
    return answer_;
  }
  void close_stdin() override {}
  void kill() override {}
  bool ended() const override { return answer_ == StdinWrite::closed; }
  const sandbox::Outcome& wait() override { return outcome_; }
  uint64_t cpu_usage_ns() override { return 0; }
  uint64_t memory_usage_bytes() override { return 0; }
  sandbox::Usage usage_so_far() override { return {}; }
  sandbox::Status to_foreground() override { return {}; }
  sandbox::Status begin_task(const sandbox::TaskLimits&) override { return {}; }
  sandbox::Usage end_task() override { return {}; }

  std::string written;
  size_t last_cap = 0;

 private:
  StdinWrite answer_;
  sandbox::Outcome outcome_;
};

class NoHome final : public sandbox::Workspace {
 public:
  const std::string& path() const override { return path_; }
  sandbox::Status give_to_sandbox(const std::string&) const override { return {}; }
  uint32_t owner_uid() const override { return 0; }
  uint32_t owner_gid() const override { return 0; }

 private:
  std::string path_ = "/nonexistent";
};

}  // namespace

TEST_CASE("a request to an agent that has not read what waits for it is refused at once, busy") {
  AgentChannelLimits limits;
  limits.max_queued_bytes = 1234;
  auto channel = AgentChannel::create(limits);
  auto live = std::make_unique<ScriptedLive>(StdinWrite::full);
  ScriptedLive* scripted = live.get();
  LiveWorkspace workspace(channel, std::make_unique<NoHome>(), std::move(live));
  // Not waited for: the refusal comes before the (hour-long) wait would begin.
  AgentReply reply = workspace.call_and_wait(R"({"op":"fs.stat"})", std::chrono::hours(1));
  CHECK_FALSE(reply.delivered);
  CHECK(reply.busy);
  CHECK(reply.error.find("not reading its requests") != std::string::npos);
  CHECK(scripted->last_cap == 1234);
  CHECK(workspace.alive());

  AgentReply async;
  workspace.call(R"({"op":"fs.stat"})", [&](AgentReply r) { async = std::move(r); });
  CHECK(async.busy);
}

TEST_CASE("a request to an ended workspace is undelivered, not busy") {
  auto channel = AgentChannel::create();
  LiveWorkspace workspace(channel, std::make_unique<NoHome>(),
                          std::make_unique<ScriptedLive>(StdinWrite::closed));
  AgentReply reply = workspace.call_and_wait(R"({"op":"fs.stat"})", std::chrono::hours(1));
  CHECK_FALSE(reply.delivered);
  CHECK_FALSE(reply.busy);
  CHECK(reply.error == "the workspace ended");
}

}  // namespace airlock::runner
