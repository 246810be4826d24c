// `airlock policy`: the security team's tools. `check` validates files, `show` prints a policy
// with its layers or its effective rules and hash, `diff` says what a change loosens or tightens,
// `groups` lists the syscall groups.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/layout.h"
#include "policies/diff.h"
#include "policies/loader.h"
#include "policies/render.h"
#include "policies/review.h"
#include "policies/syscall_groups.h"
#include "sandbox/regular_file.h"

namespace airlock::cli {
namespace {

using policies::LoadResult;

constexpr int kExitValid = 0;
constexpr int kExitInvalid = 1;
constexpr int kExitUsage = 2;
constexpr int kExitLoosens = 3;

constexpr const char* kUsage =
    "usage: airlock policy check FILE|NAME...\n"
    "       airlock policy show NAME|FILE [--effective]\n"
    "       airlock policy diff A B [--fail-on-loosen]\n"
    "       airlock policy groups\n"
    "       airlock policy SUBCOMMAND --help\n"
    "\n"
    "NAME is looked up as NAME.yaml in $AIRLOCK_POLICY_DIR (dirs separated by ':'), then in the\n"
    "installed <prefix>/etc/airlock/policies (/etc/airlock/policies for /usr).\n"
    "Exit status: 0 valid, 1 invalid, 2 usage error, 3 diff --fail-on-loosen found a loosening.\n";

// What each subcommand's --help prints.
constexpr const char* kCheckHelp =
    "usage: airlock policy check FILE|NAME...\n"
    "\n"
    "Loads each policy with its extends chain and reports every error as file:line:column.\n"
    "For a valid one prints OK, its effective hash and one UNSAFE line per unsafe entry, then\n"
    "review notes: WARNING for a bind that exposes a sensitive host path (/etc/shadow, /root,\n"
    "the Docker socket, ...) or is writable, ERROR for a required bind of a host path that does\n"
    "not exist on this machine (every run would fail to start; mark it optional: true).\n"
    "Exit status: 0 all valid, 1 any invalid or with an ERROR note, 2 usage error.\n";
constexpr const char* kShowHelp =
    "usage: airlock policy show NAME|FILE [--effective]\n"
    "\n"
    "Prints the policy's layers as written, root ancestor first, and its effective hash.\n"
    "--effective: the policy as enforced instead: values resolved, syscall groups expanded,\n"
    "the floor listed with its group names (as `airlock policy groups` lists them), every rule\n"
    "with its origin.\n"
    "Exit status: 0 shown, 1 invalid, 2 usage error.\n";
constexpr const char* kDiffHelp =
    "usage: airlock policy diff A B [--fail-on-loosen]\n"
    "\n"
    "Says what changing policy A (before) into B (after) does, one line a difference, each\n"
    "marked (loosens), (tightens) or (changes); \"no difference in effect\" when the hashes\n"
    "match. --fail-on-loosen: exit 3 when any line loosens, for a CI gate on policy changes.\n"
    "Exit status: 0 compared, 1 either is invalid, 2 usage error, 3 loosens (with the flag).\n";
constexpr const char* kGroupsHelp =
    "usage: airlock policy groups\n"
    "\n"
    "Lists the syscall groups a policy can name (@mount, @network, ...) with their members,\n"
    "then the mandatory floor's groups under the names `show --effective` gives them.\n";

int usage_error(const std::string& message) {
  std::cerr << "airlock policy: " << message << "\n" << kUsage;
  return kExitUsage;
}

bool wants_help(const std::vector<std::string>& args) {
  return std::find_if(args.begin(), args.end(), [](const std::string& arg) {
           return arg == "--help" || arg == "-h";
         }) != args.end();
}

bool host_path_exists(const std::string& path) {
  struct stat status {};
  return ::stat(path.c_str(), &status) == 0;
}

void print_errors(const LoadResult& result) {
  for (const auto& error : result.errors)
    std::cerr << policies::terminal_safe(error.format()) << "\n";
}

int check(const std::vector<std::string>& targets) {
  int status = kExitValid;
  for (const auto& target : targets) {
    const LoadResult result = policies::load_policy(target, default_policy_dirs());
    if (!result.ok()) {
      print_errors(result);
      std::cout << "INVALID " << target << " (" << result.errors.size()
                << (result.errors.size() == 1 ? " error)\n" : " errors)\n");
      status = kExitInvalid;
      continue;
    }
    const auto notes = policies::review_policy(*result.policy, host_path_exists);
    const bool failed = std::any_of(notes.begin(), notes.end(), [](const auto& note) {
      return note.severity == policies::ReviewNote::Severity::error;
    });
    std::cout << (failed ? "INVALID " : "OK ") << target << " " << result.policy->hash << "\n";
    std::cout << policies::render_unsafe(*result.policy);
    for (const auto& note : notes) {
      const bool error = note.severity == policies::ReviewNote::Severity::error;
      std::cout << (error ? "ERROR" : "WARNING") << " policy \"" << result.policy->name
                << "\": " << policies::terminal_safe(note.message) << "\n";
    }
    if (failed) status = kExitInvalid;
  }
  return status;
}

// A layer's file as written, for `show`: read the way the loader read it (a file swapped for a
// FIFO since then cannot hang the command), control characters escaped for the terminal.
std::string read_text(const std::string& path) {
  constexpr size_t kMaxPolicyBytes = 1 << 20;
  auto text = sandbox::read_regular_file(path, kMaxPolicyBytes);
  if (!text)
    return "# (cannot read it now: " + policies::terminal_safe(text.error().message()) + ")\n";
  return policies::terminal_safe(text.value(), true);
}

int show(const std::string& target, bool effective) {
  const LoadResult result = policies::load_policy(target, default_policy_dirs());
  if (!result.ok()) {
    print_errors(result);
    return kExitInvalid;
  }
  const auto& policy = *result.policy;
  if (effective) {
    std::cout << policies::terminal_safe(policies::render_effective(policy), true);
    return kExitValid;
  }
  // The layers as written, root ancestor first, so a reviewer reads them in the order they apply.
  for (size_t i = policy.chain_paths.size(); i-- > 0;) {
    std::cout << "# ---- layer " << policy.chain_paths.size() - i << " of "
              << policy.chain_paths.size() << ": " << policy.extends_chain[i] << " ("
              << policy.chain_paths[i] << ")\n";
    std::string text = read_text(policy.chain_paths[i]);
    if (!text.empty() && text.back() != '\n') text += '\n';
    std::cout << text;
  }
  std::cout << "# ---- effective hash: " << policy.hash << "\n";
  std::cout << policies::render_unsafe(policy);
  return kExitValid;
}

int diff(const std::string& before_name, const std::string& after_name, bool fail_on_loosen) {
  const auto dirs = default_policy_dirs();
  const LoadResult before = policies::load_policy(before_name, dirs);
  const LoadResult after = policies::load_policy(after_name, dirs);
  if (!before.ok() || !after.ok()) {
    print_errors(before);
    print_errors(after);
    return kExitInvalid;
  }
  std::cout << "--- " << before_name << " " << before.policy->hash << "\n";
  std::cout << "+++ " << after_name << " " << after.policy->hash << "\n";
  const auto changes = policies::diff_policies(*before.policy, *after.policy);
  if (changes.empty()) std::cout << "no difference in effect\n";
  for (const auto& change : changes) std::cout << policies::terminal_safe(change.text()) << "\n";
  const bool loosens = std::any_of(changes.begin(), changes.end(), [](const auto& change) {
    return change.effect == policies::Effect::loosens;
  });
  if (fail_on_loosen && loosens) {
    std::cerr << "airlock policy diff: " << after_name << " loosens " << before_name << "\n";
    return kExitLoosens;
  }
  return kExitValid;
}

void print_groups(const std::vector<policies::SyscallGroup>& groups) {
  for (const auto& group : groups) {
    std::cout << group.name << " — " << group.description << "\n ";
    for (const auto& member : group.members) std::cout << " " << member;
    std::cout << "\n";
  }
}

int groups() {
  print_groups(policies::syscall_groups());
  // The names `show --effective` gives the floor's rules ("floor (@mount)"), so that every name a
  // reviewer meets there is explained here.
  std::cout << "\nThe floor, under every policy (as `show --effective` names its rules; lifting "
               "a call needs unsafe):\n";
  print_groups(policies::floor_groups());
  return kExitValid;
}

}  // namespace

int policy_command(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? kExitUsage : kExitValid;
  }
  const std::string verb = args[0];
  args.erase(args.begin());
  if (wants_help(args)) {
    if (verb == "check") return std::cout << kCheckHelp, kExitValid;
    if (verb == "show") return std::cout << kShowHelp, kExitValid;
    if (verb == "diff") return std::cout << kDiffHelp, kExitValid;
    if (verb == "groups") return std::cout << kGroupsHelp, kExitValid;
  }
  // The policies named, and whether the subcommand's one flag (if it has one) was given.
  const std::string flag = verb == "show" ? "--effective" : verb == "diff" ? "--fail-on-loosen" : "";
  bool flagged = false;
  std::vector<std::string> targets;
  for (const auto& arg : args) {
    if (!flag.empty() && arg == flag) {
      flagged = true;
    } else if (arg.starts_with("--")) {
      return usage_error("unknown option '" + arg + "'");
    } else {
      targets.push_back(arg);
    }
  }
  if (verb == "check") {
    if (targets.empty()) return usage_error("check needs at least one policy file or name");
    return check(targets);
  }
  if (verb == "show") {
    if (targets.size() != 1) return usage_error("show needs exactly one policy");
    return show(targets[0], flagged);
  }
  if (verb == "diff") {
    if (targets.size() != 2) {
      return usage_error("diff needs two policies: A (before) and B (after)");
    }
    return diff(targets[0], targets[1], flagged);
  }
  if (verb == "groups") {
    if (!targets.empty()) return usage_error("groups takes no arguments");
    return groups();
  }
  return usage_error("unknown subcommand '" + verb + "'");
}

}  // namespace airlock::cli
