#include "api/e2b/envd.h"

#include <google/protobuf/util/message_differencer.h>
#include <catch2/catch.hpp>

#include <map>
#include <mutex>

#include "api/e2b/connect.h"
#include "api/e2b/envd/filesystem.pb.h"
#include "api/e2b/envd/process.pb.h"
#include "api/wire/json.h"

using namespace airlock;
using namespace airlock::api;
using namespace airlock::api::e2b;

namespace {

// A workspace whose agent answers from a script (by op) at once, and whose events the test
// emits by hand. Requests are recorded as sent.
class FakeWorkspace : public runner::Workspace {
 public:
  std::map<std::string, std::string> replies;  // op -> the reply's JSON
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
};

HttpRequest rpc(const std::string& path, const std::string& content_type, std::string body) {
  HttpRequest request;
  request.method = "POST";
  request.target = "/e2b/sandbox" + path;
  request.headers = {{"Content-Type", content_type}, {"Connect-Protocol-Version", "1"}};
  request.body = std::move(body);
  return request;
}

HttpRequest json_stream(const std::string& path, const std::string& message) {
  return rpc(path, "application/connect+json", connect::envelope(0, message));
}

// Agent requests are JSON objects whose fields print in no fixed order: compared as values.
bool same_json(const std::string& actual, const std::string& expected) {
  std::string error;
  auto a = json::parse(actual, error);
  auto b = json::parse(expected, error);
  REQUIRE(a);
  REQUIRE(b);
  if (google::protobuf::util::MessageDifferencer::Equals(*a, *b)) return true;
  UNSCOPED_INFO(actual << " differs from " << expected);
  return false;
}

std::string frame(const std::string& message) {
  return connect::envelope(0, message);
}

const std::string kEndOk = std::string("\x02\x00\x00\x00\x02{}", 7);

StreamingResponse streaming(Dispatch dispatch) {
  REQUIRE(std::holds_alternative<StreamingResponse>(dispatch));
  return std::get<StreamingResponse>(std::move(dispatch));
}

HttpResponse plain(Dispatch dispatch) {
  REQUIRE(std::holds_alternative<HttpResponse>(dispatch));
  return std::get<HttpResponse>(std::move(dispatch));
}

const std::string kEntryReply =
    R"({"ok":true,"name":"a.txt","type":"file","path":"/home/user/a.txt","size":12,)"
    R"("mode":420,"permissions":"rw-r--r--","owner":"user","group":"user",)"
    R"("modified_time":1735689600.5,"symlink_target":null})";

}  // namespace

TEST_CASE("Start streams the start, output and end events, then the end of the stream (JSON)") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["process.start"] = R"({"ok":true,"pid":42})";
  auto request = json_stream(
      "/process.Process/Start",
      R"({"process":{"cmd":"/bin/bash","args":["-l","-c","echo hi; exit 3"],"envs":{"E":"1"},)"
      R"("cwd":"/tmp"},"stdin":false})");
  request.headers.emplace_back("Keepalive-Ping-Interval", "30");
  StreamingResponse response = streaming(handle_envd(request, workspace));
  CHECK(response.head.status == 200);
  CHECK(response.head.content_type == "application/connect+json");
  CHECK(response.keepalive == frame(R"({"event":{"keepalive":{}}})"));
  CHECK(response.keepalive_interval == std::chrono::seconds(30));

  auto writer = std::make_shared<FakeWriter>();
  response.start(writer);
  REQUIRE(workspace->requests.size() == 1);
  CHECK(same_json(workspace->requests[0],
                  R"({"args":["-l","-c","echo hi; exit 3"],"cmd":"/bin/bash","cwd":"/tmp",)"
                  R"("envs":{"E":"1"},"op":"process.start","stdin":false})"));
  CHECK(workspace->subscribers("p:42") == 1);
  CHECK(writer->bytes == frame(R"({"event":{"start":{"pid":42}}})"));

  workspace->emit("p:42", R"({"type":"data","stream":"stdout","data":"aGkK"})");
  workspace->emit("p:42", R"({"type":"data","stream":"stderr","data":"b29wcw=="})");
  workspace->emit("p:42", R"({"type":"end","exit_code":3,"exited":true,"signal":null,)"
                          R"("status":"exit status 3","error":null})");
  CHECK(writer->bytes ==
        frame(R"({"event":{"start":{"pid":42}}})") +
            frame(R"({"event":{"data":{"stdout":"aGkK"}}})") +
            frame(R"({"event":{"data":{"stderr":"b29wcw=="}}})") +
            frame(R"({"event":{"end":{"exitCode":3,"exited":true,"status":"exit status 3",)"
                  R"("error":"exit status 3"}}})") +
            kEndOk);
  CHECK(writer->ended);
  workspace->emit("p:42", R"({"type":"data","stream":"stdout","data":"aGkK"})");
  CHECK(writer->bytes.size() > 0);  // nothing after the end: the writer refuses, nothing throws
}

