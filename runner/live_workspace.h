// One workspace's running parts behind the Workspace interface (runner/workspaces.h): the
// agent's live sandbox, its home (/home/user) and the channel to the agent (agent_channel.h).
// The manager makes it once the sandbox has started and hands it out; it may be dropped on any
// thread, even in one of its own callbacks.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "runner/agent_channel.h"
#include "runner/workspaces.h"
#include "sandbox/sandbox.h"

namespace airlock::runner {

class LiveWorkspace final : public Workspace {
 public:
  LiveWorkspace(std::shared_ptr<AgentChannel> channel, std::unique_ptr<sandbox::Workspace> home,
                std::unique_ptr<sandbox::LiveSandbox> live)
      : channel_(std::move(channel)), home_(std::move(home)), live_(std::move(live)) {}

  ~LiveWorkspace() override;

  void set_id(std::string id, std::string owner) {
    id_ = std::move(id);
    owner_ = std::move(owner);
  }
  const std::string& id() const override { return id_; }
  const std::string& owner() const override { return owner_; }

  void call(std::string request_json, std::function<void(AgentReply)> on_reply) override;

  AgentReply call_and_wait(std::string request_json, std::chrono::milliseconds timeout) override;

  std::unique_ptr<Subscription> subscribe(std::string key,
                                          std::function<void(std::string_view)> on_event,
                                          std::function<void()> on_end) override {
    return channel_->subscribe(std::move(key), std::move(on_event), std::move(on_end));
  }

  bool alive() const override { return !killed_ && !channel_->ended(); }
  sandbox::Usage usage_so_far() override { return live_->usage_so_far(); }
  uint64_t memory_usage_bytes() override { return live_->memory_usage_bytes(); }

  void kill() {
    killed_ = true;
    live_->kill();
  }
  AgentChannel& channel() { return *channel_; }

 private:
  // Writes a registered call's line, failing the call when the agent's queue is full or gone.
  void send(const AgentChannel::Call& call);

  std::string id_;  // set once by create(), before anyone else can know the workspace
  std::string owner_;  // likewise
  std::atomic<bool> killed_{false};
  // Destroyed in reverse order: the sandbox first (its monitor uses the channel), then the home.
  std::shared_ptr<AgentChannel> channel_;
  std::unique_ptr<sandbox::Workspace> home_;
  std::unique_ptr<sandbox::LiveSandbox> live_;
};

}  // namespace airlock::runner
