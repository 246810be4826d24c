// The audit log: one valid JSON object per line, for each run and each stopped syscall.
#include "policies/audit_log.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <thread>

#include "test_support.h"

namespace airlock::policies {
namespace {

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

AuditLog::Clock fixed_clock() {
  // 2026-01-02T03:04:05.678Z
  return [] {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(1767323045678));
  };
}

Policy sample_policy() {
  Policy policy;
  policy.name = "default";
  policy.hash = "sha256:abc";
  return policy;
}

}  // namespace

TEST_CASE("a run writes one run line and one line per stopped syscall") {
  testing::TempDir dir;
  auto log = AuditLog::open(dir.path() + "/audit.jsonl", {}, fixed_clock());
  REQUIRE(log.ok());
  sandbox::Outcome outcome;
  outcome.status = sandbox::RunStatus::violation;
  outcome.signal = 31;
  outcome.reason = "socket(AF_INET) denied";
  sandbox::SyscallEvent event;
  event.syscall = "socket";
  event.number = 41;
  event.arch = 0xc000003e;
  event.args = {2, 1, 0, 0, 0, 0};
  event.action = "kill";
  event.origin = "policy \"default\" (network: none)";
  event.detail = "socket(AF_INET, SOCK_STREAM, 0)";
  outcome.violation = event;
  event.action = "errno(EPERM)";
  event.syscall = "mount";
  event.detail = "mount(\"/\")";
  event.origin = "floor (@mount)";
  outcome.blocked.push_back(event);
  outcome.blocked_dropped = 3;
  (*log)->record_run({"run-1", "ci-agent", "python", "", "127.0.0.1:4242"}, sample_policy(),
                     outcome);
  (*log)->flush();

  const auto lines = lines_of(dir.path() + "/audit.jsonl");
  REQUIRE(lines.size() == 3);
  const std::string head =
      R"j({"time":"2026-01-02T03:04:05.678Z","run_id":"run-1","key":"ci-agent","runtime":"python",)j"
      R"j("session_id":null,"client":"127.0.0.1:4242","policy":"default",)j"
      R"j("policy_hash":"sha256:abc",)j";
  CHECK(lines[0] == head + R"j("event":"run","status":"violation","exit_code":-1,"signal":31,)j"
                           R"j("reason":"socket(AF_INET) denied","blocked":1,)j"
                           R"j("blocked_dropped":3})j");
  CHECK(lines[1] == head + R"j("event":"violation","syscall":"socket","number":41,)j"
                           R"j("arch":"0xc000003e","args":["0x2","0x1","0x0","0x0","0x0","0x0"],)j"
                           R"j("detail":"socket(AF_INET, SOCK_STREAM, 0)","action":"kill",)j"
                           R"j("origin":"policy \"default\" (network: none)"})j");
  CHECK(lines[2] == head + R"j("event":"blocked","syscall":"mount","number":41,)j"
                           R"j("arch":"0xc000003e","args":["0x2","0x1","0x0","0x0","0x0","0x0"],)j"
                           R"j("detail":"mount(\"/\")","action":"errno(EPERM)",)j"
                           R"j("origin":"floor (@mount)"})j");
}

TEST_CASE("JSON strings escape quotes, control bytes and invalid UTF-8") {
  CHECK(json_string("a\"b\\c") == R"("a\"b\\c")");
  CHECK(json_string("line\nnext\ttab\r") == R"("line\nnext\ttab\r")");
  CHECK(json_string(std::string("\x00\x1f\x7f", 3)) == R"("\u0000\u001f\u007f")");
  CHECK(json_string("héllo ✓") == "\"héllo ✓\"");
  CHECK(json_string("\xff\xfe") == R"("\ufffd\ufffd")");
  CHECK(json_string("\xc0\xaf") == R"("\ufffd\ufffd")");            // overlong '/'
  CHECK(json_string("\xed\xa0\x80") == R"("\ufffd\ufffd\ufffd")");  // a surrogate
  CHECK(json_string("\xe2\x9c") == R"("\ufffd\ufffd")");            // cut short
}

TEST_CASE("policy errors are logged one per line") {
  testing::TempDir dir;
  auto log = AuditLog::open(dir.path() + "/audit.jsonl", {}, fixed_clock());
  REQUIRE(log.ok());
  (*log)->record_policy_errors({{"p.yaml", 3, 5, "bad \"x\""}});
  (*log)->flush();
  CHECK(lines_of(dir.path() + "/audit.jsonl") ==
        std::vector<std::string>{
            R"j({"time":"2026-01-02T03:04:05.678Z","event":"policy_error","file":"p.yaml",)j"
            R"j("line":3,"column":5,"message":"bad \"x\""})j"});
}

TEST_CASE("lines from many threads never interleave") {
  testing::TempDir dir;
  auto log = AuditLog::open(dir.path() + "/audit.jsonl");
  REQUIRE(log.ok());
  sandbox::Outcome outcome;
  outcome.status = sandbox::RunStatus::ok;
  outcome.reason = std::string(5000, 'x');  // long lines make torn writes likely if unguarded
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        (*log)->record_run({"r" + std::to_string(t), "key", "python", "se_1", "peer"},
                           sample_policy(), outcome);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  (*log)->flush();
  const auto lines = lines_of(dir.path() + "/audit.jsonl");
  CHECK(lines.size() == 200);
  for (const auto& line : lines) {
    CHECK(line.starts_with("{\"time\":"));
    CHECK(line.ends_with("}"));
    CHECK(line.size() > 5000);
  }
}

