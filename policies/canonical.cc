#include "policies/canonical.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "policies/actions.h"
#include "policies/sha256.h"

namespace airlock::policies {
namespace {

std::string op_text(sandbox::ArgCondition::Op op) {
  using Op = sandbox::ArgCondition::Op;
  switch (op) {
    case Op::eq:
      return "==";
    case Op::ne:
      return "!=";
    case Op::lt:
      return "<";
    case Op::le:
      return "<=";
    case Op::gt:
      return ">";
    case Op::ge:
      return ">=";
    case Op::masked_eq:
      return "&";
  }
  return "?";
}

std::string hex(uint64_t value) {
  char text[32];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

// One line per destination, then one per header it gets; reasons are for reviewers, not meaning.
void egress_lines(const Egress& egress, std::string& out) {
  if (!egress.enabled()) return;  // so that policies without egress keep their hashes
  for (const auto& rule : egress.allow) {
    const std::string destination =
        rule.cidr ? "cidr " + rule.cidr->text() : "domain " + quote_string(rule.domain);
    std::string ports;
    for (uint16_t port : rule.ports) ports += (ports.empty() ? "" : ",") + std::to_string(port);
    out += "egress.allow " + destination + " ports " + ports + "\n";
    // Header names are case-insensitive: spelled in lower case, in order.
    std::vector<std::pair<std::string, std::string>> headers;
    for (const auto& header : rule.headers) {
      std::string name = header.name;
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      headers.emplace_back(name, header.secret);
    }
    std::sort(headers.begin(), headers.end());
    for (const auto& [name, secret] : headers) {
      out += "egress.header " + destination + " " + quote_string(name) + " secret " +
             quote_string(secret) + "\n";
    }
  }
  out += "egress.max_connections " + std::to_string(egress.max_connections) + "\n";
  out += "egress.max_bytes " + std::to_string(egress.max_bytes) + "\n";
}

}  // namespace

std::string quote_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (byte < 0x20 || byte == 0x7f) {
      char escape[8];
      std::snprintf(escape, sizeof escape, "\\u%04x", byte);
      out += escape;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string rule_match_text(const sandbox::SyscallRule& rule) {
  std::string text = rule.syscall;
  for (const auto& condition : rule.conditions) {
    text += " arg" + std::to_string(condition.index) + " ";
    if (condition.op == sandbox::ArgCondition::Op::masked_eq) {
      text += "& " + hex(condition.mask) + " == " + std::to_string(condition.value);
    } else {
      text += op_text(condition.op) + " " + std::to_string(condition.value);
    }
  }
  return text;
}

std::string canonical_text(const Policy& policy) {
  const auto& limits = policy.limits;
  std::string out = "airlock-policy-canonical 1\n";
  auto line = [&out](const std::string& key, const std::string& value) {
    out += key + " " + value + "\n";
  };
  for (const auto& runtime : policy.runtimes) line("runtime", quote_string(runtime));
  line("limits.wall_time_ms", std::to_string(limits.wall_time.count()));
  line("limits.cpu_time_ms", std::to_string(limits.cpu_time.count()));
  line("limits.memory_bytes", std::to_string(limits.memory_max_bytes));
  line("limits.processes", std::to_string(limits.max_processes));
  line("limits.open_files", std::to_string(limits.max_open_files));
  line("limits.file_size_bytes", std::to_string(limits.file_size_max_bytes));
  line("limits.cpu_millicores", std::to_string(limits.cpu_millicores));
  line("limits.tmp_bytes", std::to_string(limits.tmp_size_bytes));
  line("limits.shm_bytes", std::to_string(limits.shm_size_bytes));
  line("limits.workdir_bytes", std::to_string(limits.workdir_size_bytes));
  line("output.kept_bytes", std::to_string(policy.output.kept_bytes));
  line("output.overflow", policy.output.on_overflow == OverflowAction::kill ? "kill" : "truncate");
  line("filesystem.workdir", quote_string(policy.filesystem.workdir));
  for (const auto& bind : policy.filesystem.binds) {
    line("filesystem.bind", quote_string(bind.sandbox_path) + " from " +
                                quote_string(bind.host_path) + (bind.writable ? " rw" : " ro") +
                                (bind.optional ? " optional" : " required"));
  }
  for (const auto& mount : policy.filesystem.tmpfs) {
    line("filesystem.tmpfs",
         quote_string(mount.sandbox_path) + " " + std::to_string(mount.size_bytes));
  }
  line("network", quote_string(policy.network));
  egress_lines(policy.egress, out);
  for (const auto& [name, value] : policy.environment) {
    line("environment", quote_string(name) + "=" + quote_string(value));
  }
  const auto& seccomp = policy.syscalls;
  line("syscalls.default", format_action(default_action_of(seccomp)));
  for (const auto& rule : seccomp.rules) {
    line("syscalls.rule",
         rule_match_text(rule) + " -> " + format_action({rule.action, rule.errno_value}));
  }
  for (const auto& syscall : seccomp.floor_exemptions) line("syscalls.floor_exemption", syscall);
  return out;
}

std::string policy_digest(std::string_view canonical) {
  return sha256_hex(canonical);
}

}  // namespace airlock::policies
