#include "policies/diff.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <map>
#include <set>

#include "policies/actions.h"
#include "policies/canonical.h"
#include "policies/units.h"

namespace airlock::policies {
namespace {

using Changes = std::vector<Change>;

template <typename T, typename Format>
void compare_limit(Changes& out, const std::string& name, T before, T after, Format format) {
  if (before == after) return;
  const bool raised = after > before;
  out.push_back({name + (raised ? " raised from " : " lowered from ") + format(before) + " to " +
                     format(after),
                 raised ? Effect::loosens : Effect::tightens});
}

std::string count_text(uint64_t value) {
  return std::to_string(value);
}
std::string millicores_text(uint32_t value) {
  return std::to_string(value) + "m";
}

void compare_limits(const Policy& a, const Policy& b, Changes& out) {
  const auto& x = a.limits;
  const auto& y = b.limits;
  compare_limit(out, "wall time limit", x.wall_time, y.wall_time, format_duration);
  compare_limit(out, "cpu time limit", x.cpu_time, y.cpu_time, format_duration);
  compare_limit(out, "memory limit", x.memory_max_bytes, y.memory_max_bytes, format_bytes);
  compare_limit(out, "process limit", uint64_t{x.max_processes}, uint64_t{y.max_processes},
                count_text);
  compare_limit(out, "open file limit", uint64_t{x.max_open_files}, uint64_t{y.max_open_files},
                count_text);
  compare_limit(out, "file size limit", x.file_size_max_bytes, y.file_size_max_bytes, format_bytes);
  compare_limit(out, "cpu share", x.cpu_millicores, y.cpu_millicores, millicores_text);
  compare_limit(out, "/tmp size", x.tmp_size_bytes, y.tmp_size_bytes, format_bytes);
  compare_limit(out, "/dev/shm size", x.shm_size_bytes, y.shm_size_bytes, format_bytes);
  compare_limit(out, "workdir size", x.workdir_size_bytes, y.workdir_size_bytes, format_bytes);
  compare_limit(out, "output kept per stream", a.output.kept_bytes, b.output.kept_bytes,
                format_bytes);
  if (a.output.on_overflow != b.output.on_overflow) {
    const bool now_kill = b.output.on_overflow == OverflowAction::kill;
    out.push_back({std::string("output overflow now ") +
                       (now_kill ? "kills the run" : "truncates") + " (was " +
                       (now_kill ? "truncate" : "kill") + ")",
                   now_kill ? Effect::tightens : Effect::loosens});
  }
}

void compare_runtimes(const Policy& a, const Policy& b, Changes& out) {
  for (const auto& runtime : b.runtimes) {
    if (!a.allows_runtime(runtime))
      out.push_back({"runtime '" + runtime + "' added", Effect::loosens});
  }
  for (const auto& runtime : a.runtimes) {
    if (!b.allows_runtime(runtime)) {
      out.push_back({"runtime '" + runtime + "' removed", Effect::tightens});
    }
  }
}

void compare_filesystem(const Policy& a, const Policy& b, Changes& out) {
  if (a.filesystem.workdir != b.filesystem.workdir) {
    out.push_back({"workdir moved from " + a.filesystem.workdir + " to " + b.filesystem.workdir,
                   Effect::changes});
  }
  std::map<std::string, sandbox::BindMount> before;
  for (const auto& bind : a.filesystem.binds) before[bind.sandbox_path] = bind;
  std::set<std::string> after_paths;
  for (const auto& bind : b.filesystem.binds) {
    after_paths.insert(bind.sandbox_path);
    const std::string name = "bind " + bind.sandbox_path;
    auto it = before.find(bind.sandbox_path);
    if (it == before.end()) {
      out.push_back(
          {name + " added" +
               (bind.host_path != bind.sandbox_path ? " (from host " + bind.host_path + ")" : "") +
               (bind.writable ? ", writable" : ", read-only"),
           Effect::loosens});
      continue;
    }
    const auto& old = it->second;
    if (old.host_path != bind.host_path) {
      // Host files the run could not see before: a diff cannot tell they are harmless.
      out.push_back({name + " now shows host " + bind.host_path + " (was " + old.host_path + ")",
                     Effect::loosens});
    }
    if (old.writable != bind.writable) {
      out.push_back({name + (bind.writable ? " now writable" : " now read-only"),
                     bind.writable ? Effect::loosens : Effect::tightens});
    }
    if (old.optional != bind.optional) {
      out.push_back({name + (bind.optional ? " now optional" : " now required"), Effect::changes});
    }
  }
  for (const auto& [path, bind] : before) {
    if (!after_paths.count(path)) out.push_back({"bind " + path + " removed", Effect::tightens});
  }
  std::map<std::string, uint64_t> tmpfs_before;
  for (const auto& mount : a.filesystem.tmpfs) tmpfs_before[mount.sandbox_path] = mount.size_bytes;
  for (const auto& mount : b.filesystem.tmpfs) {
    auto it = tmpfs_before.find(mount.sandbox_path);
    if (it == tmpfs_before.end()) {
      out.push_back(
          {"tmpfs " + mount.sandbox_path + " added with " + format_bytes(mount.size_bytes),
           Effect::loosens});
    } else {
      compare_limit(out, "tmpfs " + mount.sandbox_path + " size", it->second, mount.size_bytes,
                    format_bytes);
      tmpfs_before.erase(it);
    }
  }
  for (const auto& [path, size] : tmpfs_before) {
    out.push_back({"tmpfs " + path + " removed", Effect::tightens});
  }
}

void compare_environment(const Policy& a, const Policy& b, Changes& out) {
  std::map<std::string, std::string> before(a.environment.begin(), a.environment.end());
  for (const auto& [name, value] : b.environment) {
    auto it = before.find(name);
    if (it == before.end()) {
      out.push_back(
          {"environment variable " + name + " added: " + quote_string(value), Effect::changes});
    } else {
      if (it->second != value) {
        out.push_back({"environment variable " + name + " changed from " +
                           quote_string(it->second) + " to " + quote_string(value),
                       Effect::changes});
      }
      before.erase(it);
    }
  }
  for (const auto& [name, value] : before) {
    out.push_back({"environment variable " + name + " removed", Effect::changes});
  }
}

// none < loopback < egress: each reaches more than the one before.
int network_reach(const std::string& mode) {
  return mode == "none" ? 0 : mode == "loopback" ? 1 : 2;
}

std::string ports_text(const std::vector<uint16_t>& ports) {
  std::string text;
  for (uint16_t port : ports) text += (text.empty() ? "" : ", ") + std::to_string(port);
  return (ports.size() == 1 ? "port " : "ports ") + text;
}

// A destination or port added widens what a run reaches; one removed narrows it.
void compare_egress_rule(const EgressRule& x, const EgressRule& y, Changes& out) {
  const std::string name = "egress to " + destination_text(y);
  for (uint16_t port : y.ports) {
    if (std::find(x.ports.begin(), x.ports.end(), port) == x.ports.end()) {
      out.push_back({name + ": port " + std::to_string(port) + " added", Effect::loosens});
    }
  }
  for (uint16_t port : x.ports) {
    if (std::find(y.ports.begin(), y.ports.end(), port) == y.ports.end()) {
      out.push_back({name + ": port " + std::to_string(port) + " removed", Effect::tightens});
    }
  }
  // An injected header lends the run the secret's authority at that destination.
  auto find = [](const std::vector<InjectedHeader>& headers, const std::string& header) {
    return std::find_if(headers.begin(), headers.end(), [&](const InjectedHeader& h) {
      return std::equal(
          h.name.begin(), h.name.end(), header.begin(), header.end(),
          [](unsigned char a, unsigned char b) { return std::tolower(a) == std::tolower(b); });
    });
  };
  for (const auto& header : y.headers) {
    auto old = find(x.headers, header.name);
    if (old == x.headers.end()) {
      out.push_back({name + ": header " + header.name + " added from secret " + header.secret,
                     Effect::loosens});
    } else if (old->secret != header.secret) {
      out.push_back({name + ": header " + header.name + " now from secret " + header.secret +
                         " (was " + old->secret + ")",
                     Effect::changes});
    }
  }
  for (const auto& header : x.headers) {
    if (find(y.headers, header.name) == y.headers.end()) {
      out.push_back({name + ": header " + header.name + " removed", Effect::tightens});
    }
  }
}

void compare_network(const Policy& a, const Policy& b, Changes& out) {
  if (a.network != b.network) {
    const int delta = network_reach(b.network) - network_reach(a.network);
    out.push_back({"network changed from " + a.network + " to " + b.network,
                   delta > 0 ? Effect::loosens : Effect::tightens});
  }
  std::map<std::string, const EgressRule*> before;
  for (const auto& rule : a.egress.allow) before[destination_text(rule)] = &rule;
  for (const auto& rule : b.egress.allow) {
    auto it = before.find(destination_text(rule));
    if (it == before.end()) {
      out.push_back({"egress to " + destination_text(rule) + " " + ports_text(rule.ports) +
                         " added: " + rule.reason,
                     Effect::loosens});
      for (const auto& header : rule.headers) {
        out.push_back({"egress to " + destination_text(rule) + ": header " + header.name +
                           " added from secret " + header.secret,
                       Effect::loosens});
      }
      continue;
    }
    compare_egress_rule(*it->second, rule, out);
    before.erase(it);
  }
  for (const auto& [destination, rule] : before) {
    out.push_back({"egress to " + destination + " removed", Effect::tightens});
  }
  // Caps only mean something while egress is on; turning it on or off is said above.
  if (a.egress.enabled() && b.egress.enabled()) {
    compare_limit(out, "egress connection cap", uint64_t{a.egress.max_connections},
                  uint64_t{b.egress.max_connections}, count_text);
    compare_limit(out, "egress byte cap", a.egress.max_bytes, b.egress.max_bytes, format_bytes);
  }
}

// The rules of one syscall as comparable text, what each match does, and what an unconditional
// rule does to it.
struct SyscallView {
  std::vector<std::string> rules;
  std::map<std::string, Action> by_match;
  std::optional<Action> unconditional;
};

// `skip_network_none`: the socket rule of `network: none` is left out when the network setting
// changed, which is reported as such; when it did not, a change to that rule (its action follows
// deny_action) is a change like any other.
std::map<std::string, SyscallView> syscall_views(const Policy& policy, bool skip_network_none) {
  std::map<std::string, SyscallView> views;
  for (const auto& rule : policy.syscalls.rules) {
    if (skip_network_none && rule.origin.ends_with("(network: none)")) continue;
    auto& view = views[rule.syscall];
    const Action action{rule.action, rule.errno_value};
    view.rules.push_back(rule_match_text(rule) + " -> " + format_action(action));
    view.by_match[rule_match_text(rule)] = action;
    if (rule.conditions.empty()) view.unconditional = action;
  }
  return views;
}

// Conditional rules compared match by match, a match one side lacks taking that side's fallback;
// any looser answer makes the whole change a loosening, so that --fail-on-loosen sees it.
Effect conditional_effect(const SyscallView& x, const SyscallView& y, const Action& fallback_x,
                          const Action& fallback_y) {
  bool looser = strictness(fallback_y) < strictness(fallback_x);
  bool stricter = strictness(fallback_y) > strictness(fallback_x);
  std::set<std::string> matches;
  for (const auto& [match, action] : x.by_match) matches.insert(match);
  for (const auto& [match, action] : y.by_match) matches.insert(match);
  for (const auto& match : matches) {
    const auto before = x.by_match.find(match);
    const auto after = y.by_match.find(match);
    const int was = strictness(before == x.by_match.end() ? fallback_x : before->second);
    const int now = strictness(after == y.by_match.end() ? fallback_y : after->second);
    looser = looser || now < was;
    stricter = stricter || now > was;
  }
  return looser ? Effect::loosens : stricter ? Effect::tightens : Effect::changes;
}

std::string list_text(const std::vector<std::string>& rules, const std::string& fallback) {
  if (rules.empty()) return fallback;
  std::string text;
  for (const auto& rule : rules) text += (text.empty() ? "" : "; ") + rule;
  return text;
}

void compare_syscalls(const Policy& a, const Policy& b, Changes& out) {
  const Action default_a = default_action_of(a.syscalls);
  const Action default_b = default_action_of(b.syscalls);
  if (!(default_a == default_b)) {
    const int delta = strictness(default_b) - strictness(default_a);
    out.push_back({"default syscall action changed from " + format_action(default_a) + " to " +
                       format_action(default_b),
                   delta > 0   ? Effect::tightens
                   : delta < 0 ? Effect::loosens
                               : Effect::changes});
  }
  auto views_a = syscall_views(a, a.network != b.network);
  auto views_b = syscall_views(b, a.network != b.network);
  std::set<std::string> names;
  for (const auto& [name, view] : views_a) names.insert(name);
  for (const auto& [name, view] : views_b) names.insert(name);
  for (const auto& name : names) {
    const SyscallView& x = views_a[name];
    const SyscallView& y = views_b[name];
    if (x.rules == y.rules && default_a == default_b) continue;
    const bool simple_x = x.rules.empty() || x.unconditional.has_value();
    const bool simple_y = y.rules.empty() || y.unconditional.has_value();
    if (simple_x && simple_y) {
      const Action before = x.unconditional.value_or(default_a);
      const Action after = y.unconditional.value_or(default_b);
      if (before == after) continue;
      const int delta = strictness(after) - strictness(before);
      out.push_back({"syscall " + name + " now " + format_action(after) +
                         (y.rules.empty() ? " by the default action" : "") + " (was " +
                         format_action(before) + ")",
                     delta > 0   ? Effect::tightens
                     : delta < 0 ? Effect::loosens
                                 : Effect::changes});
      continue;
    }
    if (x.rules == y.rules) continue;  // conditional rules; their fallback is the default, above
    out.push_back({"rules for syscall " + name + " changed from [" +
                       list_text(x.rules, "default action") + "] to [" +
                       list_text(y.rules, "default action") + "]",
                   conditional_effect(x, y, x.unconditional.value_or(default_a),
                                      y.unconditional.value_or(default_b))});
  }
  const auto& lifted_a = a.syscalls.floor_exemptions;
  const auto& lifted_b = b.syscalls.floor_exemptions;
  for (const auto& syscall : lifted_b) {
    if (std::find(lifted_a.begin(), lifted_a.end(), syscall) != lifted_a.end()) continue;
    std::string why;
    for (const auto& entry : b.unsafe) {
      if (entry.what == "syscall " + syscall) why = ": " + entry.justification;
    }
    const Action now = views_b[syscall].unconditional.value_or(default_b);
    out.push_back({"mandatory floor lifted for " + syscall + " (unsafe" + why + "); " + syscall +
                       " now " + format_action(now),
                   Effect::loosens});
  }
  for (const auto& syscall : lifted_a) {
    if (std::find(lifted_b.begin(), lifted_b.end(), syscall) == lifted_b.end()) {
      out.push_back({"mandatory floor restored for " + syscall, Effect::tightens});
    }
  }
}

}  // namespace

std::string Change::text() const {
  switch (effect) {
    case Effect::loosens:
      return what + " (loosens)";
    case Effect::tightens:
      return what + " (tightens)";
    case Effect::changes:
      return what + " (changes)";
  }
  return what;
}

std::vector<Change> diff_policies(const Policy& before, const Policy& after) {
  Changes out;
  compare_limits(before, after, out);
  compare_runtimes(before, after, out);
  compare_filesystem(before, after, out);
  compare_network(before, after, out);
  compare_environment(before, after, out);
  compare_syscalls(before, after, out);
  // The canonical text (what the hash covers) differs in a way none of the comparisons above
  // describes: say which lines, and count them as loosening, so that a CI gate fails closed
  // instead of printing "no difference in effect" for two different hashes.
  if (out.empty() && before.canonical != after.canonical) {
    auto lines_of = [](const std::string& text) {
      std::multiset<std::string> lines;
      size_t start = 0;
      for (size_t end = text.find('\n'); end != std::string::npos; end = text.find('\n', start)) {
        lines.insert(text.substr(start, end - start));
        start = end + 1;
      }
      return lines;
    };
    const auto lines_before = lines_of(before.canonical);
    const auto lines_after = lines_of(after.canonical);
    std::vector<std::string> added, removed;
    std::set_difference(lines_after.begin(), lines_after.end(), lines_before.begin(),
                        lines_before.end(), std::back_inserter(added));
    std::set_difference(lines_before.begin(), lines_before.end(), lines_after.begin(),
                        lines_after.end(), std::back_inserter(removed));
    for (const auto& line : removed) {
      out.push_back({"effective line removed: " + line + "; not classified, counted as loosening",
                     Effect::loosens});
    }
    for (const auto& line : added) {
      out.push_back({"effective line added: " + line + "; not classified, counted as loosening",
                     Effect::loosens});
    }
  }
  return out;
}

}  // namespace airlock::policies
