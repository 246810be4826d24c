#include "api/e2b/envd.h"

#include <catch2/catch.hpp>

#include "api/e2b/envd/process.pb.h"
#include "e2b_fakes.h"

using namespace airlock;
using namespace airlock::api;
using namespace airlock::api::e2b;
using namespace airlock::api::testing;

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

TEST_CASE("Connect-Timeout-Ms bounds a stream and a unary call's wait") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["process.start"] = R"({"ok":true,"pid":42})";
  auto request = json_stream("/process.Process/Start", R"({"process":{"cmd":"/bin/sleep"}})");
  request.headers.emplace_back("Connect-Timeout-Ms", "0");
  StreamingResponse response = streaming(handle_envd(request, workspace));
  auto writer = std::make_shared<FakeWriter>();
  response.start(writer);
  CHECK(writer->bytes == connect::end_of_stream(connect::Error{
                             "deadline_exceeded", "the call's Connect-Timeout-Ms passed"}));
  CHECK(writer->ended);

  workspace->replies["process.list"] = FakeWorkspace::kNoReply;
  HttpResponse answer =
      plain(handle_envd(rpc("/process.Process/List", "application/json", "{}"), workspace));
  CHECK(answer.status == 504);
  CHECK(answer.body.find(R"("code":"deadline_exceeded")") != std::string::npos);
}
