// Workspaces in the real sandbox, with a stand-in agent (tests/helpers/fake_envd_agent.py) that
// speaks the agent protocol and misbehaves on request.
#include "runner/workspaces.h"

#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <thread>

#include "runner/agent_channel.h"
#include "sandbox/cgroup.h"
#include "test_env.h"

namespace airlock::runner {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace testing;

// A drivers directory whose envd_agent.py is the stand-in; removed at exit.
struct FakeDrivers {
  fs::path dir;
  FakeDrivers() {
    char name[] = "/tmp/airlock-fake-drivers-XXXXXX";
    dir = ::mkdtemp(name);
    fs::copy_file(AIRLOCK_SOURCE_DIR "/tests/helpers/fake_envd_agent.py", dir / "envd_agent.py");
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
  }
  ~FakeDrivers() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
};

const std::string& fake_drivers() {
  static FakeDrivers drivers;
  static const std::string path = drivers.dir.string();
  return path;
}

WorkspaceSettings settings(size_t max = 4, size_t per_owner = 4) {
  WorkspaceSettings made;
  made.max_workspaces = max;
  made.max_workspaces_per_owner = per_owner;
  made.home_size_bytes = 16 * sandbox::kMiB;
  made.drivers_dir = fake_drivers();
  made.ids = IdMaker("r1");
  made.spares.per_policy = 0;  // the spares' own cases below turn them on
  return made;
}

WorkspaceRequest request(const std::string& owner) {
  WorkspaceRequest made;
  made.policy = policy("default");
  made.owner = owner;
  made.template_id = "base";
  return made;
}

WorkspaceInfo create(WorkspaceManager& manager, const WorkspaceRequest& made) {
  auto created = manager.create(made);
  if (auto* refused = std::get_if<SessionError>(&created)) FAIL(refused->message);
  return std::get<WorkspaceInfo>(created);
}

std::shared_ptr<Workspace> find(WorkspaceManager& manager, const WorkspaceInfo& info) {
  auto found = manager.find(info.id, info.owner);
  REQUIRE(std::holds_alternative<std::shared_ptr<Workspace>>(found));
  return std::get<std::shared_ptr<Workspace>>(found);
}

SessionError refusal(const auto& result) {
  REQUIRE(std::holds_alternative<SessionError>(result));
  return std::get<SessionError>(result);
}

template <typename Done>
bool eventually(Done done) {
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// This process's sandbox working dirs (/run/airlock/<instance>/work-N) and run cgroups
// (<hierarchy>/.../airlock/<instance>/run-N): what a workspace holds on the host.
size_t held_on_host() {
  const std::string prefix =
      sandbox::instance_prefix(::getpid(), sandbox::process_start_ticks(::getpid()));
  size_t count = 0;
  std::error_code error;
  for (const auto& instance : fs::directory_iterator("/run/airlock", error)) {
    if (instance.path().filename().string().rfind(prefix, 0) != 0) continue;
    for (const auto& entry : fs::directory_iterator(instance.path(), error)) {
      if (entry.path().filename().string().rfind("work-", 0) == 0) ++count;
    }
  }
  const bool v2 = fs::exists("/sys/fs/cgroup/cgroup.controllers");
  const fs::path root = v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory";
  for (fs::recursive_directory_iterator
           it(root, fs::directory_options::skip_permission_denied, error),
       end;
       it != end; it.increment(error)) {
    if (error) break;
    const fs::path& path = it->path();
    if (!it->is_directory(error) || path.filename().string().rfind("run-", 0) != 0) continue;
    it.disable_recursion_pending();
    if (path.parent_path().parent_path().filename() == "airlock" &&
        path.parent_path().filename().string().rfind(prefix, 0) == 0) {
      ++count;
    }
  }
  return count;
}

// The value of "key":"..." in a flat JSON reply (the tests' replies hold no escaped quotes there).
std::string field(const std::string& json, const std::string& key) {
  const std::string start = "\"" + key + "\":";
  size_t at = json.find(start);
  if (at == std::string::npos) return {};
  at += start.size();
  if (json[at] == '"') return json.substr(at + 1, json.find('"', at + 1) - at - 1);
  return json.substr(at, json.find_first_of(",}", at) - at);
}

std::string base64_decode(std::string_view text) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    const size_t value = kAlphabet.find(c);
    if (value == std::string::npos) break;
    bits = (bits << 6) | static_cast<uint32_t>(value);
    if ((count += 6) >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xff);
    }
  }
  return out;
}

