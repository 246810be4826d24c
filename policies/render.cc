#include "policies/render.h"

#include <algorithm>
#include <cstdio>

#include "policies/actions.h"
#include "policies/canonical.h"
#include "policies/units.h"
#include "sandbox/seccomp_floor.h"

namespace airlock::policies {
namespace {

std::string action_of(const sandbox::SyscallRule& rule) {
  return format_action({rule.action, rule.errno_value});
}

// Each destination with its reason and origin; headers by secret name, never a value.
template <typename Line>
void render_egress(const Egress& egress, Line& line) {
  if (!egress.enabled()) return;
  line("egress:");
  line("  allow:");
  for (const auto& rule : egress.allow) {
    // Quoted when it is a wildcard: YAML reads a leading '*' as an alias.
    const std::string destination =
        rule.domain.starts_with('*') ? quote_string(rule.domain) : destination_text(rule);
    line(std::string("    - ") + (rule.cidr ? "cidr: " : "domain: ") + destination + "  # " +
         rule.origin);
    std::string ports;
    for (uint16_t port : rule.ports) ports += (ports.empty() ? "" : ", ") + std::to_string(port);
    line("      ports: [" + ports + "]");
    line("      reason: " + quote_string(rule.reason));
    if (rule.headers.empty()) continue;
    line("      headers:  # added by the gateway to plain-HTTP requests; values from its config");
    for (const auto& header : rule.headers) {
      line("        " + header.name + ": {secret: " + header.secret + "}");
    }
  }
  line("  max_connections: " + std::to_string(egress.max_connections));
  line("  max_bytes: " + spell_bytes(egress.max_bytes));
}

}  // namespace

std::string render_effective(const Policy& policy) {
  std::string out;
  auto line = [&out](const std::string& text) { out += text + "\n"; };
  std::string chain;
  for (size_t i = 0; i < policy.extends_chain.size(); ++i) {
    chain += (i ? " -> " : "") + policy.extends_chain[i];
  }
  line("# effective policy \"" + policy.name + "\" from " + policy.source_path);
  line("# layers: " + chain);
  line("description: " + quote_string(policy.description));
  std::string runtimes;
  for (const auto& runtime : policy.runtimes) runtimes += (runtimes.empty() ? "" : ", ") + runtime;
  line("runtimes: [" + runtimes + "]");

  const auto& limits = policy.limits;
  line("limits:");
  line("  wall_time: " + spell_duration(limits.wall_time));
  line("  cpu_time: " + spell_duration(limits.cpu_time));
  line("  memory: " + spell_bytes(limits.memory_max_bytes));
  line("  processes: " + std::to_string(limits.max_processes));
  line("  open_files: " + std::to_string(limits.max_open_files));
  line("  file_size: " + spell_bytes(limits.file_size_max_bytes));
  line("  cpu: " + std::to_string(limits.cpu_millicores) + "m");
  line("  output_kept: " + spell_bytes(policy.output.kept_bytes));
  line(std::string("  output_overflow: ") +
       (policy.output.on_overflow == OverflowAction::kill ? "kill" : "truncate"));

  line("filesystem:");
  line("  workdir: " + policy.filesystem.workdir);
  line("  workdir_size: " + spell_bytes(limits.workdir_size_bytes));
  line("  tmpfs:");
  line("    /tmp: " + spell_bytes(limits.tmp_size_bytes));
  line("    /dev/shm: " + spell_bytes(limits.shm_size_bytes));
  for (const auto& mount : policy.filesystem.tmpfs) {
    line("    " + mount.sandbox_path + ": " + spell_bytes(mount.size_bytes));
  }
  line("  binds:");
  for (const auto& bind : policy.filesystem.binds) {
    std::string text = "    - {path: " + bind.sandbox_path;
    if (bind.host_path != bind.sandbox_path) text += ", host: " + bind.host_path;
    if (bind.optional) text += ", optional: true";
    if (bind.writable) text += ", writable: true";
    line(text + "}");
  }
  line("network: " + policy.network);
  render_egress(policy.egress, line);
  line("environment:");
  for (const auto& [name, value] : policy.environment)
    line("  " + name + ": " + quote_string(value));

  const auto& seccomp = policy.syscalls;
  line("syscalls:");
  line("  default_action: " + format_action(default_action_of(seccomp)) + "  # " +
       seccomp.default_origin);
  line("  rules:");
  for (const auto& rule : seccomp.rules) {
    line("    - " + rule_match_text(rule) + " -> " + action_of(rule) + "  # " + rule.origin);
  }
  line("  floor:  # under every policy: a stricter rule above wins, a looser one needs unsafe");
  for (const auto& floor : sandbox::floor_rules()) {
    const auto& rule = floor.rule;
    const bool lifted = std::find(seccomp.floor_exemptions.begin(), seccomp.floor_exemptions.end(),
                                  rule.syscall) != seccomp.floor_exemptions.end();
    line("    - " + rule_match_text(rule) + " -> " + action_of(rule) + "  # " + rule.origin +
         (lifted ? ", LIFTED by unsafe" : ""));
  }
  if (!policy.unsafe.empty()) {
    line("unsafe:");
    for (const auto& entry : policy.unsafe) {
      line("  - " + entry.what + ": " + quote_string(entry.justification));
    }
  }
  line("hash: " + policy.hash);
  return out;
}

std::string render_unsafe(const Policy& policy) {
  std::string out;
  for (const auto& entry : policy.unsafe) {
    out += "UNSAFE policy \"" + policy.name + "\": " + entry.what + " — " +
           terminal_safe(entry.justification) + "\n";
  }
  return out;
}

std::string terminal_safe(std::string_view text, bool keep_newlines) {
  std::string out;
  out.reserve(text.size());
  char escape[8];
  for (size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const bool kept = byte == '\t' || (byte == '\n' && keep_newlines);
    if ((byte < 0x20 && !kept) || byte == 0x7f) {
      std::snprintf(escape, sizeof escape, "\\x%02x", byte);
      out += escape;
    } else if (byte == 0xc2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9f) {
      std::snprintf(escape, sizeof escape, "\\u%04x", static_cast<unsigned char>(text[++i]));
      out += escape;
    } else if (byte >= 0xc0) {  // a UTF-8 lead byte: the continuation bytes it announces go with it
      out += static_cast<char>(byte);
      const int continuation = byte >= 0xf0 ? 3 : byte >= 0xe0 ? 2 : 1;
      for (int n = 0; n < continuation && i + 1 < text.size() &&
                      (static_cast<unsigned char>(text[i + 1]) & 0xc0) == 0x80;
           ++n) {
        out += text[++i];
      }
    } else if (byte >= 0x80 && byte <= 0x9f) {  // a lone C1 byte: CSI on an 8-bit terminal
      std::snprintf(escape, sizeof escape, "\\x%02x", byte);
      out += escape;
    } else {
      out += static_cast<char>(byte);
    }
  }
  return out;
}

}  // namespace airlock::policies
