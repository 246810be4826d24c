#include "api/e2b/sandbox_slots.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <thread>
#include <vector>

#include "api/e2b/envd.h"
#include "api/e2b/files.h"
#include "e2b_fakes.h"

using namespace airlock;
using namespace airlock::api;
using namespace airlock::api::e2b;
using namespace airlock::api::testing;

namespace {

HttpRequest stat_request() {
  return rpc("/filesystem.Filesystem/Stat", "application/json", R"({"path":"a.txt"})");
}

std::shared_ptr<FakeWorkspace> answering(const std::string& id, const std::string& owner) {
  auto workspace = std::make_shared<FakeWorkspace>(id, owner);
  workspace->replies["fs.stat"] = R"({"ok":true,"name":"a.txt","type":"file","path":"/a.txt"})";
  return workspace;
}

// Threads that each send one Stat to a stopped agent and wait with it until it is released.
struct Waiters {
  std::vector<std::thread> threads;
  void add(const std::shared_ptr<FakeWorkspace>& workspace, size_t count) {
    for (size_t i = 0; i < count; ++i) {
      threads.emplace_back([workspace] { (void)handle_envd(stat_request(), workspace); });
    }
  }
  ~Waiters() {
    for (auto& thread : threads) thread.join();
  }
};

}  // namespace

TEST_CASE("a sandbox whose agent does not answer holds a bounded number of handler threads") {
  auto stopped = std::make_shared<FakeWorkspace>("sb_stopped", "mallory");
  stopped->hang = true;
  auto other = answering("sb_other", "alice");
  {
    Waiters waiters;
    waiters.add(stopped, kMaxAgentWaitsPerSandbox);
    stopped->wait_hanging(kMaxAgentWaitsPerSandbox);

    // More requests to it are refused at once, whichever way they reach the agent.
    HttpResponse refused = plain(handle_envd(stat_request(), stopped));
    CHECK(refused.status == 429);
    CHECK(refused.body.find("resource_exhausted") != std::string::npos);
    CHECK(refused.body.find("not answering") != std::string::npos);
    HttpResponse download_refused = plain(download("/home/user/a.txt", stopped));
    CHECK(download_refused.status == 429);
    CHECK(download_refused.body.find("not answering") != std::string::npos);

    // Another tenant's sandbox is served meanwhile.
    CHECK(plain(handle_envd(stat_request(), other)).status == 200);
    stopped->release();
  }
  CHECK(agent_waits().held("sb_stopped") == 0);
}

TEST_CASE("one API key's sandboxes together hold a bounded number of handler threads") {
  // The key's waits, spread over its sandboxes as each sandbox's cap allows.
  std::vector<std::pair<std::shared_ptr<FakeWorkspace>, size_t>> stopped;
  for (size_t left = kMaxAgentWaitsPerOwner; left > 0;) {
    const size_t here = std::min(left, kMaxAgentWaitsPerSandbox);
    auto workspace =
        std::make_shared<FakeWorkspace>("sb_m" + std::to_string(stopped.size()), "mallory");
    workspace->hang = true;
    stopped.emplace_back(workspace, here);
    left -= here;
  }
  {
    Waiters waiters;
    for (auto& [workspace, count] : stopped) waiters.add(workspace, count);
    for (auto& [workspace, count] : stopped) workspace->wait_hanging(count);

    HttpResponse refused = plain(handle_envd(stat_request(), answering("sb_m_new", "mallory")));
    CHECK(refused.status == 429);
    CHECK(refused.body.find("API key") != std::string::npos);
    CHECK(plain(handle_envd(stat_request(), answering("sb_a", "alice"))).status == 200);
    for (auto& [workspace, count] : stopped) workspace->release();
  }
  // Once answered (here: given up on), the key's requests are served again.
  CHECK(plain(handle_envd(stat_request(), answering("sb_m_new", "mallory"))).status == 200);
}

TEST_CASE("a sandbox's open process streams are capped, and a closed one frees its place") {
  auto workspace = std::make_shared<FakeWorkspace>("sb_streams", "mallory");
  workspace->replies["process.start"] = R"({"ok":true,"pid":42})";
  const auto start = [&](const std::shared_ptr<FakeWorkspace>& target) {
    return handle_envd(json_stream("/process.Process/Start", R"({"process":{"cmd":"true"}})"),
                       target);
  };
  std::vector<StreamingResponse> open;
  for (size_t i = 0; i < kMaxStreamsPerSandbox; ++i) open.push_back(streaming(start(workspace)));

  HttpResponse refused = plain(start(workspace));
  CHECK(refused.status == 200);  // a stream's error is its end-of-stream envelope
  CHECK(refused.body.find("resource_exhausted") != std::string::npos);
  CHECK(refused.body.find(std::to_string(kMaxStreamsPerSandbox)) != std::string::npos);
  CHECK(std::holds_alternative<StreamingResponse>(start(answering("sb_else", "alice"))));

  // A stream whose client left gives its place back.
  open.back().on_client_gone();
  open.pop_back();
  CHECK(std::holds_alternative<StreamingResponse>(start(workspace)));
}

TEST_CASE("a request refused because the agent has not read what waits is resource_exhausted") {
  auto workspace = std::make_shared<FakeWorkspace>();
  workspace->replies["fs.stat"] = FakeWorkspace::kBusy;
  HttpResponse refused = plain(handle_envd(stat_request(), workspace));
  CHECK(refused.status == 429);
  CHECK(refused.body.find("resource_exhausted") != std::string::npos);
  CHECK(refused.body.find("not reading") != std::string::npos);
  workspace->replies["fs.read"] = FakeWorkspace::kBusy;
  CHECK(plain(download("/home/user/a.txt", workspace)).status == 429);
}