// What `/bin/sh -c script` run in the workspace wrote on stdout, and its end event (empty when the
// workspace ended first), once it ended.
struct ShellRun {
  std::string output;
  std::string end;
};

ShellRun shell(Workspace& workspace, const std::string& script) {
  std::mutex mutex;
  std::condition_variable changed;
  ShellRun run;
  bool ended = false;
  std::unique_ptr<Workspace::Subscription> subscription;
  std::string quoted;
  for (char c : script) quoted += c == '"' ? std::string("\\\"") : std::string(1, c);
  workspace.call(R"({"op":"process.start","cmd":"/bin/sh","args":["-c",")" + quoted + R"("]})",
                 [&](AgentReply reply) {
                   REQUIRE(reply.delivered);
                   REQUIRE(field(reply.json, "ok") == "true");
                   subscription = workspace.subscribe(
                       "p:" + field(reply.json, "pid"),
                       [&](std::string_view event) {
                         std::lock_guard lock(mutex);
                         const std::string text(event);
                         if (field(text, "type") == "end") {
                           run.end = text;
                           ended = true;
                           changed.notify_all();
                         } else if (field(text, "stream") == "stdout") {
                           run.output += base64_decode(field(text, "data"));
                         }
                       },
                       [&] {
                         std::lock_guard lock(mutex);
                         ended = true;
                         changed.notify_all();
                       });
                 });
  std::unique_lock lock(mutex);
  CHECK(changed.wait_for(lock, 20s, [&] { return ended; }));
  lock.unlock();
  subscription.reset();
  return run;
}

constexpr const char* kRealDrivers = AIRLOCK_SOURCE_DIR "/runner/drivers";

}  // namespace

TEST_CASE("a workspace runs its agent in /home/user with the workspace's environment", "[root]") {
  if (!can_run()) return;
  WorkspaceManager manager(*env().sandbox, env().runtimes, settings());
  WorkspaceRequest made = request("alice");
  made.env = {{"GREETING", "hi \"there\"\n"}, {"_X1", ""}};
  made.metadata = {{"purpose", "test"}};
  made.timeout = 2min;
  const auto before = std::chrono::system_clock::now();
  const WorkspaceInfo info = create(manager, made);
  CHECK(info.id.starts_with("sb_r1_"));
  CHECK(info.owner == "alice");
  CHECK(info.template_id == "base");
  CHECK(info.metadata == made.metadata);
  CHECK(info.policy_name == "default");
  CHECK(info.access_token.size() == 32);
  CHECK(info.memory_bytes == made.policy->limits.memory_max_bytes);
  CHECK(info.disk_bytes == 16 * sandbox::kMiB);
  CHECK(info.cpu_count >= 1);
  CHECK(info.started_at >= before - 1s);
  CHECK(info.ends_at > before + 1min);
  CHECK(info.ends_at <= std::chrono::system_clock::now() + 2min);

  auto workspace = find(manager, info);
  CHECK(workspace->id() == info.id);
  CHECK(workspace->alive());
  const AgentReply echoed = workspace->call_and_wait(R"({"op":"echo","n":7})", 10s);
  REQUIRE(echoed.delivered);
  CHECK(echoed.json == R"({"ok":true,"echo":{"op":"echo","n":7}})");

  const AgentReply env_reply = workspace->call_and_wait(R"({"op":"env"})", 10s);
  REQUIRE(env_reply.delivered);
  CHECK(field(env_reply.json, "cwd") == "/home/user");
  CHECK(field(env_reply.json, "HOME") == "/home/user");
  CHECK(field(env_reply.json, "USER") == "user");
  CHECK(field(env_reply.json, "uid") != "0");
  // AIRLOCK_ENVS is a JSON object; the stand-in shows it as a JSON string, escaped once more.
  CHECK(env_reply.json.find(R"(\"GREETING\":\"hi \\\"there\\\"\\n\")") != std::string::npos);
  CHECK(env_reply.json.find(R"(\"_X1\":\"\")") != std::string::npos);
  CHECK(manager.list("alice").size() == 1);
  CHECK(manager.list("bob").empty());
  CHECK_FALSE(manager.info(info.id, "bob"));
  REQUIRE(manager.info(info.id, "alice"));
  CHECK(manager.info(info.id, "alice")->access_token == info.access_token);
}

