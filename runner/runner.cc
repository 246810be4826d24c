#include "runner/runner.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string_view>

#include "runner/execution.h"
#include "runner/output_capture.h"
#include "runner/workdir.h"
#include "sandbox/readable.h"

namespace airlock::runner {
namespace {

using sandbox::format_bytes;
using sandbox::format_duration;

constexpr size_t kMaxInputFiles = 1000;

// Receives a run's output: an OutputCapture, and the started event.
class Collector final : public sandbox::OutputHandler {
 public:
  Collector(uint64_t kept_bytes, bool kill_on_overflow, bool stream_everything,
            const EventSink* sink, uint64_t& sequence, bool announce_start = true)
      : capture_(kept_bytes, kill_on_overflow, stream_everything, sink, sequence),
        sink_(sink),
        sequence_(sequence),
        announce_start_(announce_start) {}

  bool on_output(sandbox::Stream stream, std::string_view data) override {
    return capture_.take(stream, data);
  }

  void on_started() override {
    if (announce_start_ && sink_ && *sink_) (*sink_)(Event{EventKind::started, ++sequence_, {}});
  }

  void on_gateway_sockets(sandbox::GatewaySockets sockets) override {
    if (gateway_ != nullptr) gateway_->attach(std::move(sockets));
  }

  void link_gateway(GatewayLink* link) { gateway_ = link; }

  KeptOutput kept_stdout() const { return capture_.kept(sandbox::Stream::stdout_stream); }
  KeptOutput kept_stderr() const { return capture_.kept(sandbox::Stream::stderr_stream); }

