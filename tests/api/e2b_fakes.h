// A workspace whose agent follows a script, and a writer that collects a stream, for testing
// api/e2b/ as the transport and the runner drive it, without a sandbox.
#pragma once

#include <google/protobuf/util/message_differencer.h>
#include <catch2/catch.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <variant>
#include <vector>

#include "api/e2b/connect.h"
#include "api/handler.h"
#include "api/wire/json.h"
#include "runner/workspaces.h"

namespace airlock::api::testing {

// A workspace whose agent answers from a script (by op) at once, and whose events the test
// emits by hand. Requests are recorded as sent.
class FakeWorkspace : public runner::Workspace {
 public:
  static constexpr const char* kNoReply = "(no reply)";  // a reply that never came
  static constexpr const char* kBusy = "(busy)";  // refused: the agent has not read what waits
  std::map<std::string, std::string> replies;            // op -> the reply's JSON, or kNoReply
  // op -> replies given one a request, in turn, before `replies` answers the rest.
  std::map<std::string, std::deque<std::string>> replies_in_turn;
  std::vector<std::string> requests;
  // When set, call() keeps its reply until the test calls answer(): a request in flight.
  bool hold_replies = false;

  FakeWorkspace() = default;
  FakeWorkspace(std::string id, std::string owner) : id_(std::move(id)), owner_(std::move(owner)) {}

  const std::string& id() const override { return id_; }
  const std::string& owner() const override { return owner_; }
  void call(std::string request_json, std::function<void(runner::AgentReply)> on_reply) override {
    if (!hold_replies) return on_reply(reply_to(std::move(request_json)));
    held_.push_back(
        [this, request_json = std::move(request_json), on_reply = std::move(on_reply)]() mutable {
          on_reply(reply_to(std::move(request_json)));
        });
  }
  runner::AgentReply call_and_wait(std::string request_json, std::chrono::milliseconds) override {
    if (!hang) return reply_to(std::move(request_json));
    // An agent that never answers (stopped): the caller's thread waits until the test lets go.
    std::unique_lock lock(hang_mutex_);
    ++hanging_;
    hang_changed_.notify_all();
    // Bounded, so that a test whose request is not refused fails instead of hanging.
    hang_changed_.wait_for(lock, std::chrono::seconds(10), [this] { return released_; });
    --hanging_;
    return {false, "", "no reply in time"};
  }
  // With hang set, call_and_wait blocks until release() (at most 10 s): an agent that is stopped.
  bool hang = false;
  void wait_hanging(size_t count) {
    std::unique_lock lock(hang_mutex_);
    hang_changed_.wait(lock, [&] { return hanging_ >= count; });
  }
  void release() {
    std::lock_guard lock(hang_mutex_);
    released_ = true;
    hang_changed_.notify_all();
  }
  // Calls held by hold_replies, not yet answered.
  size_t held() const { return held_.size(); }
  // Answers the oldest held call (which may make another).
  void answer() {
    REQUIRE(!held_.empty());
    auto next = std::move(held_.front());
    held_.pop_front();
    next();
  }
  std::unique_ptr<Subscription> subscribe(std::string key,
                                          std::function<void(std::string_view)> on_event,
                                          std::function<void()> on_end) override {
    const int id = next_subscription_++;
    subscribers_[id] = {std::move(key), std::move(on_event), std::move(on_end)};
    return std::make_unique<FakeSubscription>(this, id);
  }
  bool alive() const override { return true; }
  sandbox::Usage usage_so_far() override { return {}; }
  uint64_t memory_usage_bytes() override { return 0; }

  void emit(const std::string& key, const std::string& event) {
    std::vector<std::function<void(std::string_view)>> targets;
    for (const auto& [id, subscriber] : subscribers_) {
      if (subscriber.key == key) targets.push_back(subscriber.on_event);
    }
    for (const auto& target : targets) target(event);
  }
  size_t subscribers(const std::string& key) const {
    size_t count = 0;
    for (const auto& [id, subscriber] : subscribers_) count += subscriber.key == key;
    return count;
  }

 private:
  struct Subscriber {
    std::string key;
    std::function<void(std::string_view)> on_event;
    std::function<void()> on_end;
  };
  class FakeSubscription : public Subscription {
   public:
    FakeSubscription(FakeWorkspace* workspace, int id) : workspace_(workspace), id_(id) {}
    ~FakeSubscription() override { workspace_->subscribers_.erase(id_); }