TEST_CASE("a process's output reaches a subscriber made in the reply's callback, none missed",
          "[root]") {
  if (!can_run()) return;
  WorkspaceManager manager(*env().sandbox, env().runtimes, settings());
  auto workspace = find(manager, create(manager, request("alice")));
  std::mutex mutex;
  std::condition_variable changed;
  std::string output;
  bool ended = false;
  std::unique_ptr<Workspace::Subscription> subscription;
  workspace->call(R"({"op":"process.start","cmd":"/usr/bin/seq","args":["1","300"]})",
                  [&](AgentReply reply) {
                    REQUIRE(reply.delivered);
                    subscription = workspace->subscribe(
                        "p:" + field(reply.json, "pid"),
                        [&](std::string_view event) {
                          std::lock_guard lock(mutex);
                          const std::string text(event);
                          if (field(text, "type") == "end") {
                            ended = true;
                            changed.notify_all();
                          } else {
                            output += base64_decode(field(text, "data"));
                          }
                        },
                        [] {});
                  });
  std::unique_lock lock(mutex);
  REQUIRE(changed.wait_for(lock, 20s, [&] { return ended; }));
  std::string expected;
  for (int i = 1; i <= 300; ++i) expected += std::to_string(i) + "\n";
  CHECK(output == expected);
}

TEST_CASE("the service's and each owner's caps refuse with their own refusal", "[root]") {
  if (!can_run()) return;
  WorkspaceManager manager(*env().sandbox, env().runtimes, settings(3, 2));
  create(manager, request("alice"));
  create(manager, request("alice"));
  CHECK(refusal(manager.create(request("alice"))).refusal == SessionRefusal::too_many_for_owner);
  create(manager, request("bob"));
  CHECK(refusal(manager.create(request("bob"))).refusal == SessionRefusal::too_many_sessions);
  CHECK(manager.size() == 3);
}

TEST_CASE("what a workspace cannot be made with is refused as invalid, naming the field",
          "[root]") {
  if (!can_run()) return;
  WorkspaceManager manager(*env().sandbox, env().runtimes, settings());
  auto invalid = [&](const WorkspaceRequest& made, const std::string& field_name) {
    const SessionError error = refusal(manager.create(made));
    CHECK(error.refusal == SessionRefusal::invalid);
    CHECK(error.field == field_name);
  };
  WorkspaceRequest made = request("alice");
  made.env = {{"1ABC", "x"}};
  invalid(made, "envVars");
  made.env = {{"A-B", "x"}};
  invalid(made, "envVars");
  made.env = {{"A", std::string("x\0y", 3)}};
  invalid(made, "envVars");
  made.env = {{"A", std::string(70 * 1024, 'x')}};
  invalid(made, "envVars");
  made = request("alice");
  made.timeout = 2h;
  invalid(made, "timeout");
  made.timeout = 0ms;
  invalid(made, "timeout");
  made = request("alice");
  auto no_python = std::make_shared<policies::Policy>(*made.policy);
  no_python->runtimes = {"bash"};
  made.policy = no_python;
  invalid(made, "policy");
  CHECK(manager.size() == 0);
}