TEST_CASE("Start streams binary envelopes with connect+proto") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["process.start"] = R"({"ok":true,"pid":42})";
  // StartRequest{process{cmd:"/bin/true"}}, by hand.
  const std::string body = std::string("\x0a\x0b\x0a\x09/bin/true", 13);
  StreamingResponse response = streaming(handle_envd(
      rpc("/process.Process/Start", "application/connect+proto", connect::envelope(0, body)),
      workspace));
  CHECK(response.head.content_type == "application/connect+proto");
  // StartResponse{event{keepalive{}}}: 0a 02 22 00.
  CHECK(response.keepalive == std::string("\x00\x00\x00\x00\x04\x0a\x02\x22\x00", 9));
  auto writer = std::make_shared<FakeWriter>();
  response.start(writer);
  CHECK(same_json(workspace->requests.at(0),
                  R"({"args":[],"cmd":"/bin/true","envs":{},"op":"process.start","stdin":true})"));
  workspace->emit("p:42", R"({"type":"data","stream":"stdout","data":"aGkK"})");
  workspace->emit("p:42", R"({"type":"end","exit_code":0,"exited":true,"status":"exit status 0"})");
  const std::string start("\x00\x00\x00\x00\x06\x0a\x04\x0a\x02\x08\x2a", 11);
  const std::string data("\x00\x00\x00\x00\x09\x0a\x07\x12\x05\x0a\x03hi\n", 14);
  // EndEvent{exit_code:0 (left out), exited:true, status:"exit status 0"}.
  const std::string end =
      std::string("\x00\x00\x00\x00\x15\x0a\x13\x1a\x11\x10\x01\x1a\x0d", 13) + "exit status 0";
  CHECK(writer->bytes == start + data + end + kEndOk);
  CHECK(writer->ended);
}

TEST_CASE("a start the agent refuses ends the stream with its Connect error") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["process.start"] =
      R"({"ok":false,"error":{"code":"not_found","message":"/bin/nope: not found"}})";
  StreamingResponse response = streaming(handle_envd(
      json_stream("/process.Process/Start", R"({"process":{"cmd":"/bin/nope"}})"), workspace));
  auto writer = std::make_shared<FakeWriter>();
  response.start(writer);
  CHECK(writer->bytes ==
        connect::end_of_stream(connect::Error{"not_found", "/bin/nope: not found"}));
  CHECK(writer->ended);
  CHECK(workspace->subscribers("p:42") == 0);
}

TEST_CASE("when the client goes away the subscription is dropped and the process runs on") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["process.start"] = R"({"ok":true,"pid":42})";
  StreamingResponse response = streaming(handle_envd(
      json_stream("/process.Process/Start", R"({"process":{"cmd":"/bin/sleep"}})"), workspace));
  auto writer = std::make_shared<FakeWriter>();
  response.start(writer);
  REQUIRE(workspace->subscribers("p:42") == 1);
  response.on_client_gone();
  CHECK(workspace->subscribers("p:42") == 0);
  CHECK(workspace->requests.size() == 1);  // no signal: E2B leaves the process running
  const size_t written = writer->bytes.size();
  workspace->emit("p:42", R"({"type":"data","stream":"stdout","data":"aGkK"})");
  CHECK(writer->bytes.size() == written);
}

TEST_CASE("Connect follows a process named by its tag") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["process.find"] = R"({"ok":true,"pid":7})";
  StreamingResponse response = streaming(handle_envd(
      json_stream("/process.Process/Connect", R"({"process":{"tag":"server"}})"), workspace));
  auto writer = std::make_shared<FakeWriter>();
  response.start(writer);
  CHECK(same_json(workspace->requests.at(0), R"({"op":"process.find","tag":"server"})"));
  CHECK(workspace->subscribers("p:7") == 1);
  workspace->emit("p:7", R"({"type":"end","exit_code":-1,"exited":false,"signal":9,)"
                         R"("status":"signal: killed","error":null})");
  CHECK(writer->bytes == frame(R"({"event":{"start":{"pid":7}}})") +
                             frame(R"({"event":{"end":{"exitCode":-1,"status":"signal: killed",)"
                                   R"("error":"signal: killed"}}})") +
                             kEndOk);
}

