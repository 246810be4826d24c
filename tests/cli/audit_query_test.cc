// `airlock audit`'s queries: time bounds as a person writes them, a run by id, blocked calls and
// refused requests over a period, and lines that are not records.
#include "cli/audit_query.h"

#include <catch2/catch.hpp>

namespace airlock::cli {
namespace {

// 2026-12-02T13:05:00.000Z
const std::chrono::system_clock::time_point kNow{std::chrono::milliseconds(1796216700000)};

std::vector<AuditLine> sample_log() {
  const std::vector<std::string> texts = {
      R"j({"time":"2026-12-02T10:00:00.000Z","event":"start","version":"1","policies":{}})j",
      R"j({"time":"2026-12-02T11:00:00.000Z","run_id":"ex_a","key":"ci","runtime":"python",)j"
      R"j("session_id":null,"client":"10.0.0.1:1","policy":"default","policy_hash":"sha256:1",)j"
      R"j("event":"run","status":"violation","exit_code":-1,"signal":31,"reason":"r","blocked":1,)j"
      R"j("blocked_dropped":0})j",
      R"j({"time":"2026-12-02T11:00:00.000Z","run_id":"ex_a","key":"ci","policy":"default",)j"
      R"j("event":"violation","syscall":"socket","detail":"socket(AF_INET)","action":"kill",)j"
      R"j("origin":"policy"})j",
      R"j({"time":"2026-12-02T11:00:00.000Z","run_id":"ex_a","key":"ci","policy":"default",)j"
      R"j("event":"blocked","syscall":"mount","detail":"mount()","action":"errno(EPERM)",)j"
      R"j("origin":"floor (@mount)"})j",
      "not json at all",
      R"j({"time":"2026-12-02T12:30:00.000Z","run_id":"ex_b","key":"other","policy":"python",)j"
      R"j("event":"blocked","syscall":"ptrace","detail":"ptrace()","action":"errno(EPERM)",)j"
      R"j("origin":"floor (@debug)"})j",
      R"j({"time":"2026-12-02T12:40:00.000Z","event":"refused","status":401,)j"
      R"j("code":"unauthorized","key":null,"client":"10.0.0.2:2","method":"POST",)j"
      R"j("path":"/v1/executions"})j",
  };
  std::vector<AuditLine> lines;
  for (size_t i = 0; i < texts.size(); ++i) lines.push_back({texts[i], "audit.jsonl", i + 1});
  return lines;
}

std::vector<size_t> line_numbers(const AuditMatches& found) {
  std::vector<size_t> numbers;
  for (const auto& line : found.matches) numbers.push_back(line.line);
  return numbers;
}

}  // namespace

TEST_CASE("time bounds: UTC times, dates and durations back from now") {
  CHECK(parse_time_bound("2026-12-02T13:05:07Z", kNow).text == "2026-12-02T13:05:07.000Z");
  CHECK(parse_time_bound("2026-12-02T13:05Z", kNow).text == "2026-12-02T13:05:00.000Z");
  CHECK(parse_time_bound("2026-12-02T13:05:07.250Z", kNow).text == "2026-12-02T13:05:07.250Z");
  CHECK(parse_time_bound("2026-12-02", kNow).text == "2026-12-02T00:00:00.000Z");
  CHECK(parse_time_bound("2h", kNow).text == "2026-12-02T11:05:00.000Z");
  CHECK(parse_time_bound("30m", kNow).text == "2026-12-02T12:35:00.000Z");
  CHECK(parse_time_bound("7d", kNow).text == "2026-11-25T13:05:00.000Z");
}

TEST_CASE("time bounds that are not times say what was expected") {
  for (const char* text : {"", "yesterday", "2026-02-30", "2026-12-02T25:00Z", "2026-12-02T13:05",
                           "2026-12-02 13:05Z", "0d", "-2h", "2h30", "2026-12-02T13:05:07.5Z",
                           "2999-01-01", "1969-12-31", "99999d", "9999999999h"}) {
    INFO(text);
    const TimeBound bound = parse_time_bound(text, kNow);
    CHECK(bound.text.empty());
    CHECK(bound.error.find("expected a UTC time") != std::string::npos);
  }
  const std::string long_text(10000, '9');
  CHECK(parse_time_bound(long_text, kNow).error.size() < 200);
}

TEST_CASE("a run is found by its id with its violation and blocked lines") {
  const AuditMatches found = find_run(sample_log(), "ex_a");
  CHECK(line_numbers(found) == std::vector<size_t>{2, 3, 4});
  REQUIRE(found.unreadable.size() == 1);
  CHECK(found.unreadable[0].starts_with("audit.jsonl:5: "));
  CHECK(find_run(sample_log(), "ex_zzz").matches.empty());
  CHECK(describe(found.matches[0]) ==
        "2026-12-02T11:00:00.000Z  run  ex_a  key=ci runtime=python session=- "
        "client=10.0.0.1:1  policy=default sha256:1  status=violation exit=-1 blocked=1  "
        "reason: r");
}

TEST_CASE("blocked calls are listed over a period, by key and by policy") {
  CHECK(line_numbers(find_blocked(sample_log(), {})) == std::vector<size_t>{3, 4, 6});
  AuditFilter since_noon;
  since_noon.since = "2026-12-02T12:00:00.000Z";
  CHECK(line_numbers(find_blocked(sample_log(), since_noon)) == std::vector<size_t>{6});
  AuditFilter until_noon;
  until_noon.until = "2026-12-02T12:30:00.000Z";  // exclusive
  CHECK(line_numbers(find_blocked(sample_log(), until_noon)) == std::vector<size_t>{3, 4});
  AuditFilter by_key;
  by_key.key = "other";
  CHECK(line_numbers(find_blocked(sample_log(), by_key)) == std::vector<size_t>{6});
  AuditFilter by_policy;
  by_policy.policy = "default";
  CHECK(line_numbers(find_blocked(sample_log(), by_policy)) == std::vector<size_t>{3, 4});
  CHECK(describe(find_blocked(sample_log(), by_key).matches[0]) ==
        "2026-12-02T12:30:00.000Z  blocked  ex_b  key=other policy=python  errno(EPERM)  "
        "ptrace()  (floor (@debug))");
}

TEST_CASE("refused requests are listed over a period") {
  const AuditMatches found = find_refused(sample_log(), {});
  CHECK(line_numbers(found) == std::vector<size_t>{7});
  CHECK(describe(found.matches[0]) ==
        "2026-12-02T12:40:00.000Z  refused  401 unauthorized  key=- client=10.0.0.2:2  "
        "POST /v1/executions");
}

TEST_CASE("lines that are not records are reported, not matched") {
  std::vector<AuditLine> lines = {{"[1,2]", "f", 1},
                                  {"{\"run_id\":\"x\"", "f", 2},
                                  {std::string(2 * 1024 * 1024, 'x'), "f", 3},
                                  {std::string(100, '[') + std::string(100, ']'), "f", 4}};
  const AuditMatches found = find_run(lines, "x");
  CHECK(found.matches.empty());
  CHECK(found.unreadable.size() == 4);
}

}  // namespace airlock::cli