TEST_CASE("set_timeout extends a workspace; at expiry it is killed and leaves nothing", "[root]") {
  if (!can_run()) return;
  const size_t before = held_on_host();
  WorkspaceManager manager(*env().sandbox, env().runtimes, settings());
  WorkspaceRequest made = request("alice");
  made.timeout = 400ms;
  const WorkspaceInfo info = create(manager, made);
  CHECK(held_on_host() == before + 2);  // its home and its cgroup
  const auto not_bobs = manager.set_timeout(info.id, "bob", 1h);
  REQUIRE(not_bobs);
  CHECK(not_bobs->refusal == SessionRefusal::not_found);
  CHECK_FALSE(manager.set_timeout(info.id, "alice", 1h));
  REQUIRE(manager.info(info.id, "alice"));
  CHECK(manager.info(info.id, "alice")->ends_at > std::chrono::system_clock::now() + 50min);
  std::this_thread::sleep_for(800ms);
  CHECK(manager.size() == 1);

  auto workspace = find(manager, info);
  bool ended = false;
  auto subscription = workspace->subscribe(
      "p:1", [](std::string_view) {}, [&] { ended = true; });
  workspace.reset();
  CHECK_FALSE(manager.set_timeout(info.id, "alice", 100ms));
  CHECK(eventually([&] { return manager.size() == 0; }));
  CHECK(eventually([&] { return ended; }));
  CHECK(refusal(manager.find(info.id, "alice")).refusal == SessionRefusal::not_found);
  CHECK(eventually([&] { return held_on_host() == before; }));
}

TEST_CASE("kill ends a workspace at once: waiting calls fail, and nothing is left", "[root]") {
  if (!can_run()) return;
  const size_t before = held_on_host();
  WorkspaceManager manager(*env().sandbox, env().runtimes, settings());
  const WorkspaceInfo info = create(manager, request("alice"));
  auto workspace = find(manager, info);
  std::mutex mutex;
  std::optional<AgentReply> hung;
  workspace->call(R"({"op":"hang"})", [&](AgentReply reply) {
    std::lock_guard lock(mutex);
    hung = std::move(reply);
  });
  CHECK_FALSE(manager.kill(info.id, "bob"));
  CHECK(manager.kill(info.id, "alice"));
  CHECK_FALSE(workspace->alive());
  CHECK(manager.list("alice").empty());
  CHECK(eventually([&] {
    std::lock_guard lock(mutex);
    return hung.has_value();
  }));
  CHECK_FALSE(hung->delivered);
  const AgentReply late = workspace->call_and_wait(R"({"op":"echo"})", 10s);
  CHECK_FALSE(late.delivered);
  workspace.reset();  // the last holder: the sandbox and its home go with it
  CHECK(held_on_host() == before);
}

TEST_CASE("a workspace whose last holder lets go in its own callback is still cleaned up",
          "[root]") {
  if (!can_run()) return;
  const size_t before = held_on_host();
  WorkspaceManager manager(*env().sandbox, env().runtimes, settings());
  const WorkspaceInfo info = create(manager, request("alice"));
  auto held = find(manager, info);
  std::atomic<bool> dropped{false};
  // on_end runs on the sandbox's thread, which cannot wait for its own sandbox to end.
  auto subscription = held->subscribe(
      "p:1", [](std::string_view) {},
      [&] {
        held.reset();
        dropped = true;
      });
  CHECK(manager.kill(info.id, "alice"));
  CHECK(eventually([&] { return dropped.load(); }));
  CHECK(eventually([&] { return held_on_host() == before; }));
}

TEST_CASE("an agent that dies ends its workspace: calls fail, subscriptions end, it is removed",
          "[root]") {
  if (!can_run()) return;
  const size_t before = held_on_host();
  WorkspaceManager manager(*env().sandbox, env().runtimes, settings());
  const WorkspaceInfo info = create(manager, request("alice"));
  auto workspace = find(manager, info);
  std::atomic<bool> hung_failed{false}, ended{false};
  workspace->call(R"({"op":"hang"})", [&](AgentReply reply) { hung_failed = !reply.delivered; });
  auto subscription = workspace->subscribe(
      "p:9", [](std::string_view) {}, [&] { ended = true; });
  const AgentReply died = workspace->call_and_wait(R"({"op":"die"})", 20s);
  CHECK_FALSE(died.delivered);
  CHECK(died.error == "the workspace ended");
  CHECK(hung_failed);  // failed before the later call
  CHECK(eventually([&] { return ended.load(); }));
  CHECK_FALSE(workspace->alive());
  CHECK(eventually([&] { return manager.size() == 0; }));
  CHECK(manager.list("alice").empty());
  workspace.reset();
  CHECK(eventually([&] { return held_on_host() == before; }));
}

