// What `airlock audit` asks of an audit log: the lines of one run, and the calls blocked over a
// period. Plain functions over lines of text, so that the queries are tested without a service.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::cli {

// A bound of a period as the log writes times (policies::audit_time) ("2026-12-02T13:05:00.000Z"), so that bounds and
// records compare as text. Accepts an RFC 3339 UTC time ("2026-12-02T13:05:00Z", with or without
// seconds and milliseconds), a date ("2026-12-02", its midnight), or a duration back from `now`
// ("30m", "2h", "7d"). Otherwise `error` says what was expected.
struct TimeBound {
  std::string text;
  std::string error;
};
TimeBound parse_time_bound(std::string_view text, std::chrono::system_clock::time_point now);

struct AuditFilter {
  std::string since;  // audit_time text; empty: from the start
  std::string until;  // audit_time text, exclusive; empty: to the end
  std::string key;    // empty: any
  std::string policy; // empty: any
};

struct AuditLine {
  std::string text;   // the line as written
  std::string file;   // where it was, for messages
  size_t line = 0;    // 1-based
};

// The outcome of reading lines: those that matched, and lines that were not audit records
// (not JSON objects), which a reader should hear about rather than have silently skipped.
struct AuditMatches {
  std::vector<AuditLine> matches;
  std::vector<std::string> unreadable;  // "file:line: why"
};

// The lines of run `run_id`: its run line, its violation and blocked lines.
AuditMatches find_run(const std::vector<AuditLine>& lines, const std::string& run_id);

// The violation and blocked lines within the filter.
AuditMatches find_blocked(const std::vector<AuditLine>& lines, const AuditFilter& filter);

// The refused lines within the filter (key and policy filters: a refused line has no policy).
AuditMatches find_refused(const std::vector<AuditLine>& lines, const AuditFilter& filter);

// One line for a person: "TIME  RUN  key=K policy=P  syscall  action  detail (origin)" for a
// blocked call, and a similar shape for the other kinds; the raw text when it is not JSON.
std::string describe(const AuditLine& line);

}  // namespace airlock::cli
