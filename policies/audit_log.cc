#include "policies/audit_log.h"

#include <algorithm>
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

// A JSON string, or null for an empty one (no session, no key).
std::string optional_string(const std::string& text) {
  return text.empty() ? "null" : json_string(text);
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

AuditLog::AuditLog(std::unique_ptr<AuditFile> file, Clock clock)
    : file_(std::move(file)), clock_(std::move(clock)) {}

sandbox::Expected<std::unique_ptr<AuditLog>> AuditLog::open(const std::string& path,
                                                            AuditFileOptions options,
                                                            Clock clock) {
  if (!clock) clock = [] { return std::chrono::system_clock::now(); };
  options.dropped_line = [clock](uint64_t count) {
    return "{\"time\":" + json_string(audit_time(clock())) + field("event", json_string("dropped")) +
           field("records", std::to_string(count)) + "}\n";
  };
  auto file = AuditFile::open(path, std::move(options));
  if (!file) return file.error();
  return std::unique_ptr<AuditLog>(new AuditLog(std::move(file.value()), std::move(clock)));
}

std::string AuditLog::now_text() const { return audit_time(clock_()); }

std::string audit_time(std::chrono::system_clock::time_point time) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch());
  const std::time_t seconds = static_cast<std::time_t>(ms.count() / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[80];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ms.count() % 1000));
  return text;
}

void AuditLog::record_run(const RunRecord& run, const Policy& policy,
                          const sandbox::Outcome& outcome) {
  const std::string head =
      "{\"time\":" + json_string(now_text()) + field("run_id", json_string(run.run_id)) +
      field("key", json_string(run.key)) + field("runtime", json_string(run.runtime)) +
      field("session_id", optional_string(run.session_id)) +
      field("client", json_string(run.client)) + field("policy", json_string(policy.name)) +
      field("policy_hash", json_string(policy.hash));
  std::string lines = head + field("event", json_string("run")) +
                      field("status", json_string(sandbox::to_string(outcome.status))) +
                      field("exit_code", std::to_string(outcome.exit_code)) +
                      field("signal", std::to_string(outcome.signal)) +
                      field("reason", json_string(outcome.reason)) +
                      field("blocked", std::to_string(outcome.blocked.size())) +
                      field("blocked_dropped", std::to_string(outcome.blocked_dropped));
  if (run.network.used) {
    lines += field("network_connections", std::to_string(run.network.connections)) +
             field("network_refused", std::to_string(run.network.refused)) +
             field("network_bytes_sent", std::to_string(run.network.bytes_sent)) +
             field("network_bytes_received", std::to_string(run.network.bytes_received));
  }
  lines += "}\n";
  if (outcome.violation) lines += event_line(head, "violation", *outcome.violation);
  for (const auto& event : outcome.blocked) lines += event_line(head, "blocked", event);
  for (const auto& [destination, reason] : run.network.refused_destinations) {
    lines += head + field("event", json_string("connection_refused")) +
             field("destination", json_string(destination)) +
             field("reason", json_string(reason)) + "}\n";
  }
  file_->append(std::move(lines));
}

void AuditLog::record_refusal(const RefusalRecord& refusal) {
  file_->append("{\"time\":" + json_string(now_text()) + field("event", json_string("refused")) +
                field("status", std::to_string(refusal.status)) +
                field("code", json_string(refusal.code)) +
                field("key", optional_string(refusal.key)) +
                field("client", json_string(refusal.client)) +
                field("method", json_string(refusal.method)) +
                field("path", json_string(refusal.path)) + "}\n");
}

void AuditLog::record_workspace(const WorkspaceRecord& workspace) {
  file_->append("{\"time\":" + json_string(now_text()) + field("event", json_string(workspace.event)) +
                field("workspace_id", json_string(workspace.workspace_id)) +
                field("key", json_string(workspace.key)) +
                field("policy", optional_string(workspace.policy)) +
                field("hash", optional_string(workspace.policy_hash)) +
                field("template", optional_string(workspace.template_id)) +
                field("client", json_string(workspace.client)) +
                field("detail", optional_string(workspace.detail)) + "}\n");
}

void AuditLog::record_reload(const std::vector<PolicyChange>& changes, size_t policies,
                             size_t errors) {
  const std::string time = json_string(now_text());
  std::string lines;
  for (const PolicyChange& change : changes) {
    lines += "{\"time\":" + time + field("event", json_string("policy_reload")) +
             field("policy", json_string(change.name)) +
             field("old_hash", optional_string(change.old_hash)) +
             field("new_hash", optional_string(change.new_hash)) + "}\n";
  }
  lines += "{\"time\":" + time + field("event", json_string("reload")) +
           field("policies", std::to_string(policies)) +
           field("changed", std::to_string(changes.size())) +
           field("errors", std::to_string(errors)) + "}\n";
  file_->append(std::move(lines));
}

void AuditLog::record_keys_reload(const std::vector<std::string>& before,
                                  const std::vector<std::string>& after,
                                  const std::string& problem) {
  auto list = [](const std::vector<std::string>& names) {
    std::string out = "[";
    for (size_t i = 0; i < names.size(); ++i) out += (i ? "," : "") + json_string(names[i]);
    return out + "]";
  };
  file_->append("{\"time\":" + json_string(now_text()) +
                field("event", json_string("api_keys_reload")) + field("before", list(before)) +
                field("after", list(after)) + field("error", optional_string(problem)) + "}\n");
}

void AuditLog::record_start(const std::string& version, const std::vector<PolicyChange>& policies) {
  std::string list = "{";
  for (size_t i = 0; i < policies.size(); ++i) {
    list += (i ? "," : "") + json_string(policies[i].name) + ":" +
            json_string(policies[i].new_hash);
  }
  file_->append("{\"time\":" + json_string(now_text()) + field("event", json_string("start")) +
                field("version", json_string(version)) + field("policies", list + "}") + "}\n");
}

void AuditLog::record_policy_errors(const std::vector<PolicyError>& errors) {
  std::string lines;
  for (const auto& error : errors) {
    lines += "{\"time\":" + json_string(now_text()) + field("event", json_string("policy_error")) +
             field("file", json_string(error.file)) +
             field("line", std::to_string(std::max(error.line, 0))) +
             field("column", std::to_string(error.column)) +
             field("message", json_string(error.message)) + "}\n";
  }
  file_->append(std::move(lines));
}

}  // namespace airlock::policies