TEST_CASE("an agent that writes garbage ends only its own workspace", "[root]") {
  if (!can_run()) return;
  WorkspaceManager manager(*env().sandbox, env().runtimes, settings());
  auto bad = find(manager, create(manager, request("alice")));
  auto good = find(manager, create(manager, request("alice")));
  bad->call_and_wait(R"({"op":"garbage","n":40})", 20s);
  CHECK(eventually([&] { return !bad->alive(); }));
  CHECK(eventually([&] { return manager.size() == 1; }));
  CHECK(good->call_and_wait(R"({"op":"echo"})", 10s).delivered);
}

TEST_CASE("an agent that never says ready, or ends, fails the create, and its place is freed",
          "[root]") {
  if (!can_run()) return;
  const size_t before = held_on_host();
  WorkspaceRequest made = request("alice");
  {
    WorkspaceSettings quick = settings(1, 1);
    quick.agent_start_timeout = 300ms;
    WorkspaceManager manager(*env().sandbox, env().runtimes, quick);
    made.env = {{"FAKE_NO_READY", "1"}};
    for (int attempt = 0; attempt < 2; ++attempt) {  // the second: the first freed its place
      const SessionError error = refusal(manager.create(made));
      CHECK(error.refusal == SessionRefusal::setup_failed);
      CHECK(error.message.find("did not start") != std::string::npos);
      CHECK(held_on_host() == before);
    }
  }

  // An agent that starts at all may take seconds to (in an emulated VM): the default wait.
  WorkspaceManager manager(*env().sandbox, env().runtimes, settings(1, 1));
  made.env = {{"FAKE_EXIT", "1"}};
  const SessionError ended = refusal(manager.create(made));
  CHECK(ended.refusal == SessionRefusal::setup_failed);
  CHECK(ended.message.find("ended as it started") != std::string::npos);
  CHECK(ended.message.find("told to exit") != std::string::npos);
  CHECK(held_on_host() == before);
  create(manager, request("alice"));
}

TEST_CASE("sandbox traffic finds a workspace by its access token only", "[root]") {
  if (!can_run()) return;
  WorkspaceManager manager(*env().sandbox, env().runtimes, settings());
  const WorkspaceInfo info = create(manager, request("alice"));
  CHECK(std::holds_alternative<std::shared_ptr<Workspace>>(
      manager.find_by_token(info.id, info.access_token)));
  std::string wrong = info.access_token;
  wrong[0] = wrong[0] == 'a' ? 'b' : 'a';
  CHECK(refusal(manager.find_by_token(info.id, wrong)).refusal == SessionRefusal::not_found);
  CHECK(refusal(manager.find_by_token(info.id, "")).refusal == SessionRefusal::not_found);
  CHECK(refusal(manager.find_by_token(IdMaker("r1").make("sb"), info.access_token)).refusal ==
        SessionRefusal::lost);  // another incarnation of replica r1
  // The head-time check (on an I/O thread) agrees, and keeps no reference to the workspace.
  CHECK(manager.token_matches(info.id, info.access_token));
  CHECK_FALSE(manager.token_matches(info.id, wrong));
  CHECK_FALSE(manager.token_matches(info.id, ""));
  CHECK_FALSE(manager.token_matches(IdMaker("r1").make("sb"), info.access_token));
  CHECK(manager.kill(info.id, "alice"));
  CHECK_FALSE(manager.token_matches(info.id, info.access_token));
}

TEST_CASE("a workspace's files are in /home/user and no other workspace sees them", "[root]") {
  if (!can_run()) return;
  WorkspaceManager manager(*env().sandbox, env().runtimes, settings());
  auto first = find(manager, create(manager, request("alice")));
  auto second = find(manager, create(manager, request("alice")));
  REQUIRE(
      first->call_and_wait(R"({"op":"write","path":"notes.txt","text":"secret"})", 10s).delivered);
  const AgentReply own =
      first->call_and_wait(R"({"op":"read","path":"/home/user/notes.txt"})", 10s);
  CHECK(field(own.json, "text") == "secret");
  const AgentReply other =
      second->call_and_wait(R"({"op":"read","path":"/home/user/notes.txt"})", 10s);
  CHECK(field(other.json, "ok") == "false");
}

