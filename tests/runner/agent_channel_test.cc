// The agent's line channel fed by hand: framing, replies, events, subscriptions and the end.
#include "runner/agent_channel.h"

#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

namespace airlock::runner {
namespace {

using sandbox::Stream;

bool feed(AgentChannel& channel, std::string_view data) {
  return channel.on_output(Stream::control_stream, data);
}

// Registers a call whose replies land in `replies`; its id.
uint64_t call(AgentChannel& channel, std::vector<AgentReply>& replies, std::string json = "{}") {
  auto made = channel.begin_call(
      json, [&replies](AgentReply reply) { replies.push_back(std::move(reply)); });
  REQUIRE(made);
  CHECK(made->line == std::to_string(made->id) + " " + json + "\n");
  return made->id;
}

}  // namespace

TEST_CASE("a line split across chunks and many lines in one chunk are each handled once") {
  auto channel = AgentChannel::create();
  std::vector<AgentReply> replies;
  const uint64_t first = call(*channel, replies, R"({"op":"a"})");
  const uint64_t second = call(*channel, replies, R"({"op":"b"})");
  CHECK(second == first + 1);
  std::vector<std::string> events;
  auto subscription = channel->subscribe(
      "p:7", [&](std::string_view event) { events.emplace_back(event); }, [] {});

  const std::string line = "R " + std::to_string(first) + " {\"ok\":true}\n";
  for (char c : line) CHECK(feed(*channel, std::string(1, c)));
  CHECK(feed(*channel, "E p:7 {\"n\":1}\nE p:7 {\"n\":2}\nR " + std::to_string(second) +
                           " {\"ok\":false}\nE p:7 {\"n\":"));
  CHECK(feed(*channel, "3}\n"));

  REQUIRE(replies.size() == 2);
  CHECK(replies[0].delivered);
  CHECK(replies[0].json == R"({"ok":true})");
  CHECK(replies[1].json == R"({"ok":false})");
  CHECK(events == std::vector<std::string>{R"({"n":1})", R"({"n":2})", R"({"n":3})"});
  CHECK(channel->bad_lines() == 0);
}

TEST_CASE("an overlong line is discarded up to its newline and the next line is read") {
  auto channel = AgentChannel::create({.max_line_bytes = 64});
  std::vector<AgentReply> replies;
  const uint64_t id = call(*channel, replies);
  std::vector<std::string> events;
  auto subscription = channel->subscribe(
      "k", [&](std::string_view event) { events.emplace_back(event); }, [] {});
  CHECK(feed(*channel, "E k " + std::string(40, 'a')));
  CHECK(feed(*channel, std::string(40, 'b')));  // over the cap: dropped from here on
  CHECK(feed(*channel, std::string(1000, 'c')));
  CHECK(feed(*channel, "c\nE k {}\nR " + std::to_string(id) + " {}\n"));
  CHECK(events == std::vector<std::string>{"{}"});
  CHECK(replies.size() == 1);
  CHECK(channel->bad_lines() == 1);
  CHECK(channel->diagnostics().find("longer than 64 bytes") != std::string::npos);
}

TEST_CASE("too many bad lines end the run; stray replies are dropped") {
  auto channel = AgentChannel::create({.max_bad_lines = 2});
  CHECK(feed(*channel, "R 99 {}\n"));  // a reply nobody waits for any more
  CHECK(channel->bad_lines() == 0);
  CHECK(feed(*channel, "hello\nR x {}\n"));
  CHECK(channel->bad_lines() == 2);
  CHECK_FALSE(feed(*channel, "E\n"));
}

TEST_CASE(
    "a reply reaches its callback before the events after it, so a subscription made there "
    "misses none") {
  auto channel = AgentChannel::create();
  std::vector<std::string> seen;
  std::unique_ptr<Workspace::Subscription> subscription;
  auto made = channel->begin_call("{}", [&](AgentReply reply) {
    seen.push_back("reply " + reply.json);
    subscription = channel->subscribe(
        "p:5", [&](std::string_view event) { seen.emplace_back(event); },
        [&] { seen.push_back("end"); });
  });
  REQUIRE(made);
  CHECK(feed(*channel,
             "R " + std::to_string(made->id) + " {\"pid\":5}\nE p:5 a\nE p:6 x\nE p:5 b\n"));
  CHECK(seen == std::vector<std::string>{"reply {\"pid\":5}", "a", "b"});
  channel->end("gone");
  CHECK(seen.back() == "end");
}

TEST_CASE("a subscription dropped in its own callback, or elsewhere, gets nothing more") {
  auto channel = AgentChannel::create();
  int first_count = 0, second_count = 0, ends = 0;
  std::unique_ptr<Workspace::Subscription> first;
  first = channel->subscribe(
      "k",
      [&](std::string_view) {
        ++first_count;
        first.reset();  // drops itself mid-delivery
      },
      [&] { ++ends; });
  auto second = channel->subscribe(
      "k", [&](std::string_view) { ++second_count; }, [&] { ++ends; });
  CHECK(feed(*channel, "E k 1\nE k 2\n"));
  CHECK(first_count == 1);
  CHECK(second_count == 2);
  second.reset();
  CHECK(feed(*channel, "E k 3\n"));
  CHECK(second_count == 2);
  channel->end("gone");
  CHECK(ends == 0);  // neither was alive at the end
}

TEST_CASE("a handle dropped on another thread while its event is delivered waits for it") {
  auto channel = AgentChannel::create();
  std::atomic<bool> in_callback{false}, release{false}, after_drop{false};
  std::atomic<int> calls{0};
  auto subscription = channel->subscribe(
      "k",
      [&](std::string_view) {
        ++calls;
        in_callback = true;
        while (!release) std::this_thread::yield();
      },
      [] {});
  std::thread reader([&] { feed(*channel, "E k 1\n"); });
  while (!in_callback) std::this_thread::yield();
  std::thread dropper([&] {
    subscription.reset();
    after_drop = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK_FALSE(after_drop);  // still delivering
  release = true;
  reader.join();
  dropper.join();
  CHECK(after_drop);
  CHECK(feed(*channel, "E k 2\n"));
  CHECK(calls == 1);
}

TEST_CASE(
    "the end fails every waiting call, ends every subscription once, and refuses later "
    "calls at once") {
  auto channel = AgentChannel::create();
  std::vector<AgentReply> replies;
  call(*channel, replies);
  call(*channel, replies);
  int ends = 0;
  auto a = channel->subscribe(
      "p:1", [](std::string_view) {}, [&] { ++ends; });
  auto b = channel->subscribe(
      "p:2", [](std::string_view) {}, [&] { ++ends; });
  CHECK_FALSE(channel->ended());
  channel->on_ended();
  channel->end("again");
  CHECK(channel->ended());
  REQUIRE(replies.size() == 2);
  CHECK_FALSE(replies[0].delivered);
  CHECK(replies[0].error == "the workspace ended");
  CHECK(ends == 2);
  CHECK_FALSE(channel->wait_ready(std::chrono::milliseconds(1)));

  CHECK_FALSE(channel->begin_call("{}", [&](AgentReply reply) { replies.push_back(reply); }));
  CHECK(replies.size() == 3);
  auto late = channel->subscribe(
      "p:3", [](std::string_view) {}, [&] { ++ends; });
  CHECK(ends == 3);
}

TEST_CASE("calls beyond the cap, and requests that are not one line, are refused at once") {
  auto channel = AgentChannel::create({.max_pending = 2});
  std::vector<AgentReply> replies;
  call(*channel, replies);
  const uint64_t second = call(*channel, replies);
  CHECK_FALSE(channel->begin_call("{}", [&](AgentReply reply) { replies.push_back(reply); }));
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].error.find("too many requests in flight") != std::string::npos);
  channel->fail_call(second, "timed out");
  CHECK(replies.size() == 2);
  CHECK(replies[1].error == "timed out");
  CHECK(feed(*channel, "R " + std::to_string(second) + " {}\n"));  // late: dropped
  CHECK(replies.size() == 2);
  CHECK_FALSE(channel->begin_call("{\n}", [&](AgentReply reply) { replies.push_back(reply); }));
  CHECK(replies.size() == 3);
}

TEST_CASE("ready is awaited; the agent's own output keeps only a bounded tail") {
  auto channel = AgentChannel::create({.tail_bytes = 16});
  CHECK_FALSE(channel->wait_ready(std::chrono::milliseconds(1)));
  CHECK(feed(*channel, "E ready {}\n"));
  CHECK(channel->wait_ready(std::chrono::milliseconds(1)));
  for (int i = 0; i < 1000; ++i) {
    CHECK(channel->on_output(Stream::stderr_stream, "0123456789"));
  }
  CHECK(channel->on_output(Stream::stdout_stream, "the end"));
  CHECK(channel->diagnostics() == "123456789the end");
}

}  // namespace airlock::runner