TEST_CASE("a refused request is one line with its status, client and path") {
  testing::TempDir dir;
  auto log = AuditLog::open(dir.path() + "/audit.jsonl", {}, fixed_clock());
  REQUIRE(log.ok());
  (*log)->record_refusal({401, "unauthorized", "", "10.0.0.9:5151", "POST", "/v1/executions"});
  (*log)->record_refusal({403, "policy_forbidden", "ci", "10.0.0.9:5152", "GET", "/v1/policies/x"});
  (*log)->flush();
  CHECK(lines_of(dir.path() + "/audit.jsonl") ==
        std::vector<std::string>{
            R"j({"time":"2026-01-02T03:04:05.678Z","event":"refused","status":401,)j"
            R"j("code":"unauthorized","key":null,"client":"10.0.0.9:5151","method":"POST",)j"
            R"j("path":"/v1/executions"})j",
            R"j({"time":"2026-01-02T03:04:05.678Z","event":"refused","status":403,)j"
            R"j("code":"policy_forbidden","key":"ci","client":"10.0.0.9:5152","method":"GET",)j"
            R"j("path":"/v1/policies/x"})j"});
}

TEST_CASE("a reload names each changed policy with its old and new hash") {
  testing::TempDir dir;
  auto log = AuditLog::open(dir.path() + "/audit.jsonl", {}, fixed_clock());
  REQUIRE(log.ok());
  (*log)->record_reload({{"default", "sha256:old", "sha256:new"}, {"added", "", "sha256:a"}}, 3, 1);
  (*log)->record_start("1.2.3", {{"default", "", "sha256:new"}});
  (*log)->flush();
  const std::string time = R"j({"time":"2026-01-02T03:04:05.678Z",)j";
  CHECK(lines_of(dir.path() + "/audit.jsonl") ==
        std::vector<std::string>{
            time + R"j("event":"policy_reload","policy":"default","old_hash":"sha256:old",)j"
                   R"j("new_hash":"sha256:new"})j",
            time + R"j("event":"policy_reload","policy":"added","old_hash":null,)j"
                   R"j("new_hash":"sha256:a"})j",
            time + R"j("event":"reload","policies":3,"changed":2,"errors":1})j",
            time + R"j("event":"start","version":"1.2.3","policies":{"default":"sha256:new"}})j"});
}

TEST_CASE("past its size cap the log rotates, keeping the configured number of old files") {
  testing::TempDir dir;
  sandbox::Outcome outcome;
  auto record = [&](AuditLog& log, int i) {
    log.record_run({"run-" + std::to_string(i), "k", "python", "", "c"}, sample_policy(), outcome);
  };
  // Every run line has the same length here; room for two and a half of them.
  uint64_t line_bytes = 0;
  {
    auto probe = AuditLog::open(dir.path() + "/probe.jsonl", {}, fixed_clock());
    REQUIRE(probe.ok());
    record(**probe, 0);
    (*probe)->flush();
    line_bytes = lines_of(dir.path() + "/probe.jsonl").at(0).size() + 1;
  }
  const std::string path = dir.path() + "/audit.jsonl";
  AuditFileOptions options;
  options.max_bytes = line_bytes * 5 / 2;
  options.keep = 2;
  auto log = AuditLog::open(path, options, fixed_clock());
  REQUIRE(log.ok());
  for (int i = 0; i < 9; ++i) record(**log, i);
  (*log)->flush();
  // Two lines a file: run-8 alone in the file, 6-7 and 4-5 rotated, older ones gone.
  CHECK(AuditFile::files_of(path, 2) ==
        std::vector<std::string>{path + ".2", path + ".1", path});
  CHECK(lines_of(path).size() == 1);
  CHECK(lines_of(path)[0].find("\"run-8\"") != std::string::npos);
  CHECK(lines_of(path + ".1").size() == 2);
  CHECK(lines_of(path + ".2")[0].find("\"run-4\"") != std::string::npos);
  CHECK_FALSE(std::ifstream(path + ".3").good());
}

TEST_CASE("records past the pending cap are dropped and the drop itself is recorded") {
  testing::TempDir dir;
  const std::string path = dir.path() + "/audit.jsonl";
  AuditFileOptions options;
  options.max_pending_bytes = 0;  // nothing fits: every record is dropped
  auto log = AuditLog::open(path, options, fixed_clock());
  REQUIRE(log.ok());
  (*log)->record_refusal({401, "unauthorized", "", "c", "GET", "/v1/policies"});
  (*log)->record_refusal({401, "unauthorized", "", "c", "GET", "/v1/policies"});
  log->reset();  // the writer reports the drop before it stops
  CHECK(lines_of(path) == std::vector<std::string>{R"j({"time":"2026-01-02T03:04:05.678Z",)j"
                                                   R"j("event":"dropped","records":2})j"});
}

TEST_CASE("a rotated log is listed oldest first, skipping numbers that do not exist") {
  testing::TempDir dir;
  const std::string path = dir.path() + "/a.jsonl";
  std::ofstream(path + ".3") << "";
  std::ofstream(path + ".1") << "";
  std::ofstream(path) << "";
  CHECK(AuditFile::files_of(path, 5) == std::vector<std::string>{path + ".3", path + ".1", path});
}

TEST_CASE("an audit log path that is a symlink is refused, not followed") {
  testing::TempDir dir;
  const std::string target = dir.write("elsewhere", "");
  const std::string path = dir.path() + "/audit.jsonl";
  REQUIRE(::symlink(target.c_str(), path.c_str()) == 0);
  auto log = AuditLog::open(path);
  REQUIRE_FALSE(log.ok());
  CHECK(log.error().message().find("ELOOP") != std::string::npos);
}

TEST_CASE("opening an audit log where it cannot be created is a setup error") {
  auto log = AuditLog::open("/nonexistent-dir/audit.jsonl");
  REQUIRE_FALSE(log.ok());
  CHECK(log.error().message().find("ENOENT") != std::string::npos);
}

}  // namespace airlock::policies