TEST_CASE("a drain kills every workspace and takes no new ones", "[root]") {
  if (!can_run()) return;
  WorkspaceManager manager(*env().sandbox, env().runtimes, settings());
  const WorkspaceInfo info = create(manager, request("alice"));
  manager.drain();
  CHECK(manager.size() == 0);
  CHECK(refusal(manager.find(info.id, "alice")).refusal == SessionRefusal::lost);
  CHECK(refusal(manager.create(request("alice"))).refusal == SessionRefusal::shutting_down);
}

TEST_CASE("the real agent starts, runs a process and answers file operations", "[root]") {
  if (!can_run()) return;
  constexpr const char* kDrivers = kRealDrivers;
  if (!fs::exists(fs::path(kDrivers) / "envd_agent.py")) {
    WARN("skipped: runner/drivers/envd_agent.py is not in this tree");
    return;
  }
  const size_t before = held_on_host();
  WorkspaceSettings real = settings();
  real.drivers_dir = kDrivers;
  WorkspaceManager manager(*env().sandbox, env().runtimes, real);
  WorkspaceRequest made = request("alice");
  made.env = {{"GREETING", "hello"}};
  const WorkspaceInfo info = create(manager, made);
  auto workspace = find(manager, info);

  const ShellRun run = shell(*workspace, "echo $GREETING; pwd; exit 3");
  REQUIRE_FALSE(run.end.empty());
  CHECK(run.output == "hello\n/home/user\n");
  CHECK(field(run.end, "exit_code") == "3");

  const AgentReply written = workspace->call_and_wait(
      R"({"op":"fs.write","path":"a/b.txt","data":"aGk=","truncate":true})", 10s);
  REQUIRE(written.delivered);
  CHECK(field(written.json, "path") == "/home/user/a/b.txt");
  const AgentReply read = workspace->call_and_wait(
      R"({"op":"fs.read","path":"~/a/b.txt","offset":0,"length":10})", 10s);
  CHECK(base64_decode(field(read.json, "data")) == "hi");

  CHECK(manager.kill(info.id, "alice"));
  workspace.reset();
  CHECK(held_on_host() == before);
}

TEST_CASE("an agent stopped by code inside gets a bounded queue of requests, then busy refusals",
          "[root]") {
  if (!can_run()) return;
  WorkspaceSettings real = settings();
  real.drivers_dir = kRealDrivers;
  WorkspaceManager manager(*env().sandbox, env().runtimes, real);
  const WorkspaceInfo info = create(manager, request("mallory"));
  auto workspace = find(manager, info);
  CHECK(workspace->owner() == "mallory");  // what the E2B adapters' per-key caps count by
  // The command's parent is the agent; it is stopped once the command has ended.
  const ShellRun run = shell(*workspace, "(sleep 0.3; kill -STOP $PPID) >/dev/null 2>&1 &");
  REQUIRE_FALSE(run.end.empty());
  CHECK(eventually([&] {
    return !workspace->call_and_wait(R"({"op":"fs.stat","path":"."})", 100ms).delivered;
  }));

  // 1 MiB requests: the pipe and the agent's buffer take a little, the queue at most its cap.
  const std::string data(1 << 20, 'A');
  const std::string line =
      R"({"op":"fs.write","path":"big","data":")" + data + R"(","truncate":true})";
  // Shared: the calls still queued are answered (undelivered) when the workspace ends.
  auto busy = std::make_shared<std::atomic<bool>>(false);
  size_t sent = 0;
  for (; sent < 64 && !*busy; ++sent) {
    workspace->call(line, [busy](AgentReply reply) {
      if (reply.busy) *busy = true;
    });
  }
  CHECK(*busy);
  CHECK(sent <= AgentChannelLimits().max_queued_bytes / data.size() + 4);
  const AgentReply refused = workspace->call_and_wait(line, 1h);
  CHECK(refused.busy);
  CHECK(refused.error.find("not reading its requests") != std::string::npos);
  CHECK(manager.kill(info.id, "mallory"));
}

