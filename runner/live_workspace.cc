#include "runner/live_workspace.h"

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "sandbox/readable.h"

namespace airlock::runner {

LiveWorkspace::~LiveWorkspace() {
  live_->kill();
  if (channel_->on_reader_thread()) {
    // The last holder let go in one of the workspace's own callbacks: the sandbox's thread
    // cannot wait for itself, so another one waits for it and then removes the home.
    std::thread([live = std::move(live_), home = std::move(home_), channel = channel_]() mutable {
      live.reset();
      home.reset();
    }).detach();
  }
  // Otherwise the members go in order: the sandbox (waiting for its monitor), then the home.
}

void LiveWorkspace::call(std::string request_json, std::function<void(AgentReply)> on_reply) {
  auto call = channel_->begin_call(request_json, std::move(on_reply));
  if (call) send(*call);
}

void LiveWorkspace::send(const AgentChannel::Call& call) {
  const size_t cap = channel_->limits().max_queued_bytes;
  switch (live_->write_stdin_bounded(call.line, cap)) {
    case sandbox::LiveSandbox::StdinWrite::queued:
      return;
    case sandbox::LiveSandbox::StdinWrite::full:
      return channel_->fail_call(
          call.id,
          "the sandbox's agent is not reading its requests: " + sandbox::format_bytes(cap) +
              " of them already wait for it; try again later",
          true);
    case sandbox::LiveSandbox::StdinWrite::closed:
      return channel_->fail_call(call.id, "the workspace ended");
  }
}

AgentReply LiveWorkspace::call_and_wait(std::string request_json,
                                        std::chrono::milliseconds timeout) {
  struct Waiter {
    std::mutex mutex;
    std::condition_variable replied;
    std::optional<AgentReply> reply;
  };
  auto waiter = std::make_shared<Waiter>();
  auto call = channel_->begin_call(request_json, [waiter](AgentReply reply) {
    std::lock_guard lock(waiter->mutex);
    waiter->reply = std::move(reply);
    waiter->replied.notify_all();
  });
  if (call) send(*call);
  if (call) {
    std::unique_lock lock(waiter->mutex);
    if (!waiter->replied.wait_for(lock, timeout, [&] { return waiter->reply.has_value(); })) {
      lock.unlock();
      // Sets the reply unless the agent's came first; a later one is dropped.
      channel_->fail_call(call->id, "the workspace's agent did not answer within " +
                                        sandbox::format_duration(timeout));
    }
  }
  std::lock_guard lock(waiter->mutex);
  return std::move(*waiter->reply);
}

}  // namespace airlock::runner