   private:
    FakeWorkspace* workspace_;
    int id_;
  };

  runner::AgentReply reply_to(std::string request_json) {
    requests.push_back(request_json);
    const std::string marker = R"("op":")";
    const size_t at = request_json.find(marker) + marker.size();
    const std::string op = request_json.substr(at, request_json.find('"', at) - at);
    if (auto turn = replies_in_turn.find(op);
        turn != replies_in_turn.end() && !turn->second.empty()) {
      std::string next = std::move(turn->second.front());
      turn->second.pop_front();
      return {true, std::move(next), ""};
    }
    auto reply = replies.find(op);
    if (reply == replies.end()) {
      return {true, R"({"ok":false,"error":{"code":"internal","message":"unscripted"}})", ""};
    }
    if (reply->second == kNoReply) return {false, "", "no reply in time"};
    if (reply->second == kBusy) return {false, "", "the agent is not reading its requests", true};
    return {true, reply->second, ""};
  }

  std::string id_ = "sb_test";
  std::string owner_ = "key";
  std::mutex hang_mutex_;
  std::condition_variable hang_changed_;
  size_t hanging_ = 0;
  bool released_ = false;
  std::deque<std::function<void()>> held_;
  int next_subscription_ = 0;
  std::map<int, Subscriber> subscribers_;
};

// Collects what a stream writes. Every write lands at once, unless the test holds them: then
// they count as pending until it takes them, as a client that reads slowly would.
class FakeWriter : public ByteStreamWriter {
 public:
  std::string bytes;
  bool ended = false;  // the producer ended the body
  bool gone = false;   // the client went away
  bool hold = false;   // writes stay pending until take()
  bool write(std::string more) override {
    if (closed()) return false;
    if (hold) pending_ += more.size();
    bytes += more;
    return true;
  }
  void end() override {
    ended = true;
    call_waiters(true);
  }
  bool closed() const override { return ended || gone; }
  size_t pending_bytes() const override { return pending_; }
  void when_pending_at_most(size_t at_most, std::function<void()> callback) override {
    if (closed() || pending_ <= at_most) return callback();
    waiters_.push_back({at_most, std::move(callback)});
  }

  // The client takes what was written: pending drops to zero, and the waiters are called.
  void take() {
    pending_ = 0;
    call_waiters(false);
  }
  // The client goes away: the stream closes, and the waiters are called.
  void leave() {
    gone = true;
    call_waiters(true);
  }
  size_t waiters() const { return waiters_.size(); }

 private:
  struct Waiter {
    size_t at_most;
    std::function<void()> callback;
  };
  void call_waiters(bool all) {
    std::vector<Waiter> ready;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (all || it->at_most >= pending_) {
        ready.push_back(std::move(*it));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
    for (Waiter& waiter : ready) waiter.callback();
  }

  size_t pending_ = 0;
  std::vector<Waiter> waiters_;
};

inline HttpRequest rpc(const std::string& path, const std::string& content_type, std::string body) {
  HttpRequest request;
  request.method = "POST";
  request.target = "/e2b/sandbox" + path;
  request.headers = {{"Content-Type", content_type}, {"Connect-Protocol-Version", "1"}};
  request.body = std::move(body);
  return request;
}

inline HttpRequest json_stream(const std::string& path, const std::string& message) {
  return rpc(path, "application/connect+json", e2b::connect::envelope(0, message));
}

// Agent requests are JSON objects whose fields print in no fixed order: compared as values.
inline bool same_json(const std::string& actual, const std::string& expected) {
  std::string error;
  auto a = json::parse(actual, error);
  auto b = json::parse(expected, error);
  REQUIRE(a);
  REQUIRE(b);
  if (google::protobuf::util::MessageDifferencer::Equals(*a, *b)) return true;
  UNSCOPED_INFO(actual << " differs from " << expected);
  return false;
}

inline std::string frame(const std::string& message) {
  return e2b::connect::envelope(0, message);
}

inline const std::string kEndOk = std::string("\x02\x00\x00\x00\x02{}", 7);

inline StreamingResponse streaming(Dispatch dispatch) {
  REQUIRE(std::holds_alternative<StreamingResponse>(dispatch));
  return std::get<StreamingResponse>(std::move(dispatch));
}

inline HttpResponse plain(Dispatch dispatch) {
  REQUIRE(std::holds_alternative<HttpResponse>(dispatch));
  return std::get<HttpResponse>(std::move(dispatch));
}

}  // namespace airlock::api::testing
