// `airlock run`: a developer tries a program or a snippet exactly as the service would run it.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <optional>

#include "api/config.h"
#include "api/wire/translate.h"
#include "api/wire/wire.h"
#include "cli/commands.h"
#include "cli/layout.h"
#include "policies/loader.h"
#include "policies/units.h"
#include "runner/runner.h"
#include "sandbox/readable.h"
#include "sandbox/regular_file.h"
#include "sandbox/unique_fd.h"

namespace airlock::cli {
namespace {

constexpr int kUsageError = 2;
constexpr int kSetupFailed = sandbox::kExitSetupError;

constexpr const char* kRunUsage =
    "usage: airlock run [OPTIONS] -- PROGRAM [ARGS...]\n"
    "       airlock run [OPTIONS] --runtime LANG (FILE | -c CODE | -) [-- ARGS...]\n"
    "\n"
    "Runs PROGRAM, or a snippet in LANG, in a fresh sandbox. stdin is forwarded; stdout and\n"
    "stderr stream as the program writes them; a one-line summary goes to stderr at the end.\n"
    "Exit code: the program's own; 128+N when killed by signal N; 124 time limit; 125 the\n"
    "sandbox could not be set up; 126 compile error; 137 memory limit; 153 output limit;\n"
    "159 a syscall the policy kills for (SIGSYS); 2 for a usage error.\n"
    "\n"
    "options:\n"
    "  --runtime LANG      python, node, bash, sh, perl, c, cpp, java (see runtimes.yaml);\n"
    "                      --lang is the same option\n"
    "  -c CODE             the snippet itself; FILE reads it from a file, - from stdin\n"
    "  --policy NAME|FILE  policy to run under (default: \"default\", as the API without\n"
    "                      default_policy; e.g. --policy python for its larger limits)\n"
    "  --timeout DURATION  wall time limit, e.g. 5s, \"2 min\", 500ms (at most the policy's)\n"
    "  --cpu-time DURATION cpu time limit of the whole process tree\n"
    "  --memory SIZE       memory limit, e.g. 128MiB\n"
    "  --processes N       process and thread limit\n"
    "  --output SIZE       output kept per stream in the result (head and tail)\n"
    "  --file PATH         copy a host file into the working dir (repeatable; NAME=PATH renames)\n"
    "  --collect GLOB      return matching files from the working dir (with --json)\n"
    "  --json              print the result as one JSON object (the API's result) instead of\n"
    "                      streaming the program's output\n"
    "  --runtimes FILE     runtimes file (default: $AIRLOCK_RUNTIMES, else the installed\n"
    "                      <prefix>/etc/airlock/runtimes.yaml; man airlock); read\n"
    "                      only with --runtime\n"
    "  --config FILE       run as the server with this config would: its policy_dirs,\n"
    "                      default_policy, runtimes_file and egress section (hosts,\n"
    "                      secrets); --policy and --runtimes still override\n"
    "\n"
    "Policies are looked up in $AIRLOCK_POLICY_DIR (dirs separated by ':'), then the installed\n"
    "<prefix>/etc/airlock/policies (/etc/airlock/policies for /usr).\n";

struct Options {
  runner::RunRequest request;
  std::string policy;
  std::string runtimes_file = default_runtimes_file();
  bool runtimes_installed = !std::getenv("AIRLOCK_RUNTIMES");  // until --runtimes
  bool runtimes_given = false;                                 // --runtimes
  bool json = false;
  bool code_from_stdin = false;
  std::string config_file;  // --config
};

int usage_error(const std::string& message) {
  std::fprintf(stderr, "airlock run: %s\n(see airlock run --help)\n", message.c_str());
  return kUsageError;
}

template <typename T>
bool parse_unit(const char* flag, const std::string& text, policies::Parsed<T> parsed, T& out,
                std::string& error) {
  if (auto* message = std::get_if<std::string>(&parsed)) {
    error = std::string(flag) + " '" + text + "': " + *message;
    return false;
  }
  out = std::get<T>(parsed);
  return true;
}

// A source file or --file: a regular file no larger than a request body the API would take, so
// that a directory, /dev/zero or a FIFO is refused at once with the reason.
std::string read_host_file(const std::string& path, std::string& content) {
  auto text = sandbox::read_regular_file(path, api::kDefaultMaxBodyBytes);
  if (!text) return text.error().message();
  content = std::move(text.value());
  return "";
}

// Parses argv into options; returns an error message, or "" on success.
std::string parse(int argc, char** argv, Options& options) {
  runner::RunRequest& request = options.request;
  std::string source_file;
  bool have_code = false;
  int i = 1;
  auto value = [&](const char* flag) -> const char* {
    if (i + 1 >= argc) return nullptr;
    (void)flag;
    return argv[++i];
  };
  for (; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    std::string error;
    const char* v = nullptr;
    if (arg == "--json") {
      options.json = true;
    } else if (arg == "-c") {
      if (!(v = value("-c"))) return "-c needs the code";
      request.code = v;
      have_code = true;
    } else if (arg == "--lang" || arg == "--runtime" || arg == "--policy" || arg == "--timeout" ||
               arg == "--cpu-time" || arg == "--memory" || arg == "--processes" ||
               arg == "--output" || arg == "--file" || arg == "--collect" ||
               arg == "--runtimes" || arg == "--config") {
      if (!(v = value(arg.c_str()))) return arg + " needs a value";
      std::string text = v;
      // An empty name would quietly mean the default policy, runtime or file.
      if (text.empty()) return arg + " needs a value, not an empty one";
      if (arg == "--lang" || arg == "--runtime") request.runtime = text;
      if (arg == "--policy") options.policy = text;
      if (arg == "--config") options.config_file = text;
      if (arg == "--runtimes") {
        options.runtimes_file = text;
        options.runtimes_installed = false;
        options.runtimes_given = true;
      }
      if (arg == "--collect") request.output_globs.push_back(text);
      std::chrono::milliseconds duration{};
      uint64_t number = 0;
      if (arg == "--timeout" || arg == "--cpu-time") {
        if (!parse_unit(arg.c_str(), text, policies::parse_duration(text), duration, error)) return error;
        (arg == "--timeout" ? request.limits.wall_time : request.limits.cpu_time) = duration;
      }
      if (arg == "--memory" || arg == "--output") {
        if (!parse_unit(arg.c_str(), text, policies::parse_bytes(text), number, error)) return error;
        (arg == "--memory" ? request.limits.memory_max_bytes : request.limits.output_kept_bytes) = number;
      }
      if (arg == "--processes") {
        if (!parse_unit(arg.c_str(), text, policies::parse_count(text, 1 << 20), number, error)) return error;
        request.limits.max_processes = static_cast<uint32_t>(number);
      }
      if (arg == "--file") {
        size_t equals = text.find('=');
        std::string host = equals == std::string::npos ? text : text.substr(equals + 1);
        std::string name = equals == std::string::npos ? host.substr(host.rfind('/') + 1)
                                                       : text.substr(0, equals);
        runner::InputFile file{name, {}, ::access(host.c_str(), X_OK) == 0};
        if (auto problem = read_host_file(host, file.content); !problem.empty()) {
          return "--file: cannot read '" + host + "': " + problem;
        }
        request.files.push_back(std::move(file));
      }
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(kRunUsage, stdout);
      std::exit(0);
    } else if (!arg.empty() && arg[0] == '-' && arg != "-") {
      return "unknown option '" + arg + "'";
    } else if (!request.runtime.empty() && !have_code) {
      if (arg == "-") {
        options.code_from_stdin = true;
      } else {
        source_file = arg;
      }
      have_code = true;
    } else {
      break;  // PROGRAM without "--"
    }
  }
  std::vector<std::string> rest(argv + i, argv + argc);
  if (request.runtime.empty()) {
    if (have_code) return "-c and FILE need --runtime";
    if (rest.empty()) return "nothing to run: give -- PROGRAM [ARGS...] or --runtime LANG";
    request.argv = rest;
  } else {
    if (!have_code) return "--runtime " + request.runtime + " needs FILE, -c CODE or -";
    if (!source_file.empty()) {
      if (auto problem = read_host_file(source_file, request.code); !problem.empty()) {
        return "cannot read '" + source_file + "': " + problem;
      }
    }
    request.argv = rest;
  }
  return "";
}

// A request field as the option that sets it, so an error names what the user typed.
std::string option_for(const std::string& field) {
  static const std::pair<std::string_view, std::string_view> kOptions[] = {
      {"runtime", "--runtime"},         {"limits.wall_time", "--timeout"},
      {"limits.cpu_time", "--cpu-time"}, {"limits.memory", "--memory"},
      {"limits.processes", "--processes"}, {"output.max_bytes", "--output"},
      {"output.files", "--collect"},     {"files", "--file"}};
  for (const auto& [name, option] : kOptions) {
    if (field == name || field.starts_with(std::string(name) + "[")) return std::string(option);
  }
  return field;
}

// One line for the terminal at the end: what happened, and a hint when it went wrong.
std::string summary_line(const runner::RunResult& result) {
  const sandbox::Outcome& outcome = result.outcome;
  std::string line = "airlock: " + result.status_name();
  if (!outcome.reason.empty()) line += " (" + outcome.reason + ")";
  line += " in " + sandbox::format_duration(outcome.usage.wall) + ", cpu " +
          sandbox::format_duration(outcome.usage.cpu_user + outcome.usage.cpu_system) +
          ", peak memory " + sandbox::format_bytes(outcome.usage.peak_memory_bytes);
  for (const auto* kept : {&result.stdout_output, &result.stderr_output}) {
    if (kept->dropped_bytes > 0) {
      line += "; " + sandbox::format_bytes(kept->dropped_bytes) + " of " +
              (kept == &result.stdout_output ? "stdout" : "stderr") + " not kept";
    }
  }
  if (!outcome.blocked.empty() && outcome.status != sandbox::RunStatus::ok &&
      !result.compile_error) {
    const sandbox::SyscallEvent& first = outcome.blocked.front();
    line += "; blocked " + first.detail + " -> " + first.action + " by " + first.origin;
    size_t more = outcome.blocked.size() - 1 + outcome.blocked_dropped;
    if (more > 0) line += " (+" + std::to_string(more) + " more)";
  }
  if (result.network_used && !result.network.blocked.empty()) {
    const egress::Blocked& first = result.network.blocked.front();
    line += "; network refused " + first.destination + " (" + first.reason + ")";
    if (result.network.blocked.size() > 1) {
      line += " (+" + std::to_string(result.network.blocked.size() - 1) + " more)";
    }
  }
  return line + " [policy " + result.policy_name + " " + result.policy_hash.substr(0, 19) + "]";
}

}  // namespace

int run_command(int argc, char** argv) {
  Options options;
  if (std::string error = parse(argc, argv, options); !error.empty()) return usage_error(error);
  runner::RunRequest& request = options.request;
  if (options.code_from_stdin) {
    // As for a source file: no more than a request body the API would take (`< /dev/zero` ends).
    char chunk[16384];
    while (request.code.size() <= api::kDefaultMaxBodyBytes &&
           std::cin.read(chunk, sizeof chunk).gcount() > 0) {
      request.code.append(chunk, static_cast<size_t>(std::cin.gcount()));
    }
    if (request.code.size() > api::kDefaultMaxBodyBytes) {
      return usage_error("the code on stdin is larger than 16 MiB");
    }
  } else if (!options.json) {
    request.stdin_fd = STDIN_FILENO;
  }

  // With --config, what the server would take from it: its policies, default policy, runtimes
  // and egress, so that a snippet behaves here as it will behind that server.
  std::optional<api::ServeConfig> config;
  if (!options.config_file.empty()) {
    api::ConfigResult loaded_config = api::load_config_file(options.config_file);
    if (!loaded_config.config) return usage_error("--config: " + loaded_config.error);
    config = std::move(*loaded_config.config);
    if (!config->runtimes_file.empty() && !options.runtimes_given) {
      options.runtimes_file = config->runtimes_file;
      options.runtimes_installed = false;
    }
  }

  // A program run (`-- PROGRAM`) uses no runtime, so it neither reads nor needs runtimes.yaml:
  // parsing it was ~1-3 ms of each such run (docs/benchmarks.md).
  runner::RuntimeTable runtimes;
  if (!request.runtime.empty()) {
    if (std::string problem =
            missing(options.runtimes_file, "runtimes file",
                    "give --runtimes FILE or set AIRLOCK_RUNTIMES", options.runtimes_installed);
        !problem.empty()) {
      std::fprintf(stderr, "airlock run: %s\n", problem.c_str());
      return kSetupFailed;
    }
    auto loaded_runtimes = runner::load_runtimes(options.runtimes_file);
    if (!loaded_runtimes) {
      std::fprintf(stderr, "airlock run: %s\n", loaded_runtimes.error().message().c_str());
      return kSetupFailed;
    }
    runtimes = std::move(loaded_runtimes.value());
  }
  const std::vector<std::string> dirs =
      config && !config->policy_dirs.empty() ? config->policy_dirs : default_policy_dirs();
  if (std::string problem = missing_all(dirs, "policy directory", "set AIRLOCK_POLICY_DIR");
      !problem.empty()) {
    std::fprintf(stderr, "airlock run: %s\n", problem.c_str());
    return kSetupFailed;
  }
  // The API's rule (default_policy, "default" unless configured), so that a snippet behaves here
  // as it will behind the service; a runtime's own policy is chosen by name.
  const std::string policy_name = !options.policy.empty() ? options.policy
                                  : config                ? config->default_policy
                                                          : "default";
  policies::LoadResult loaded = policies::load_policy(policy_name, dirs);
  if (!loaded.ok()) {
    std::fprintf(stderr, "airlock run: policy '%s' did not load:\n", policy_name.c_str());
    for (const auto& error : loaded.errors) std::fprintf(stderr, "  %s\n", error.format().c_str());
    return kSetupFailed;
  }
  auto sandbox = sandbox::Sandbox::create(sandbox::SandboxConfig{});
  if (!sandbox) {
    std::fprintf(stderr, "airlock run: %s\n", sandbox.error().message().c_str());
    return kSetupFailed;
  }
  auto lookup = [&dirs](const std::string& name) {
    return policies::load_policy(name, dirs).policy;
  };
  // The runtimes' support folders (python's sitecustomize.py) come from the drivers directory;
  // without one, runs go without them.
  std::string drivers_dir = own_layout().drivers_dir();
  if (!std::filesystem::is_directory(drivers_dir)) drivers_dir.clear();
  runner::Runner runner(**sandbox, std::move(runtimes), lookup, drivers_dir);
  if (config) runner.gateway().configure(config->egress);
  if (auto problem = runner.validate(request, *loaded.policy)) {
    return usage_error(option_for(problem->field) + ": " + problem->message);
  }
  request.stream_everything = true;
  runner::EventSink sink;
  if (!options.json) {
    sink = [](const runner::Event& event) {
      if (event.kind != runner::EventKind::stdout_data &&
          event.kind != runner::EventKind::stderr_data) {
        return;
      }
      int fd = event.kind == runner::EventKind::stdout_data ? STDOUT_FILENO : STDERR_FILENO;
      (void)sandbox::write_all(fd, event.data, "terminal");
    };
  }
  runner::RunResult result = runner.run(request, *loaded.policy, sink);
  if (options.json) {
    std::puts(api::encode(api::to_result(result, result.id), api::WireFormat::json).c_str());
  } else {
    std::fprintf(stderr, "%s\n", summary_line(result).c_str());
  }
  return result.compile_error ? sandbox::kExitCompileError : sandbox::cli_exit_code(result.outcome);
}

}  // namespace airlock::cli
