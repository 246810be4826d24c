#include "api/e2b/envd.h"

#include <catch2/catch.hpp>

#include "api/e2b/envd/filesystem.pb.h"
#include "e2b_fakes.h"

using namespace airlock;
using namespace airlock::api;
using namespace airlock::api::e2b;
using namespace airlock::api::testing;

namespace {

const std::string kEntryReply =
    R"({"ok":true,"name":"a.txt","type":"file","path":"/home/user/a.txt","size":12,)"
    R"("mode":420,"permissions":"rw-r--r--","owner":"user","group":"user",)"
    R"("modified_time":1735689600.5,"symlink_target":null})";

}  // namespace

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
