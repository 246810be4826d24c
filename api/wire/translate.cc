#include "api/wire/translate.h"

#include "api/wire/text.h"
#include "api/wire/wire.h"
#include "policies/units.h"

namespace airlock::api {
namespace {

std::optional<v1::Error> invalid(const std::string& field, const std::string& problem) {
  return make_error("invalid_request", field + ": " + problem, field);
}

std::optional<v1::Error> decode_files(const v1::ExecutionRequest& in, runner::RunRequest& out) {
  if (static_cast<size_t>(in.files_size()) > kMaxInputFiles) {
    return invalid("files", "at most " + std::to_string(kMaxInputFiles) + " files");
  }
  for (int i = 0; i < in.files_size(); ++i) {
    const v1::InputFile& file = in.files(i);
    std::string field = "files[" + std::to_string(i) + "]";
    if (file.path().empty()) return invalid(field + ".path", "required");
    runner::InputFile decoded{file.path(), {}, file.executable()};
    const std::string& encoding = file.encoding();
    if (encoding.empty() || encoding == "utf-8" || encoding == "utf8") {
      decoded.content = file.content();
    } else if (encoding == "base64") {
      auto bytes = base64_decode(file.content());
      if (!bytes) return invalid(field + ".content", "not valid base64");
      decoded.content = std::move(*bytes);
    } else {
      return make_error("invalid_request",
                        field + ".encoding: \"" + encoding + "\" is not one of utf-8, base64",
                        field + ".encoding", {"utf-8", "base64"});
    }
    out.files.push_back(std::move(decoded));
  }
  return std::nullopt;
}

std::optional<v1::Error> decode_limits(const v1::Limits& in, runner::LimitOverrides& out) {
  auto duration = [](const std::string& text, const std::string& field,
                     std::optional<std::chrono::milliseconds>& target) -> std::optional<v1::Error> {
    if (text.empty()) return std::nullopt;
    auto value = policies::parse_duration(text);
    if (auto* problem = std::get_if<std::string>(&value)) return invalid(field, *problem);
    target = std::get<std::chrono::milliseconds>(value);
    return std::nullopt;
  };
  if (auto error = duration(in.wall_time(), "limits.wall_time", out.wall_time)) return error;
  if (auto error = duration(in.cpu_time(), "limits.cpu_time", out.cpu_time)) return error;
  if (!in.memory().empty()) {
    auto bytes = policies::parse_bytes(in.memory());
    if (auto* problem = std::get_if<std::string>(&bytes)) return invalid("limits.memory", *problem);
    out.memory_max_bytes = std::get<uint64_t>(bytes);
  }
  if (in.processes() > 0) out.max_processes = in.processes();
  return std::nullopt;
}

v1::SyscallReport to_report(const sandbox::SyscallEvent& event) {
  v1::SyscallReport report;
  report.set_syscall(to_valid_utf8(event.syscall));
  report.set_action(to_valid_utf8(event.action));
  report.set_rule(to_valid_utf8(event.origin));
  report.set_detail(to_valid_utf8(event.detail));
  return report;
}

}  // namespace

std::optional<v1::Error> to_run_request(const v1::ExecutionRequest& in,
                                        uint64_t max_file_bytes_ceiling, runner::RunRequest& out) {
  if (in.runtime().empty()) {
    return make_error("invalid_request", "runtime: required (see GET /v1/runtimes)", "runtime");
  }
  out.runtime = in.runtime();
  out.code = in.code();
  out.stdin_data = in.stdin();
  if (static_cast<size_t>(in.args_size()) > kMaxArgs) {
    return invalid("args", "at most " + std::to_string(kMaxArgs) + " arguments");
  }
  out.argv.assign(in.args().begin(), in.args().end());
  if (auto error = decode_files(in, out)) return error;
  if (auto error = decode_limits(in.limits(), out.limits)) return error;

  const v1::OutputOptions& output = in.output();
  if (output.max_bytes() > 0) out.limits.output_kept_bytes = output.max_bytes();
  if (static_cast<size_t>(output.files_size()) > kMaxOutputGlobs) {
    return invalid("output.files", "at most " + std::to_string(kMaxOutputGlobs) + " globs");
  }
  for (int i = 0; i < output.files_size(); ++i) {
    if (output.files(i).empty()) {
      return invalid("output.files[" + std::to_string(i) + "]", "an empty glob matches nothing");
    }
    out.output_globs.push_back(output.files(i));
  }
  out.max_file_bytes = max_file_bytes_ceiling;
  if (output.max_file_bytes() > max_file_bytes_ceiling) {
    return invalid("output.max_file_bytes",
                   "at most " + std::to_string(max_file_bytes_ceiling) + " bytes on this service");
  }
  if (output.max_file_bytes() > 0) out.max_file_bytes = output.max_file_bytes();
  return std::nullopt;
}

v1::OutputFile to_output_file(const runner::OutputFile& file) {
  v1::OutputFile out;
  out.set_path(to_valid_utf8(file.path));
  bool text = !file.binary && is_valid_utf8(file.content);
  out.set_content(text ? file.content : base64_encode(file.content));
  out.set_encoding(text ? "utf-8" : "base64");
  out.set_size_bytes(file.size_bytes);
  out.set_truncated(file.truncated);
  out.set_media_type(file.media_type);
  return out;
}

v1::ExecutionResult to_result(const runner::RunResult& result, const std::string& id) {
  const sandbox::Outcome& outcome = result.outcome;
  v1::ExecutionResult out;
  out.set_id(id);
  out.set_status(result.status_name());
  out.set_exit_code(outcome.exit_code);
  out.set_signal(outcome.signal);
  out.set_stdout(to_valid_utf8(result.stdout_output.text));
  out.set_stderr(to_valid_utf8(result.stderr_output.text));
  out.set_stdout_bytes(result.stdout_output.total_bytes);
  out.set_stdout_dropped_bytes(result.stdout_output.dropped_bytes);
  out.set_stderr_bytes(result.stderr_output.total_bytes);
  out.set_stderr_dropped_bytes(result.stderr_output.dropped_bytes);
  v1::Usage* usage = out.mutable_usage();
  usage->set_wall_time_ms(outcome.usage.wall.count());
  usage->set_cpu_user_ms(outcome.usage.cpu_user.count());
  usage->set_cpu_system_ms(outcome.usage.cpu_system.count());
  usage->set_peak_memory_bytes(outcome.usage.peak_memory_bytes);
  usage->set_peak_processes(outcome.usage.peak_processes);
  usage->set_network_connections(result.network.usage.connections);
  usage->set_network_refused(result.network.usage.refused);
  usage->set_network_bytes_sent(result.network.usage.bytes_sent);
  usage->set_network_bytes_received(result.network.usage.bytes_received);
  for (const auto& refused : result.network.blocked) {
    v1::ConnectionReport* report = out.add_blocked_connections();
    report->set_destination(to_valid_utf8(refused.destination));
    report->set_reason(to_valid_utf8(refused.reason));
  }
  if (outcome.violation) *out.mutable_violation() = to_report(*outcome.violation);
  for (const auto& blocked : outcome.blocked) *out.add_blocked() = to_report(blocked);
  out.set_blocked_dropped(outcome.blocked_dropped);
  for (const auto& file : result.files) *out.add_files() = to_output_file(file);
  out.mutable_policy()->set_name(result.policy_name);
  out.mutable_policy()->set_hash(result.policy_hash);
  out.set_runtime(result.runtime);
  out.set_summary(to_valid_utf8(result.summary));
  if (outcome.setup_error) {
    v1::SetupFailure* setup = out.mutable_setup();
    setup->set_operation(to_valid_utf8(outcome.setup_error->operation));
    const int error_number = outcome.setup_error->error_number;
    if (error_number != 0) setup->set_errno_name(sandbox::errno_name(error_number));
    setup->set_errno_number(error_number);
  }
  std::string reason = outcome.reason;
  if (reason.empty() && outcome.setup_error) reason = outcome.setup_error->message();
  out.set_reason(to_valid_utf8(reason));
  if (outcome.timeout == sandbox::TimeoutKind::wall) out.set_timeout("wall");
  if (outcome.timeout == sandbox::TimeoutKind::cpu) out.set_timeout("cpu");
  return out;
}

v1::RuntimeInfo to_runtime_info(const runner::Runtime& runtime) {
  v1::RuntimeInfo out;
  out.set_name(runtime.name);
  out.set_description(runtime.description);
  out.set_source_file(runtime.source_file);
  out.set_compiled(!runtime.compile.empty());
  return out;
}

v1::PolicyInfo to_policy_info(const policies::Policy& policy, bool with_canonical) {
  v1::PolicyInfo out;
  out.set_name(policy.name);
  out.set_description(to_valid_utf8(policy.description));
  out.set_hash(policy.hash);
  for (const auto& runtime : policy.runtimes) out.add_runtimes(runtime);
  for (const auto& parent : policy.extends_chain) out.add_extends(parent);
  const sandbox::Limits& limits = policy.limits;
  v1::EffectiveLimits* effective = out.mutable_limits();
  effective->set_wall_time(policies::format_duration(limits.wall_time));
  effective->set_cpu_time(policies::format_duration(limits.cpu_time));
  effective->set_memory(policies::format_bytes(limits.memory_max_bytes));
  effective->set_processes(limits.max_processes);
  effective->set_open_files(limits.max_open_files);
  effective->set_file_size(policies::format_bytes(limits.file_size_max_bytes));
  effective->set_tmp_size(policies::format_bytes(limits.tmp_size_bytes));
  effective->set_workdir_size(policies::format_bytes(limits.workdir_size_bytes));
  effective->set_cpu_millicores(limits.cpu_millicores);
  effective->set_output_kept(policies::format_bytes(policy.output.kept_bytes));
  effective->set_on_output_overflow(
      policy.output.on_overflow == policies::OverflowAction::kill ? "kill" : "truncate");
  out.set_network(policy.network);
  for (const auto& entry : policy.unsafe) {
    out.add_unsafe(to_valid_utf8(entry.what + ": " + entry.justification));
  }
  if (with_canonical) out.set_effective(to_valid_utf8(policy.canonical));
  return out;
}

}  // namespace airlock::api
