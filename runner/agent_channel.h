// A workspace agent's channel (runner/drivers/envd_agent.py): turns what the agent writes on fd 3
// into replies to calls and events for subscribers, a line at a time, and keeps the calls that
// wait for a reply and the subscriptions. It only frames lines, never parses their JSON, and
// knows the sandbox only as the output handler it is, so tests feed it chunks.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "runner/gateway_link.h"
#include "runner/workspaces.h"
#include "sandbox/sandbox.h"

namespace airlock::runner {

struct AgentChannelLimits {
  size_t max_line_bytes = 8 * sandbox::kMiB;  // a longer line is discarded and counted as bad
  size_t max_pending = 1024;                  // calls waiting for their reply; beyond: refused
  // Request bytes the agent has not yet read (it may be stopped); beyond: refused.
  size_t max_queued_bytes = 4 * sandbox::kMiB;
  size_t max_bad_lines = 16;  // beyond: on_output answers false, which ends the workspace
  size_t tail_bytes = 4096;   // of the agent's own stdout and stderr, for error messages
};

class AgentChannel final : public sandbox::OutputHandler,
                           public std::enable_shared_from_this<AgentChannel> {
 public:
  // on_end runs once, on the sandbox's thread, after the channel has ended because the sandbox
  // did (not when end() is called by hand).
  static std::shared_ptr<AgentChannel> create(AgentChannelLimits limits = {},
                                              std::function<void()> on_end = {});

  // A call registered: the line to write to the agent's stdin.
  struct Call {
    uint64_t id;
    std::string line;
  };
  // Registers a call whose reply goes to on_reply. Refused (nullopt, after on_reply ran
  // undelivered on this thread) when the channel has ended, too many calls wait, or the request
  // is not one line.
  std::optional<Call> begin_call(std::string_view request_json,
                                 std::function<void(AgentReply)> on_reply);
  // Gives up on a call (its line could not be sent, or its waiter ran out of time): on_reply runs
  // undelivered with `why` on this thread unless the reply came first; a later reply is dropped.
  // busy: AgentReply::busy (the call was refused for what already waits).
  void fail_call(uint64_t id, const std::string& why, bool busy = false);
  const AgentChannelLimits& limits() const { return limits_; }

  // Workspace::subscribe. When the channel has already ended, on_end runs before this returns.
  std::unique_ptr<Workspace::Subscription> subscribe(std::string key,
                                                     std::function<void(std::string_view)> on_event,
                                                     std::function<void()> on_end);

  // Waits until the agent said `E ready`: false when it ended or `timeout` ran out first.
  bool wait_ready(std::chrono::milliseconds timeout);
  bool ended() const;
  // Every waiting call gets its reply undelivered with `why`, every subscription its on_end;
  // later calls are refused. Once; later calls do nothing.
  void end(const std::string& why);
  // The last tail_bytes of what the agent wrote on stdout and stderr, and notes of bad lines.
  std::string diagnostics() const;
  uint64_t bad_lines() const;
  // Whether this thread is the one that delivers the agent's output (the sandbox's monitor).
  bool on_reader_thread() const { return reader_.load() == std::this_thread::get_id(); }

  bool on_output(sandbox::Stream stream, std::string_view data) override;
  void on_ended() override;
  // Before the sandbox starts: its network reaches the egress gateway through link, which lives
  // as long as the channel.
  void link_gateway(std::unique_ptr<GatewayLink> link) { gateway_ = std::move(link); }
  void on_gateway_sockets(sandbox::GatewaySockets sockets) override {
    if (gateway_) gateway_->attach(std::move(sockets));
  }

 private:
  struct Subscriber;
  class Handle;
  AgentChannel(AgentChannelLimits limits, std::function<void()> on_end);
  void handle_line(std::string_view line);  // on the reader's thread, no lock held
  void bad_line(const std::string& why);
  void unsubscribe(const std::string& key, const Subscriber* subscriber);
  void keep_tail(std::string_view data);  // with mutex_ held

  const AgentChannelLimits limits_;
  const std::function<void()> on_end_;
  // The reader's own: the start of a line whose end has not arrived, or the rest of a long one.
  std::string partial_;
  bool discarding_ = false;
  std::atomic<std::thread::id> reader_{};

  std::unique_ptr<GatewayLink> gateway_;
  mutable std::mutex mutex_;
  std::condition_variable ready_changed_;
  bool ready_ = false;
  bool ended_ = false;
  std::string end_reason_;
  uint64_t next_id_ = 0;
  std::map<uint64_t, std::function<void(AgentReply)>> pending_;
  std::multimap<std::string, std::shared_ptr<Subscriber>> subscribers_;
  std::string tail_;
  uint64_t bad_lines_ = 0;
};

}  // namespace airlock::runner