 private:
  OutputCapture capture_;
  const EventSink* sink_;
  uint64_t& sequence_;
  bool announce_start_;  // false for the run after a compile step, which announced the start
  GatewayLink* gateway_ = nullptr;
};

sandbox::Spec make_spec(const policies::Policy& policy, const sandbox::Limits& limits,
                        std::vector<std::string> argv, const std::string& workdir) {
  sandbox::Spec spec;
  spec.argv = std::move(argv);
  for (const auto& [name, value] : policy.environment) spec.env.push_back(name + "=" + value);
  spec.limits = limits;
  spec.filesystem = policy.filesystem;
  spec.seccomp = policy.syscalls;
  spec.gateway_ports = gateway_ports(policy.egress);  // sockets kept only where a link takes them
  spec.host_workdir = workdir;
  return spec;
}

template <typename T>
std::optional<RequestError> above_policy(const char* field, const std::optional<T>& asked,
                                         T allowed, const std::string& asked_text,
                                         const std::string& allowed_text,
                                         const policies::Policy& policy) {
  if (!asked) return std::nullopt;
  // The message does not repeat the field: each entry point puts the field first as its caller
  // spelled it ("limits.wall_time", MCP's "timeout", the CLI's "--timeout").
  if (*asked <= T{}) return RequestError{field, "must be greater than 0"};
  if (*asked > allowed) {
    return RequestError{field, asked_text + " is above the limit of " +
                                   "policy \"" + policy.name + "\" (" + allowed_text +
                                   "); a request may only tighten its policy: ask for at most " +
                                   allowed_text + " or use a policy that allows more"};
  }
  return std::nullopt;
}

// True when stderr ends with the runtime's compile_error_line (java's launcher compiles first).
bool compiler_rejected(const Runtime& runtime, const KeptOutput& stderr_output) {
  if (runtime.compile_error_line.empty()) return false;
  std::string_view text = stderr_output.text;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  std::string_view last = text.substr(text.rfind('\n') + 1);
  return last == runtime.compile_error_line;
}

}  // namespace

std::string RunResult::status_name() const {
  if (compile_error) return "compile_error";
  return std::string(sandbox::to_string(outcome.status));
}

Runner::Runner(sandbox::Sandbox& sandbox, RuntimeTable runtimes, PolicyLookup lookup,
               std::string drivers_dir)
    : sandbox_(sandbox),
      runtimes_(std::move(runtimes)),
      lookup_(std::move(lookup)),
      drivers_dir_(std::move(drivers_dir)) {}

std::optional<RequestError> Runner::validate(const RunRequest& request,
                                             const policies::Policy& policy) const {
  return validate_request(request, policy, runtimes_);
}

std::optional<RequestError> validate_request(const RunRequest& request,
                                             const policies::Policy& policy,
                                             const RuntimeTable& runtimes) {
  if (request.runtime.empty()) {
    if (request.argv.empty()) return RequestError{"runtime", "give a runtime and code, or a program to run"};
  } else {
    auto it = runtimes.find(request.runtime);
    if (it == runtimes.end()) {
      std::string names;
      for (const auto& [name, runtime] : runtimes) names += (names.empty() ? "" : ", ") + name;
      return RequestError{"runtime", "unknown runtime '" + request.runtime + "'; available: " + names};
    }
    if (!policy.allows_runtime(request.runtime)) {
      std::string names;
      for (const std::string& name : policy.runtimes) names += (names.empty() ? "" : ", ") + name;
      return RequestError{"runtime", "policy \"" + policy.name + "\" does not allow runtime '" +
                                          request.runtime + "' (it allows: " + names + ")"};
    }
  }
  if (request.files.size() > kMaxInputFiles) {
    return RequestError{"files", "at most " + std::to_string(kMaxInputFiles) + " files"};
  }
  uint64_t total = request.code.size();
  // Paths already taken, with the index of the file that took each.
  std::map<std::string_view, size_t> taken;
  auto file_name = [](size_t i) { return "files[" + std::to_string(i) + "]"; };
  for (size_t i = 0; i < request.files.size(); ++i) {
    const std::string field = file_name(i) + ".path";
    const std::string& path = request.files[i].path;
    if (auto problem = check_relative_path(path)) {
      return RequestError{field, "'" + path + "' " + *problem};
    }
    // Two files at one path, or a file where another needs a directory, cannot both be
    // written: refused before anything is (it would otherwise fail midway as a setup error, or
    // keep only one of them). Paths are plain here (no '.', '..' or '//'): compared as text.
    if (auto same = taken.find(path); same != taken.end()) {
      return RequestError{field, "'" + path + "' is also the path of " + file_name(same->second)};
    }
    for (size_t slash = path.find('/'); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      if (auto file = taken.find(std::string_view(path).substr(0, slash)); file != taken.end()) {
        return RequestError{field, "'" + path + "' would be inside '" + std::string(file->first) +
                                       "', which is a file (" + file_name(file->second) + ")"};
      }
    }
    // Paths below this one sort together, from the first at or after "path/".
    const std::string below = path + "/";
    if (auto inside = taken.lower_bound(below);
        inside != taken.end() && inside->first.starts_with(below)) {
      return RequestError{field, "'" + path + "' is a file, but " + file_name(inside->second) +
                                     " ('" + std::string(inside->first) +
                                     "') needs it to be a directory"};
    }
    taken[path] = i;
    total += request.files[i].content.size();
  }
  if (total > policy.limits.workdir_size_bytes) {
    return RequestError{"files", "code and files (" + format_bytes(total) +
                                     ") do not fit the working directory (" +
                                     format_bytes(policy.limits.workdir_size_bytes) + ")"};
  }
  for (const std::string& glob : request.output_globs) {
    if (glob.empty() || glob[0] == '/' || glob.find("..") != std::string::npos) {
      return RequestError{"output.files", "'" + glob + "' must be a relative glob without '..'"};
    }
  }
  const LimitOverrides& asked = request.limits;
  const sandbox::Limits& allowed = policy.limits;
  auto ms_text = [](auto d) { return d ? format_duration(*d) : std::string(); };
  if (auto e = above_policy("limits.wall_time", asked.wall_time, allowed.wall_time,
                            ms_text(asked.wall_time), format_duration(allowed.wall_time), policy)) {
    return e;
  }
  if (auto e = above_policy("limits.cpu_time", asked.cpu_time, allowed.cpu_time,
                            ms_text(asked.cpu_time), format_duration(allowed.cpu_time), policy)) {
    return e;
  }
  if (auto e = above_policy("limits.memory", asked.memory_max_bytes, allowed.memory_max_bytes,
                            format_bytes(asked.memory_max_bytes.value_or(0)),
                            format_bytes(allowed.memory_max_bytes), policy)) {
    return e;
  }
  if (auto e = above_policy("limits.processes", asked.max_processes, allowed.max_processes,
                            std::to_string(asked.max_processes.value_or(0)),
                            std::to_string(allowed.max_processes), policy)) {
    return e;
  }
  if (auto e = above_policy("output.max_bytes", asked.output_kept_bytes, policy.output.kept_bytes,
                            format_bytes(asked.output_kept_bytes.value_or(0)),
                            format_bytes(policy.output.kept_bytes), policy)) {
    return e;
  }
  return std::nullopt;
}

namespace {

// Each limit the smaller of the two.
sandbox::Limits at_most(const sandbox::Limits& a, const sandbox::Limits& b) {
  sandbox::Limits out;
  out.wall_time = std::min(a.wall_time, b.wall_time);
  out.cpu_time = std::min(a.cpu_time, b.cpu_time);
  out.memory_max_bytes = std::min(a.memory_max_bytes, b.memory_max_bytes);
  out.max_processes = std::min(a.max_processes, b.max_processes);
  out.max_open_files = std::min(a.max_open_files, b.max_open_files);
  out.file_size_max_bytes = std::min(a.file_size_max_bytes, b.file_size_max_bytes);
  out.tmp_size_bytes = std::min(a.tmp_size_bytes, b.tmp_size_bytes);
  out.shm_size_bytes = std::min(a.shm_size_bytes, b.shm_size_bytes);
  out.workdir_size_bytes = std::min(a.workdir_size_bytes, b.workdir_size_bytes);
  out.cpu_millicores = std::min(a.cpu_millicores, b.cpu_millicores);
  return out;
}

}  // namespace

RunResult Runner::run(const RunRequest& request, const policies::Policy& policy,
                      const EventSink& sink, int cancel_fd) {
  Execution execution(request, policy, request.runtime, sink,
                      effective_limits(policy, request.limits));
  RunResult& result = execution.result();
  const sandbox::Limits& limits = execution.limits();
  if (auto problem = validate(request, policy)) {
    execution.reject(*problem);
    return execution.fail("sandbox setup", {problem->field + ": " + problem->message, 0});
  }

  auto workspace = sandbox_.create_workspace(limits.workdir_size_bytes);
  if (!workspace) return execution.fail("sandbox setup", workspace.error());
  for (size_t i = 0; i < request.files.size(); ++i) {
    const InputFile& file = request.files[i];
    if (auto s = write_workspace_file(**workspace, file.path, file.content, file.executable); !s) {
      if (auto refused = refused_input_file(i, file, s.error(), "the working directory")) {
        execution.reject(*refused);
      }
      return execution.fail("sandbox setup", s.error());
    }
  }

  std::vector<std::string> argv = request.argv;
  sandbox::Spec spec = make_spec(policy, limits, {}, (*workspace)->path());
  std::optional<KeptOutput> compile_warnings;  // set when a compile step ran and succeeded
  if (!request.runtime.empty()) {
    const Runtime& runtime = runtimes_.at(request.runtime);
    add_runtime_setup(spec, runtime, drivers_dir_);
    if (auto s = write_workspace_file(**workspace, runtime.source_file, request.code, false); !s) {
      return execution.fail("sandbox setup", s.error());
    }
    if (!runtime.compile.empty()) {
      std::shared_ptr<const policies::Policy> compile_policy;
      if (!runtime.compile_policy.empty() && lookup_) compile_policy = lookup_(runtime.compile_policy);
      const policies::Policy& compiler = compile_policy ? *compile_policy : policy;
      // The compiler's diagnostics stream as stderr events like the program's own output, so
      // the CLI prints gcc's errors and warnings and an SSE client sees them as they come.
      Collector compile_output(compiler.output.kept_bytes, false, request.stream_everything,
                               &sink, execution.sequence());
      sandbox::RunOptions options;
      options.cancel_fd = cancel_fd;
      // The compiler's own rules (it must exec cc1, as, ld), but never more room than the run
      // itself may have: the key's policy and the request's limits bound the compile step too.
      sandbox::Outcome compiled = sandbox_.run(
          make_spec(compiler, at_most(compiler.limits, limits), runtime.compile,
                    (*workspace)->path()),
          compile_output, options);
      if (compiled.status != sandbox::RunStatus::ok) {
        result.outcome = compiled;
        result.compile_error = compiled.status != sandbox::RunStatus::setup_error &&
                               compiled.status != sandbox::RunStatus::cancelled;
        result.stdout_output = compile_output.kept_stdout();
        result.stderr_output = compile_output.kept_stderr();
        return execution.finish();
      }
      compile_warnings = compile_output.kept_stderr();
    }
    argv.insert(argv.begin(), runtime.run.begin(), runtime.run.end());
  }

  const uint64_t kept = request.limits.output_kept_bytes.value_or(policy.output.kept_bytes);
  Collector output(kept, policy.output.on_overflow == policies::OverflowAction::kill,
                   request.stream_everything, &sink, execution.sequence(),
                   !compile_warnings.has_value());
  sandbox::RunOptions options;
  options.stdin_data = request.stdin_data;
  options.stdin_fd = request.stdin_fd;
  options.cancel_fd = cancel_fd;
  spec.argv = std::move(argv);
  GatewayLink gateway(&gateway_, policy.egress);
  if (policy.egress.enabled()) {
    output.link_gateway(&gateway);
    result.network_used = true;
  }
  result.outcome = sandbox_.run(spec, output, options);
  result.network = gateway.finish();
  result.stdout_output = output.kept_stdout();
  result.stderr_output = output.kept_stderr();
  if (!request.runtime.empty() && result.outcome.status == sandbox::RunStatus::nonzero_exit) {
    result.compile_error = compiler_rejected(runtimes_.at(request.runtime), result.stderr_output);
  }
  if (compile_warnings && compile_warnings->total_bytes > 0) {
    // The compiler's warnings come first in stderr, as they did on the stream.
    KeptOutput& err = result.stderr_output;
    err.text = compile_warnings->text + err.text;
    err.total_bytes += compile_warnings->total_bytes;
    err.dropped_bytes += compile_warnings->dropped_bytes;
  }
  result.files = collect_output_files((*workspace)->path(), request.output_globs,
                                      request.max_file_bytes);
  return execution.finish();
}

}  // namespace airlock::runner