TEST_CASE("Connect to a pid that is not running ends with not_found") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["process.list"] = R"({"ok":true,"processes":[{"pid":5,"cmd":"x"}]})";
  StreamingResponse response = streaming(
      handle_envd(json_stream("/process.Process/Connect", R"({"process":{"pid":6}})"), workspace));
  auto writer = std::make_shared<FakeWriter>();
  response.start(writer);
  CHECK(writer->bytes ==
        connect::end_of_stream(connect::Error{"not_found", "no running process with pid 6"}));
  response = streaming(
      handle_envd(json_stream("/process.Process/Connect", R"({"process":{"pid":5}})"), workspace));
  writer = std::make_shared<FakeWriter>();
  response.start(writer);
  CHECK(writer->bytes == frame(R"({"event":{"start":{"pid":5}}})"));
  CHECK(workspace->subscribers("p:5") == 1);
}

TEST_CASE("List answers the running processes in JSON and in binary") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["process.list"] =
      R"({"ok":true,"processes":[{"pid":12,"cmd":"/bin/bash","args":["-c","sleep 9"],)"
      R"("envs":{"A":"b"},"cwd":"/home/user","tag":null}]})";
  HttpResponse response =
      plain(handle_envd(rpc("/process.Process/List", "application/json", "{}"), workspace));
  CHECK(response.status == 200);
  CHECK(response.content_type == "application/json");
  CHECK(response.body ==
        R"({"processes":[{"config":{"cmd":"/bin/bash","args":["-c","sleep 9"],"envs":{"A":"b"},)"
        R"("cwd":"/home/user"},"pid":12}]})");

  response = plain(handle_envd(rpc("/process.Process/List", "application/proto", ""), workspace));
  CHECK(response.content_type == "application/proto");
  process::ListResponse list;
  REQUIRE(list.ParseFromString(response.body));
  REQUIRE(list.processes_size() == 1);
  CHECK(list.processes(0).pid() == 12);
  CHECK(list.processes(0).config().args(1) == "sleep 9");
  CHECK_FALSE(list.processes(0).has_tag());
}

TEST_CASE("Stat answers envd's EntryInfo in JSON and in binary") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["fs.stat"] = kEntryReply;
  HttpResponse response = plain(handle_envd(
      rpc("/filesystem.Filesystem/Stat", "application/json", R"({"path":"a.txt"})"), workspace));
  CHECK(same_json(workspace->requests.at(0), R"({"op":"fs.stat","path":"a.txt"})"));
  CHECK(response.status == 200);
  CHECK(response.body ==
        R"({"entry":{"name":"a.txt","type":"FILE_TYPE_FILE","path":"/home/user/a.txt",)"
        R"("size":"12","mode":420,"permissions":"-rw-r--r--","owner":"user","group":"user",)"
        R"("modifiedTime":"2025-01-01T00:00:00.500Z"}})");

  filesystem::StatRequest stat;
  stat.set_path("a.txt");
  response = plain(
      handle_envd(rpc("/filesystem.Filesystem/Stat", "application/proto", stat.SerializeAsString()),
                  workspace));
  filesystem::StatResponse answer;
  REQUIRE(answer.ParseFromString(response.body));
  CHECK(answer.entry().size() == 12);
  CHECK(answer.entry().type() == filesystem::FILE_TYPE_FILE);
  CHECK(answer.entry().modified_time().seconds() == 1735689600);
}

