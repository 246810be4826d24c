#include "policies/audit_log.h"

#include <fcntl.h>

#include <cstdio>
#include <ctime>

namespace airlock::policies {
namespace {

// Length of the UTF-8 sequence starting at bytes[i], or 0 when it is not valid UTF-8.
size_t utf8_sequence_length(std::string_view bytes, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
  const unsigned char lead = byte(i);
  size_t length = 0;
  uint32_t code_point = 0;
  if (lead < 0x80) return 1;
  if ((lead & 0xe0) == 0xc0) {
    length = 2;
    code_point = lead & 0x1f;
  } else if ((lead & 0xf0) == 0xe0) {
    length = 3;
    code_point = lead & 0x0f;
  } else if ((lead & 0xf8) == 0xf0) {
    length = 4;
    code_point = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > bytes.size()) return 0;
  for (size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xc0) != 0x80) return 0;
    code_point = code_point << 6 | (byte(i + k) & 0x3f);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not valid UTF-8.
  static constexpr uint32_t kMinimum[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code_point < kMinimum[length] || code_point > 0x10ffff ||
      (code_point >= 0xd800 && code_point <= 0xdfff)) {
    return 0;
  }
  return length;
}

std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "\"0x%llx\"", static_cast<unsigned long long>(value));
  return text;
}

std::string field(const char* name, const std::string& json_value) {
  return std::string(",\"") + name + "\":" + json_value;
}

std::string event_line(const std::string& head, const char* kind,
                       const sandbox::SyscallEvent& event) {
  std::string line = head + field("event", json_string(kind));
  line += field("syscall", json_string(event.syscall));
  line += field("number", std::to_string(event.number));
  line += field("arch", hex(event.arch));
  std::string args = "[";
  for (size_t i = 0; i < event.args.size(); ++i) args += (i ? "," : "") + hex(event.args[i]);
  line += field("args", args + "]");
  line += field("detail", json_string(event.detail));
  line += field("action", json_string(event.action));
  line += field("origin", json_string(event.origin));
  return line + "}\n";
}

}  // namespace

std::string json_string(std::string_view bytes) {
  std::string out = "\"";
  size_t i = 0;
  while (i < bytes.size()) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    const size_t length = utf8_sequence_length(bytes, i);
    if (length == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (length > 1) {
      out.append(bytes.substr(i, length));
      i += length;
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char escape[8];
          std::snprintf(escape, sizeof escape, "\\u%04x", c);
          out += escape;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

AuditLog::AuditLog(std::string path, sandbox::UniqueFd fd, Clock clock)
    : path_(std::move(path)), fd_(std::move(fd)), clock_(std::move(clock)) {
  if (!clock_) clock_ = [] { return std::chrono::system_clock::now(); };
}

sandbox::Expected<std::unique_ptr<AuditLog>> AuditLog::open(const std::string& path, Clock clock) {
  auto fd = sandbox::open_fd(path, O_WRONLY | O_APPEND | O_CREAT, 0600);
  if (!fd) return fd.error();
  return std::unique_ptr<AuditLog>(new AuditLog(path, std::move(fd.value()), std::move(clock)));
}

std::string AuditLog::now_text() const {
  const auto now = clock_();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  const std::time_t seconds = static_cast<std::time_t>(ms.count() / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[80];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ms.count() % 1000));
  return text;
}

sandbox::Status AuditLog::append(const std::string& lines) {
  std::lock_guard lock(mutex_);
  return sandbox::write_all(fd_.get(), lines, "write(audit log)");
}

sandbox::Status AuditLog::record_run(const std::string& run_id, const std::string& key,
                                     const Policy& policy, const sandbox::Outcome& outcome) {
  const std::string head =
      "{\"time\":" + json_string(now_text()) + field("run_id", json_string(run_id)) +
      field("key", json_string(key)) + field("policy", json_string(policy.name)) + field("policy_hash", json_string(policy.hash));
  std::string lines = head + field("event", json_string("run")) +
                      field("status", json_string(sandbox::to_string(outcome.status))) +
                      field("exit_code", std::to_string(outcome.exit_code)) +
                      field("signal", std::to_string(outcome.signal)) +
                      field("reason", json_string(outcome.reason)) +
                      field("blocked", std::to_string(outcome.blocked.size())) +
                      field("blocked_dropped", std::to_string(outcome.blocked_dropped)) + "}\n";
  if (outcome.violation) lines += event_line(head, "violation", *outcome.violation);
  for (const auto& event : outcome.blocked) lines += event_line(head, "blocked", event);
  return append(lines);
}

sandbox::Status AuditLog::record_policy_errors(const std::vector<PolicyError>& errors) {
  std::string lines;
  for (const auto& error : errors) {
    lines += "{\"time\":" + json_string(now_text()) + field("event", json_string("policy_error")) +
             field("file", json_string(error.file)) + field("line", std::to_string(error.line)) +
             field("column", std::to_string(error.column)) +
             field("message", json_string(error.message)) + "}\n";
  }
  if (lines.empty()) return {};
  return append(lines);
}

}  // namespace airlock::policies
