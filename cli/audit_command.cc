// `airlock audit`: reads the service's audit log for the security team. `run ID` shows what one
// run was (who asked, from where, under which policy and hash, what was blocked); `blocked` and
// `refused` list the calls blocked and the requests refused over a period.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include "api/config.h"
#include "cli/audit_query.h"
#include "cli/commands.h"
#include "cli/layout.h"
#include "policies/audit_file.h"

namespace airlock::cli {
namespace {

constexpr int kExitFound = 0;
constexpr int kExitNothing = 1;
constexpr int kExitUsage = 2;

constexpr const char* kUsage =
    "usage: airlock audit run ID [--log FILE | --config FILE] [--json]\n"
    "       airlock audit blocked [--since TIME] [--until TIME] [--key NAME] [--policy NAME]\n"
    "                             [--log FILE | --config FILE] [--json]\n"
    "       airlock audit refused [--since TIME] [--until TIME] [--key NAME]\n"
    "                             [--log FILE | --config FILE] [--json]\n"
    "\n"
    "Reads the audit log `airlock serve` writes (one JSON object a line; docs/api.md).\n"
    "  run ID     the run's record: key, runtime, session, client, policy and hash, outcome,\n"
    "             and every call blocked in it\n"
    "  blocked    calls refused or logged by a policy or the floor, oldest first\n"
    "  refused    requests turned away for who sent them (401, 403)\n"
    "TIME: a UTC time (2026-12-02T13:05:00Z), a date (2026-12-02), or a duration back from now\n"
    "(30m, 2h, 7d). --until is exclusive.\n"
    "The log: --log FILE; else the audit_log of --config FILE (default: the installed\n"
    "airlock.yaml when there is one); else <state_dir>/audit.jsonl. Rotated files (FILE.1, ...)\n"
    "are read too. --json prints the records as written.\n"
    "Exit status: 0 something found, 1 nothing found, 2 usage error or unreadable log.\n";

int usage_error(const std::string& message) {
  std::cerr << "airlock audit: " << message << "\n" << kUsage;
  return kExitUsage;
}

struct Options {
  std::string verb;
  std::string run_id;
  std::string log_file;
  std::string config_file;
  AuditFilter filter;
  bool json = false;
};

// The log file and how many rotated files it keeps, from the options and the config; on a
// problem, a message and an empty path.
std::pair<std::string, size_t> log_location(const Options& options, std::string& problem) {
  if (!options.log_file.empty()) return {options.log_file, policies::kDefaultAuditKeep};
  std::string config_path = options.config_file;
  if (config_path.empty()) {
    const std::string installed = own_layout().config_dir + "/airlock.yaml";
    if (::access(installed.c_str(), R_OK) == 0) config_path = installed;
  }
  api::ServeConfig config;
  if (!config_path.empty()) {
    api::ConfigResult loaded = api::load_config_file(config_path);
    if (!loaded.config) {
      problem = loaded.error;
      return {};
    }
    config = std::move(*loaded.config);
  }
  const std::string path = config.effective_audit_log();
  if (path.empty()) {
    problem = config_path + ": the audit log is off (audit_log: off)";
    return {};
  }
  return {path, config.audit_log_keep};
}

// Prints what `query` finds in the log and its rotated files, oldest first, one file at a time
// (a file is at most audit_log_max_size). Returns how many records matched, or -1 after
// reporting a file that cannot be read.
template <typename Query>
long print_matches(const std::string& path, size_t keep, bool json, Query query) {
  const std::vector<std::string> files = policies::AuditFile::files_of(path, keep);
  if (files.empty()) {
    std::cerr << "airlock audit: " << path << ": no such audit log (--log FILE names another)\n";
    return -1;
  }
  long found = 0;
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::cerr << "airlock audit: " << file << ": cannot be read\n";
      return -1;
    }
    std::vector<AuditLine> lines;
    size_t number = 0;
    for (std::string text; std::getline(in, text);) lines.push_back({text, file, ++number});
    const AuditMatches matches = query(lines);
    for (const std::string& problem : matches.unreadable) {
      std::cerr << "airlock audit: skipped " << problem << "\n";
    }
    for (const AuditLine& line : matches.matches) {
      std::cout << (json ? line.text : describe(line)) << "\n";
    }
    found += static_cast<long>(matches.matches.size());
  }
  return found;
}

}  // namespace

int audit_command(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage_error("which records? run ID, blocked or refused");
  Options options;
  options.verb = args[0];
  if (options.verb == "--help" || options.verb == "-h" || options.verb == "help") {
    std::cout << kUsage;
    return kExitFound;
  }
  if (options.verb != "run" && options.verb != "blocked" && options.verb != "refused") {
    return usage_error("unknown subcommand '" + options.verb + "'");
  }
  const auto now = std::chrono::system_clock::now();
  std::vector<std::string> positional;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return kExitFound;
    }
    if (arg == "--json") {
      options.json = true;
      continue;
    }
    if (!arg.starts_with("--")) {
      positional.push_back(arg);
      continue;
    }
    if (i + 1 >= args.size()) return usage_error(arg + " needs a value");
    const std::string& value = args[++i];
    if (arg == "--log") {
      options.log_file = value;
    } else if (arg == "--config") {
      options.config_file = value;
    } else if (arg == "--key" && options.verb != "run") {
      options.filter.key = value;
    } else if (arg == "--policy" && options.verb == "blocked") {
      options.filter.policy = value;
    } else if ((arg == "--since" || arg == "--until") && options.verb != "run") {
      TimeBound bound = parse_time_bound(value, now);
      if (!bound.error.empty()) return usage_error(arg + ": " + bound.error);
      (arg == "--since" ? options.filter.since : options.filter.until) = bound.text;
    } else {
      return usage_error("unknown option '" + arg + "' for " + options.verb);
    }
  }
  if (!options.log_file.empty() && !options.config_file.empty()) {
    return usage_error("give --log or --config, not both");
  }
  if (options.verb == "run") {
    if (positional.size() != 1) return usage_error("run needs exactly one run id");
    options.run_id = positional[0];
  } else if (!positional.empty()) {
    return usage_error("unexpected argument '" + positional[0] + "'");
  }

  std::string problem;
  const auto [path, keep] = log_location(options, problem);
  if (path.empty()) {
    std::cerr << "airlock audit: " << problem << "\n";
    return kExitUsage;
  }
  long found = 0;
  if (options.verb == "run") {
    found = print_matches(path, keep, options.json, [&](const std::vector<AuditLine>& lines) {
      return find_run(lines, options.run_id);
    });
    if (found == 0) {
      std::cerr << "airlock audit: no run \"" << options.run_id << "\" in " << path
                << " (or its rotated files)\n";
    }
  } else if (options.verb == "blocked") {
    found = print_matches(path, keep, options.json, [&](const std::vector<AuditLine>& lines) {
      return find_blocked(lines, options.filter);
    });
  } else {
    found = print_matches(path, keep, options.json, [&](const std::vector<AuditLine>& lines) {
      return find_refused(lines, options.filter);
    });
  }
  if (found < 0) return kExitUsage;
  return found > 0 ? kExitFound : kExitNothing;
}

}  // namespace airlock::cli
