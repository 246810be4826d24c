// `airlock policy`: the security team's tools. `check` validates files, `show` prints a policy
// with its layers or its effective rules and hash, `diff` says what a change loosens or tightens,
// `groups` lists the syscall groups.
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
#include "policies/syscall_groups.h"

namespace airlock::cli {
namespace {

using policies::LoadResult;

constexpr int kExitValid = 0;
constexpr int kExitInvalid = 1;
constexpr int kExitUsage = 2;

constexpr const char* kUsage =
    "usage: airlock policy check FILE|NAME...\n"
    "       airlock policy show NAME|FILE [--effective]\n"
    "       airlock policy diff A B\n"
    "       airlock policy groups\n"
    "\n"
    "NAME is looked up as NAME.yaml in $AIRLOCK_POLICY_DIR (dirs separated by ':'), then in the\n"
    "installed <prefix>/etc/airlock/policies (/etc/airlock/policies for /usr).\n"
    "Exit status: 0 valid, 1 invalid, 2 usage error.\n";

int usage_error(const std::string& message) {
  std::cerr << "airlock policy: " << message << "\n" << kUsage;
  return kExitUsage;
}

void print_errors(const LoadResult& result) {
  for (const auto& error : result.errors) std::cerr << error.format() << "\n";
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
    std::cout << "OK " << target << " " << result.policy->hash << "\n";
    std::cout << policies::render_unsafe(*result.policy);
  }
  return status;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

int show(const std::string& target, bool effective) {
  const LoadResult result = policies::load_policy(target, default_policy_dirs());
  if (!result.ok()) {
    print_errors(result);
    return kExitInvalid;
  }
  const auto& policy = *result.policy;
  if (effective) {
    std::cout << policies::render_effective(policy);
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

int diff(const std::string& before_name, const std::string& after_name) {
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
  for (const auto& change : changes) std::cout << change.text() << "\n";
  return kExitValid;
}

int groups() {
  for (const auto& group : policies::syscall_groups()) {
    std::cout << group.name << " — " << group.description << "\n ";
    for (const auto& member : group.members) std::cout << " " << member;
    std::cout << "\n";
  }
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
  if (verb == "check") {
    if (args.empty()) return usage_error("check needs at least one policy file or name");
    return check(args);
  }
  if (verb == "show") {
    bool effective = false;
    std::vector<std::string> targets;
    for (const auto& arg : args) {
      if (arg == "--effective") {
        effective = true;
      } else if (arg.starts_with("--")) {
        return usage_error("unknown option '" + arg + "'");
      } else {
        targets.push_back(arg);
      }
    }
    if (targets.size() != 1) return usage_error("show needs exactly one policy");
    return show(targets[0], effective);
  }
  if (verb == "diff") {
    if (args.size() != 2) return usage_error("diff needs two policies: A (before) and B (after)");
    return diff(args[0], args[1]);
  }
  if (verb == "groups") return groups();
  return usage_error("unknown subcommand '" + verb + "'");
}

}  // namespace airlock::cli