TEST_CASE("a spare is made after the first create and handed to the next, with its envs",
          "[root]") {
  if (!can_run()) return;
  const size_t before = held_on_host();
  {
    WorkspaceSettings spared = settings();
    spared.drivers_dir = kRealDrivers;
    spared.spares.per_policy = 1;
    WorkspaceManager manager(*env().sandbox, env().runtimes, spared);
    CHECK(manager.spares_ready() == 0);  // none before a policy is asked for
    const WorkspaceInfo first = create(manager, request("alice"));
    REQUIRE(eventually([&] { return manager.spares_ready() == 1; }));

    WorkspaceRequest made = request("bob");
    made.env = {{"GREETING", "handed over"}};
    const WorkspaceInfo second = create(manager, made);
    CHECK(manager.spares_ready() == 0);  // taken: the next one is on its way
    CHECK(second.owner == "bob");
    auto workspace = find(manager, second);
    CHECK(shell(*workspace, "echo $GREETING; whoami; ls -A /home/user | wc -l").output ==
          "handed over\nuser\n0\n");
    // The spare's kernel, running since before the hand-over, got the envs too.
    const AgentReply run = workspace->call_and_wait(
        R"json({"op":"code.run","run_id":"r1","context_id":null,"language":"python",)json"
        R"json("code":"import os\nopen('g', 'w').write(os.environ['GREETING'])"})json",
        10s);
    CHECK(field(run.json, "ok") == "true");
    CHECK(eventually([&] { return shell(*workspace, "cat g 2>/dev/null").output == "handed over"; }));
    CHECK(shell(*find(manager, first), "echo ${GREETING:-unset}").output == "unset\n");
    REQUIRE(eventually([&] { return manager.spares_ready() == 1; }));
    CHECK(manager.kill(second.id, "bob"));
    workspace.reset();
  }  // the manager's end takes its spare with it
  CHECK(held_on_host() == before);
}

TEST_CASE("spares past their age are replaced, and a drain ends them all", "[root]") {
  if (!can_run()) return;
  const size_t before = held_on_host();
  WorkspaceSettings spared = settings();
  spared.spares.per_policy = 1;
  spared.spares.max_age = 300ms;
  WorkspaceManager manager(*env().sandbox, env().runtimes, spared);
  const WorkspaceInfo info = create(manager, request("alice"));
  CHECK(manager.kill(info.id, "alice"));
  // Each spare is replaced a few times over; only one is ever held at once, plus one starting
  // (a workspace holds a working dir and a cgroup).
  std::this_thread::sleep_for(1500ms);
  CHECK(held_on_host() - before <= 4);
  REQUIRE(eventually([&] { return manager.spares_ready() == 1; }));
  manager.drain();
  CHECK(manager.spares_ready() == 0);
  CHECK(held_on_host() == before);
}

TEST_CASE("a policy nobody creates under any more loses its spare", "[root]") {
  if (!can_run()) return;
  const size_t before = held_on_host();
  WorkspaceSettings spared = settings();
  spared.spares.per_policy = 1;
  spared.spares.unused_after = 6s;  // longer than a spare's start, even in an emulated VM
  WorkspaceManager manager(*env().sandbox, env().runtimes, spared);
  const WorkspaceInfo info = create(manager, request("alice"));
  CHECK(manager.kill(info.id, "alice"));
  REQUIRE(eventually([&] { return manager.spares_ready() == 1; }));
  CHECK(eventually([&] { return manager.spares_ready() == 0 && held_on_host() == before; }));
}

TEST_CASE("only the most recently used policies keep spares", "[root]") {
  if (!can_run()) return;
  const size_t before = held_on_host();
  WorkspaceSettings spared = settings();
  spared.spares.per_policy = 1;
  spared.spares.max_policies = 1;
  WorkspaceManager manager(*env().sandbox, env().runtimes, spared);
  const WorkspaceInfo first = create(manager, request("alice"));
  REQUIRE(eventually([&] { return manager.spares_ready() == 1; }));
  WorkspaceRequest other = request("alice");
  other.policy = policy("python");
  const WorkspaceInfo second = create(manager, other);  // default's spare is retired
  const bool settled = eventually([&] { return manager.spares_ready() == 1 && held_on_host() - before == 6; });
  INFO("spares " << manager.spares_ready() << ", held " << held_on_host() - before);
  REQUIRE(settled);
  CHECK(manager.kill(first.id, "alice"));
  CHECK(manager.kill(second.id, "alice"));
  manager.drain();
  CHECK(held_on_host() == before);
}

}  // namespace airlock::runner
