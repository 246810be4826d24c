// A workspace whose agent follows a script, and a writer that collects a stream, for testing
// api/e2b/ as the transport and the runner drive it, without a sandbox.
#pragma once

#include <google/protobuf/util/message_differencer.h>
#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <memory>
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
  std::map<std::string, std::string> replies;            // op -> the reply's JSON, or kNoReply
  std::vector<std::string> requests;

  const std::string& id() const override { return id_; }
  void call(std::string request_json, std::function<void(runner::AgentReply)> on_reply) override {
    on_reply(reply_to(std::move(request_json)));
  }
  runner::AgentReply call_and_wait(std::string request_json, std::chrono::milliseconds) override {
    return reply_to(std::move(request_json));
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
    auto reply = replies.find(op);
    if (reply == replies.end()) {
      return {true, R"({"ok":false,"error":{"code":"internal","message":"unscripted"}})", ""};
    }
    if (reply->second == kNoReply) return {false, "", "no reply in time"};
    return {true, reply->second, ""};
  }

  std::string id_ = "sb_test";
  int next_subscription_ = 0;
  std::map<int, Subscriber> subscribers_;
};

// Collects what a stream writes.
class FakeWriter : public ByteStreamWriter {
 public:
  std::string bytes;
  bool ended = false;
  bool write(std::string more) override {
    if (ended) return false;
    bytes += more;
    return true;
  }
  void end() override { ended = true; }
  bool closed() const override { return ended; }
  size_t pending_bytes() const override { return 0; }  // every write lands at once
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