TEST_CASE("ListDir passes the depth and answers every entry") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["fs.list"] =
      R"({"ok":true,"entries":[{"name":"d","type":"dir","path":"/home/user/d","size":4096,)"
      R"("mode":493,"permissions":"rwxr-xr-x","owner":"user","group":"user",)"
      R"("modified_time":1.0,"symlink_target":null},{"name":"l","type":"symlink",)"
      R"("path":"/home/user/d/l","size":1,"mode":511,"permissions":"rwxrwxrwx","owner":1000,)"
      R"("group":1000,"modified_time":2.0,"symlink_target":"/nowhere"}]})";
  HttpResponse response =
      plain(handle_envd(rpc("/filesystem.Filesystem/ListDir", "application/json",
                            R"({"path":"/home/user","depth":2})"),
                        workspace));
  CHECK(same_json(workspace->requests.at(0), R"({"depth":2,"op":"fs.list","path":"/home/user"})"));
  filesystem::ListDirResponse list;
  REQUIRE(connect::parse_unary_request(response.body, connect::Encoding::json, list) ==
          std::nullopt);
  REQUIRE(list.entries_size() == 2);
  CHECK(list.entries(0).type() == filesystem::FILE_TYPE_DIRECTORY);
  CHECK(list.entries(0).permissions() == "drwxr-xr-x");
  CHECK(list.entries(1).type() == filesystem::FILE_TYPE_SYMLINK);
  CHECK(list.entries(1).owner() == "1000");
  CHECK(list.entries(1).symlink_target() == "/nowhere");
  // depth 0 (left out by the SDK) means 1.
  handle_envd(rpc("/filesystem.Filesystem/ListDir", "application/json", R"({"path":"/"})"),
              workspace);
  CHECK(same_json(workspace->requests.at(1), R"({"depth":1,"op":"fs.list","path":"/"})"));
}

TEST_CASE("agent errors become the same Connect codes and their HTTP statuses") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["fs.stat"] =
      R"({"ok":false,"error":{"code":"not_found","message":"no such file: nope"}})";
  workspace->replies["fs.mkdir"] =
      R"({"ok":false,"error":{"code":"already_exists","message":"exists: d"}})";
  workspace->replies["fs.remove"] = R"({"ok":false,"error":{"code":"ok","message":"odd"}})";
  HttpResponse response = plain(handle_envd(
      rpc("/filesystem.Filesystem/Stat", "application/json", R"({"path":"nope"})"), workspace));
  CHECK(response.status == 404);
  CHECK(response.content_type == "application/json");
  CHECK(response.body == R"({"code":"not_found","message":"no such file: nope"})");
  response = plain(handle_envd(
      rpc("/filesystem.Filesystem/MakeDir", "application/json", R"({"path":"d"})"), workspace));
  CHECK(response.status == 409);
  CHECK(response.body == R"({"code":"already_exists","message":"exists: d"})");
  // A code that is not Connect's is the agent's fault: internal.
  response = plain(handle_envd(
      rpc("/filesystem.Filesystem/Remove", "application/json", R"({"path":"d"})"), workspace));
  CHECK(response.status == 500);
  CHECK(response.body == R"({"code":"internal","message":"odd"})");
}

TEST_CASE("a malformed body is invalid_argument, unary or streaming") {
  auto workspace = std::make_shared<FakeWorkspace>();
  HttpResponse response = plain(
      handle_envd(rpc("/filesystem.Filesystem/Stat", "application/json", "{\"path\":"), workspace));
  CHECK(response.status == 400);
  CHECK(response.body.find(R"("code":"invalid_argument")") != std::string::npos);
  response = plain(handle_envd(
      rpc("/process.Process/Start", "application/connect+json", R"({"process":{}})"), workspace));
  CHECK(response.status == 200);
  CHECK(response.content_type == "application/connect+json");
  CHECK(response.body.substr(0, 1) == "\x02");
  CHECK(response.body.find(R"("code":"invalid_argument")") != std::string::npos);
  CHECK(workspace->requests.empty());
}

TEST_CASE("unknown methods and services answer 404 unimplemented") {
  auto workspace = std::make_shared<FakeWorkspace>();
  for (const std::string path : {"/process.Process/Fly", "/other.Service/Stat", "/nothing"}) {
    HttpResponse response = plain(handle_envd(rpc(path, "application/json", "{}"), workspace));
    CHECK(response.status == 404);
    CHECK(response.body.find(R"("code":"unimplemented")") != std::string::npos);
  }
  HttpResponse response =
      plain(handle_envd(rpc("/process.Process/Update", "application/json", "{}"), workspace));
  CHECK(response.status == 501);
  response = plain(handle_envd(rpc("/process.Process/List", "text/plain", "{}"), workspace));
  CHECK(response.status == 415);
}

