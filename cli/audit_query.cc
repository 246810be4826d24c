#include "cli/audit_query.h"

#include <cstdio>
#include <ctime>

#include "api/wire/json.h"
#include "policies/audit_log.h"
#include "policies/units.h"

namespace airlock::cli {
namespace {

using api::json::Value;

constexpr int64_t kMillisecondsPerDay = 24LL * 60 * 60 * 1000;
constexpr int kLastYear = 2200;
// Far enough back for any log; beyond it `now - duration` would leave the clock's range.
constexpr int64_t kMaxDaysBack = 100 * 366;
// A record longer than this is not one airlock wrote (the longest are blocked calls with their
// detail, a few KiB); it is reported instead of parsed.
constexpr size_t kMaxRecordBytes = 1024 * 1024;

bool all_digits(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

int number_at(std::string_view text, size_t at, size_t length) {
  return std::stoi(std::string(text.substr(at, length)));
}

// "YYYY-MM-DD" and "YYYY-MM-DDTHH:MM[:SS[.mmm]]Z" to the log's spelling, checking that the
// fields make a real time (no 2026-02-30).
std::optional<std::string> normalised_time(std::string_view text) {
  auto digits = [&](size_t at, size_t length) {
    return text.size() >= at + length && all_digits(text.substr(at, length));
  };
  if (!digits(0, 4) || text.size() < 10 || text[4] != '-' || !digits(5, 2) || text[7] != '-' ||
      !digits(8, 2)) {
    return std::nullopt;
  }
  // system_clock counts nanoseconds in 64 bits: it ends in 2262.
  const int year = number_at(text, 0, 4);
  if (year < 1970 || year > kLastYear) return std::nullopt;
  std::tm fields{};
  fields.tm_year = year - 1900;
  fields.tm_mon = number_at(text, 5, 2) - 1;
  fields.tm_mday = number_at(text, 8, 2);
  int milliseconds = 0;
  if (text.size() > 10) {
    if ((text[10] != 'T' && text[10] != 't') || !text.ends_with('Z') || !digits(11, 2) ||
        text.size() < 17 || text[13] != ':' || !digits(14, 2)) {
      return std::nullopt;
    }
    fields.tm_hour = number_at(text, 11, 2);
    fields.tm_min = number_at(text, 14, 2);
    std::string_view rest = text.substr(16, text.size() - 17);  // between minutes and 'Z'
    if (!rest.empty()) {
      if (rest.size() < 3 || rest[0] != ':' || !all_digits(rest.substr(1, 2))) return std::nullopt;
      fields.tm_sec = number_at(rest, 1, 2);
      rest.remove_prefix(3);
      if (!rest.empty()) {
        if (rest.size() != 4 || rest[0] != '.' || !all_digits(rest.substr(1))) return std::nullopt;
        milliseconds = number_at(rest, 1, 3);
      }
    }
  }
  std::tm checked = fields;
  const std::time_t seconds = timegm(&checked);
  if (seconds == -1 || checked.tm_year != fields.tm_year || checked.tm_mon != fields.tm_mon ||
      checked.tm_mday != fields.tm_mday || checked.tm_hour != fields.tm_hour ||
      checked.tm_min != fields.tm_min || checked.tm_sec != fields.tm_sec) {
    return std::nullopt;
  }
  return policies::audit_time(std::chrono::system_clock::from_time_t(seconds) +
                  std::chrono::milliseconds(milliseconds));
}

std::optional<std::chrono::milliseconds> duration_back(std::string_view text) {
  if (text.ends_with('d') && all_digits(text.substr(0, text.size() - 1)) && text.size() <= 6) {
    const int64_t days = std::stoll(std::string(text.substr(0, text.size() - 1)));
    if (days == 0 || days > kMaxDaysBack) return std::nullopt;
    return std::chrono::milliseconds(days * kMillisecondsPerDay);
  }
  auto parsed = policies::parse_duration(text);
  auto* value = std::get_if<std::chrono::milliseconds>(&parsed);
  if (value == nullptr || *value > std::chrono::milliseconds(kMaxDaysBack * kMillisecondsPerDay)) {
    return std::nullopt;
  }
  return *value;
}

std::string text_field(const Value& record, std::string_view name) {
  const Value* value = api::json::field(record, name);
  if (value == nullptr) return "";
  if (value->kind_case() == Value::kStringValue) return value->string_value();
  if (value->kind_case() == Value::kNumberValue) {
    char text[32];
    std::snprintf(text, sizeof text, "%.0f", value->number_value());
    return text;
  }
  return "";
}

// Parses each line and keeps those `wanted` says yes to.
template <typename Predicate>
AuditMatches select(const std::vector<AuditLine>& lines, Predicate wanted) {
  AuditMatches out;
  for (const AuditLine& line : lines) {
    if (line.text.empty()) continue;
    const std::string where = line.file + ":" + std::to_string(line.line) + ": ";
    if (line.text.size() > kMaxRecordBytes) {
      out.unreadable.push_back(where + "a line of " + std::to_string(line.text.size()) +
                               " bytes, longer than any record");
      continue;
    }
    std::string error;
    auto record = api::json::parse(line.text, error);
    if (!record || !record->has_struct_value()) {
      out.unreadable.push_back(where + (record ? "not a JSON object" : error));
      continue;
    }
    if (wanted(*record)) out.matches.push_back(line);
  }
  return out;
}

bool within(const Value& record, const AuditFilter& filter) {
  const std::string time = text_field(record, "time");
  if (!filter.since.empty() && time < filter.since) return false;
  if (!filter.until.empty() && time >= filter.until) return false;
  if (!filter.key.empty() && text_field(record, "key") != filter.key) return false;
  if (!filter.policy.empty() && text_field(record, "policy") != filter.policy) return false;
  return true;
}

}  // namespace

TimeBound parse_time_bound(std::string_view text, std::chrono::system_clock::time_point now) {
  if (text.size() <= 40) {
    if (auto time = normalised_time(text)) return {*time, ""};
    if (auto back = duration_back(text)) return {policies::audit_time(now - *back), ""};
  }
  return {"", "expected a UTC time (2026-12-02T13:05:00Z), a date (2026-12-02) or a duration "
              "back from now (30m, 2h, 7d), got \"" +
                  std::string(text.substr(0, 40)) + (text.size() > 40 ? "...\"" : "\"")};
}

AuditMatches find_run(const std::vector<AuditLine>& lines, const std::string& run_id) {
  return select(lines, [&](const Value& record) { return text_field(record, "run_id") == run_id; });
}

AuditMatches find_blocked(const std::vector<AuditLine>& lines, const AuditFilter& filter) {
  return select(lines, [&](const Value& record) {
    const std::string event = text_field(record, "event");
    return (event == "blocked" || event == "violation") && within(record, filter);
  });
}

AuditMatches find_refused(const std::vector<AuditLine>& lines, const AuditFilter& filter) {
  return select(lines, [&](const Value& record) {
    return text_field(record, "event") == "refused" && within(record, filter);
  });
}

std::string describe(const AuditLine& line) {
  std::string error;
  auto record = api::json::parse(line.text, error);
  if (!record || !record->has_struct_value()) return line.text;
  auto f = [&](std::string_view name) {
    std::string value = text_field(*record, name);
    return value.empty() ? std::string("-") : value;
  };
  const std::string event = f("event");
  const std::string head = f("time") + "  " + event;
  if (event == "run") {
    return head + "  " + f("run_id") + "  key=" + f("key") + " runtime=" + f("runtime") +
           " session=" + f("session_id") + " client=" + f("client") + "  policy=" + f("policy") +
           " " + f("policy_hash") + "  status=" + f("status") + " exit=" + f("exit_code") +
           " blocked=" + f("blocked") + (f("reason") == "-" ? "" : "  reason: " + f("reason"));
  }
  if (event == "blocked" || event == "violation") {
    return head + "  " + f("run_id") + "  key=" + f("key") + " policy=" + f("policy") + "  " +
           f("action") + "  " + f("detail") + "  (" + f("origin") + ")";
  }
  if (event == "refused") {
    return head + "  " + f("status") + " " + f("code") + "  key=" + f("key") +
           " client=" + f("client") + "  " + f("method") + " " + f("path");
  }
  if (event.starts_with("workspace_")) {  // E2B sandboxes: made, killed, and what ran in them
    return head + "  " + f("workspace_id") + "  key=" + f("key") + " client=" + f("client") +
           "  policy=" + f("policy") + " " + f("hash") + (f("detail") == "-" ? "" : "  " + f("detail"));
  }
  return line.text;
}

}  // namespace airlock::cli