TEST_CASE("SendSignal and SendInput reach the agent, a tag looked up first") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["process.signal"] = R"({"ok":true})";
  workspace->replies["process.input"] = R"({"ok":true})";
  workspace->replies["process.find"] = R"({"ok":true,"pid":9})";
  HttpResponse response =
      plain(handle_envd(rpc("/process.Process/SendSignal", "application/json",
                            R"({"process":{"pid":5},"signal":"SIGNAL_SIGKILL"})"),
                        workspace));
  CHECK(response.status == 200);
  CHECK(response.body == "{}");
  CHECK(same_json(workspace->requests.back(), R"({"op":"process.signal","pid":5,"signal":9})"));
  response = plain(handle_envd(rpc("/process.Process/SendInput", "application/json",
                                   R"({"process":{"tag":"t"},"input":{"stdin":"aGkK"}})"),
                               workspace));
  CHECK(response.status == 200);
  CHECK(same_json(workspace->requests.back(), R"({"data":"aGkK","op":"process.input","pid":9})"));
}

TEST_CASE("WatchDir starts with a start message and streams the watch's events") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["fs.watch_start"] = R"({"ok":true,"watch_id":"w1"})";
  workspace->replies["fs.watch_stop"] = R"({"ok":true})";
  StreamingResponse response = streaming(handle_envd(
      json_stream("/filesystem.Filesystem/WatchDir", R"({"path":"/home/user","recursive":true})"),
      workspace));
  CHECK(response.keepalive == frame(R"({"keepalive":{}})"));
  auto writer = std::make_shared<FakeWriter>();
  response.start(writer);
  CHECK(same_json(workspace->requests.at(0),
                  R"({"op":"fs.watch_start","path":"/home/user","recursive":true})"));
  workspace->emit("w:w1", R"({"type":"write","name":"a.txt"})");
  CHECK(writer->bytes == frame(R"({"start":{}})") +
                             frame(R"({"filesystem":{"name":"a.txt","type":"EVENT_TYPE_WRITE"}})"));
  response.on_client_gone();
  CHECK(workspace->subscribers("w:w1") == 0);
  CHECK(same_json(workspace->requests.back(), R"({"op":"fs.watch_stop","watch_id":"w1"})"));
}

TEST_CASE("a polling watcher buffers events until fetched, and a bounded number of them") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["fs.watch_start"] = R"({"ok":true,"watch_id":"w7"})";
  workspace->replies["fs.watch_stop"] = R"({"ok":true})";
  HttpResponse response = plain(handle_envd(
      rpc("/filesystem.Filesystem/CreateWatcher", "application/json", R"({"path":"/tmp"})"),
      workspace));
  REQUIRE(response.status == 200);
  CHECK(response.body == R"({"watcherId":"w7"})");
  workspace->emit("w:w7", R"({"type":"create","name":"x"})");
  workspace->emit("w:w7", R"({"type":"remove","name":"x"})");
  const auto get =
      rpc("/filesystem.Filesystem/GetWatcherEvents", "application/json", R"({"watcherId":"w7"})");
  response = plain(handle_envd(get, workspace));
  CHECK(response.body == R"({"events":[{"name":"x","type":"EVENT_TYPE_CREATE"},)"
                         R"({"name":"x","type":"EVENT_TYPE_REMOVE"}]})");
  response = plain(handle_envd(get, workspace));
  CHECK(response.body == "{}");

  for (int i = 0; i < 2000; ++i) workspace->emit("w:w7", R"({"type":"write","name":"y"})");
  response = plain(handle_envd(get, workspace));
  CHECK(response.status == 429);
  CHECK(workspace->subscribers("w:w7") == 0);
  response = plain(handle_envd(get, workspace));
  CHECK(response.status == 404);
}

TEST_CASE("RemoveWatcher unsubscribes and stops the agent's watch") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["fs.watch_start"] = R"({"ok":true,"watch_id":"w8"})";
  workspace->replies["fs.watch_stop"] = R"({"ok":true})";
  plain(handle_envd(
      rpc("/filesystem.Filesystem/CreateWatcher", "application/json", R"({"path":"/tmp"})"),
      workspace));
  REQUIRE(workspace->subscribers("w:w8") == 1);
  HttpResponse response = plain(handle_envd(
      rpc("/filesystem.Filesystem/RemoveWatcher", "application/json", R"({"watcherId":"w8"})"),
      workspace));
  CHECK(response.status == 200);
  CHECK(workspace->subscribers("w:w8") == 0);
  CHECK(same_json(workspace->requests.back(), R"({"op":"fs.watch_stop","watch_id":"w8"})"));
}
