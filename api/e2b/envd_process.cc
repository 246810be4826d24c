// process.Process: commands started, listed, fed, signalled and followed through the agent's
// process.* operations; a started process's output arrives as the agent's p:<pid> events.
#include <cstdint>
#include <string>

#include "api/e2b/envd/process.pb.h"
#include "api/e2b/envd_internal.h"
#include "api/e2b/envd_stream.h"
#include "api/wire/text.h"

namespace airlock::api::e2b::envd {
namespace {

using connect::Error;

Error invalid(std::string message) {
  return {"invalid_argument", std::move(message)};
}

// A pid as the agent wrote it, if it is one.
std::optional<uint32_t> pid_of(const json::Value& reply) {
  const double pid = number_field(reply, "pid", -1);
  if (pid < 1 || pid > UINT32_MAX || pid != static_cast<double>(static_cast<uint32_t>(pid))) {
    return std::nullopt;
  }
  return static_cast<uint32_t>(pid);
}

// Sends one p:<pid> event of the agent as a Start/ConnectResponse; the end event ends the stream.
template <class Response>
void forward_event(ServerStream& stream, std::string_view text) {
  std::string error;
  auto event = json::parse(text, error);
  if (!event || !event->has_struct_value()) {
    return stream.finish(Error{"internal", "the sandbox's agent sent an unreadable event"});
  }
  const std::string type = text_field(*event, "type");
  Response response;
  if (type == "data") {
    auto bytes = base64_decode(text_field(*event, "data"));
    if (!bytes) return stream.finish(Error{"internal", "the sandbox's agent sent bad output"});
    auto* data = response.mutable_event()->mutable_data();
    const std::string name = text_field(*event, "stream");
    if (name == "stdout") {
      data->set_stdout(std::move(*bytes));
    } else if (name == "stderr") {
      data->set_stderr(std::move(*bytes));
    } else {
      return;  // nothing the client could be told about
    }
    stream.send(response);
  } else if (type == "end") {
    auto* end = response.mutable_event()->mutable_end();
    end->set_exit_code(static_cast<int32_t>(number_field(*event, "exit_code", -1)));
    end->set_exited(bool_field(*event, "exited"));
    end->set_status(text_field(*event, "status"));
    // envd reports Go's wait error, the status text, for any exit but a clean one; the SDK's
    // CommandExitError takes its message from it.
    std::string failure = text_field(*event, "error");
    if (failure.empty() && !(end->exited() && end->exit_code() == 0)) failure = end->status();
    if (!failure.empty()) end->set_error(failure);
    stream.send(response);
    stream.finish(std::nullopt);
  }
}

// Subscribes the stream to a process's events and tells the client its pid. Runs in the
// callback of the agent reply that named the pid, so no event of the process is missed.
template <class Response>
void follow(const std::shared_ptr<ServerStream>& stream, runner::Workspace& workspace,
            uint32_t pid) {
  if (!stream->open()) return;  // the client left; the process runs on, as in E2B
  stream->hold(workspace.subscribe(
      "p:" + std::to_string(pid),
      weakly(stream,
             [](ServerStream& s, std::string_view event) { forward_event<Response>(s, event); }),
      weakly(stream, [](ServerStream& s) {
        s.finish(Error{"unavailable", "the sandbox ended while the process ran"});
      })));
  Response start;
  start.mutable_event()->mutable_start()->set_pid(pid);
  stream->send(start);
}

// The reply to a request naming a pid (process.start, process.find): follow that process.
template <class Response>
std::function<void(runner::AgentReply)> follow_reply(std::shared_ptr<ServerStream> stream,
                                                     runner::Workspace& workspace) {
  return [stream, &workspace](runner::AgentReply reply) {
    auto result = read_reply(reply);
    if (auto* error = std::get_if<Error>(&result)) return stream->finish(*error);
    auto pid = pid_of(std::get<json::Value>(result));
    if (!pid) return stream->finish(Error{"internal", "the sandbox's agent named no pid"});
    follow<Response>(stream, workspace, *pid);
  };
}

template <class Response>
Dispatch stream_response(Rpc& rpc, std::function<void(std::shared_ptr<ServerStream>)> begin) {
  auto stream = std::make_shared<ServerStream>(rpc.encoding, rpc.deadline);
  Response keepalive;
  keepalive.mutable_event()->mutable_keepalive();
  return ServerStream::response(stream, rpc, keepalive, std::move(begin));
}

// What the audit log says ran: the command and its arguments, at most 4 KiB of them.
std::string command_line(const process::ProcessConfig& config) {
  constexpr size_t kMaxBytes = 4096;
  std::string line = config.cmd();
  for (const auto& arg : config.args()) line += " " + arg;
  if (line.size() > kMaxBytes)
    line = line.substr(0, kMaxBytes) + " ...(" + std::to_string(line.size()) + " bytes)";
  return line;
}

Dispatch start(Rpc& rpc) {
  process::StartRequest request;
  if (auto error = parse_request(rpc, request)) return fail(rpc, *error);
  if (request.has_pty()) {
    return fail(rpc, {"unimplemented", "airlock does not offer terminals (pty)"});
  }
  const process::ProcessConfig& config = request.process();
  if (config.cmd().empty()) return fail(rpc, invalid("process.cmd is empty"));
  std::vector<json::Value> args;
  for (const auto& arg : config.args()) args.push_back(json::string(arg));
  json::Value envs = json::object({});
  for (const auto& [name, value] : config.envs()) json::set(envs, name, json::string(value));
  json::Value agent =
      json::object({{"op", json::string("process.start")},
                    {"cmd", json::string(config.cmd())},
                    {"args", json::array(std::move(args))},
                    {"envs", std::move(envs)},
                    // envd keeps stdin open unless told otherwise.
                    {"stdin", json::boolean(!request.has_stdin() || request.stdin())}});
  if (config.has_cwd()) json::set(agent, "cwd", json::string(config.cwd()));
  if (request.has_tag()) json::set(agent, "tag", json::string(request.tag()));
  if (rpc.audit) rpc.audit("workspace_process", command_line(config));
  auto workspace = rpc.workspace;
  return stream_response<process::StartResponse>(
      rpc, [workspace, text = json::print(agent)](std::shared_ptr<ServerStream> stream) {
        workspace->call(text, follow_reply<process::StartResponse>(stream, *workspace));
      });
}

Dispatch connect_to(Rpc& rpc) {
  process::ConnectRequest request;
  if (auto error = parse_request(rpc, request)) return fail(rpc, *error);
  const process::ProcessSelector& selector = request.process();
  auto workspace = rpc.workspace;
  if (selector.has_tag()) {
    const std::string text = json::print(json::object(
        {{"op", json::string("process.find")}, {"tag", json::string(selector.tag())}}));
    return stream_response<process::ConnectResponse>(
        rpc, [workspace, text](std::shared_ptr<ServerStream> stream) {
          workspace->call(text, follow_reply<process::ConnectResponse>(stream, *workspace));
        });
  }
  if (!selector.has_pid()) return fail(rpc, invalid("process: give a pid or a tag"));
  // A pid is checked against the running processes; the list's reply comes before any later
  // event, so one that is running then is followed from there on.
  const uint32_t pid = selector.pid();
  return stream_response<process::ConnectResponse>(rpc, [workspace, pid](
                                                            std::shared_ptr<ServerStream> stream) {
    workspace->call(R"({"op":"process.list"})", [stream, workspace, pid](runner::AgentReply reply) {
      auto result = read_reply(reply);
      if (auto* error = std::get_if<Error>(&result)) return stream->finish(*error);
      const json::Value* processes = json::field(std::get<json::Value>(result), "processes");
      if (processes && processes->has_list_value()) {
        for (const auto& process : processes->list_value().values()) {
          if (pid_of(process) == pid) {
            return follow<process::ConnectResponse>(stream, *workspace, pid);
          }
        }
      }
      stream->finish(Error{"not_found", "no running process with pid " + std::to_string(pid)});
    });
  });
}

// The pid a selector names (a tag is looked up), or why there is none.
std::variant<uint32_t, Error> resolve(const Rpc& rpc, const process::ProcessSelector& selector) {
  if (selector.has_pid()) return selector.pid();
  if (!selector.has_tag()) return invalid("process: give a pid or a tag");
  auto result = call_agent(rpc, json::object({{"op", json::string("process.find")},
                                              {"tag", json::string(selector.tag())}}));
  if (auto* error = std::get_if<Error>(&result)) return *error;
  auto pid = pid_of(std::get<json::Value>(result));
  if (!pid) return Error{"internal", "the sandbox's agent named no pid"};
  return *pid;
}

// Sends a request about one process (the op plus `fields`) and answers Response on success.
template <class Response>
Dispatch about_process(Rpc& rpc, const process::ProcessSelector& selector, std::string_view op,
                       std::initializer_list<std::pair<std::string, json::Value>> fields = {}) {
  auto pid = resolve(rpc, selector);
  if (auto* error = std::get_if<Error>(&pid)) return fail(rpc, *error);
  json::Value agent = json::object(
      {{"op", json::string(std::string(op))}, {"pid", json::number(std::get<uint32_t>(pid))}});
  for (const auto& [name, value] : fields) json::set(agent, name, value);
  auto result = call_agent(rpc, agent);
  if (auto* error = std::get_if<Error>(&result)) return fail(rpc, *error);
  return answer(rpc, Response());
}

Dispatch list(Rpc& rpc) {
  process::ListRequest request;
  if (auto error = parse_request(rpc, request)) return fail(rpc, *error);
  auto result = call_agent(rpc, json::object({{"op", json::string("process.list")}}));
  if (auto* error = std::get_if<Error>(&result)) return fail(rpc, *error);
  process::ListResponse response;
  const json::Value* processes = json::field(std::get<json::Value>(result), "processes");
  if (processes && processes->has_list_value()) {
    for (const auto& item : processes->list_value().values()) {
      auto pid = pid_of(item);
      if (!pid) continue;
      process::ProcessInfo* info = response.add_processes();
      info->set_pid(*pid);
      if (auto tag = json::string_field(item, "tag")) info->set_tag(*tag);
      process::ProcessConfig* config = info->mutable_config();
      config->set_cmd(text_field(item, "cmd"));
      if (const json::Value* args = json::field(item, "args"); args && args->has_list_value()) {
        for (const auto& arg : args->list_value().values()) {
          if (arg.has_string_value()) config->add_args(arg.string_value());
        }
      }
      if (const json::Value* envs = json::field(item, "envs"); envs && envs->has_struct_value()) {
        for (const auto& [name, value] : envs->struct_value().fields()) {
          if (value.has_string_value()) (*config->mutable_envs())[name] = value.string_value();
        }
      }
      if (auto cwd = json::string_field(item, "cwd")) config->set_cwd(*cwd);
    }
  }
  return answer(rpc, response);
}

Dispatch send_input(Rpc& rpc) {
  process::SendInputRequest request;
  if (auto error = parse_request(rpc, request)) return fail(rpc, *error);
  if (request.input().has_pty()) {
    return fail(rpc, {"unimplemented", "airlock does not offer terminals (pty)"});
  }
  if (!request.input().has_stdin()) return fail(rpc, invalid("input: give stdin"));
  return about_process<process::SendInputResponse>(
      rpc, request.process(), "process.input",
      {{"data", json::string(base64_encode(request.input().stdin()))}});
}

Dispatch send_signal(Rpc& rpc) {
  process::SendSignalRequest request;
  if (auto error = parse_request(rpc, request)) return fail(rpc, *error);
  int number = 0;
  switch (request.signal()) {
    case process::SIGNAL_SIGKILL:
      number = 9;
      break;
    case process::SIGNAL_SIGTERM:
      number = 15;
      break;
    default:
      return fail(rpc, invalid("signal: SIGNAL_SIGKILL or SIGNAL_SIGTERM"));
  }
  return about_process<process::SendSignalResponse>(rpc, request.process(), "process.signal",
                                                    {{"signal", json::number(number)}});
}

Dispatch close_stdin(Rpc& rpc) {
  process::CloseStdinRequest request;
  if (auto error = parse_request(rpc, request)) return fail(rpc, *error);
  return about_process<process::CloseStdinResponse>(rpc, request.process(), "process.close_stdin");
}

}  // namespace

std::optional<Dispatch> handle_process(std::string_view method, Rpc& rpc) {
  if (method == "Start") return start(rpc);
  if (method == "Connect") return connect_to(rpc);
  if (method == "List") return list(rpc);
  if (method == "SendInput") return send_input(rpc);
  if (method == "SendSignal") return send_signal(rpc);
  if (method == "CloseStdin") return close_stdin(rpc);
  if (method == "Update") {
    return fail(rpc, {"unimplemented", "airlock does not offer terminals (pty) to resize"});
  }
  if (method == "StreamInput") {
    return fail(rpc, {"unimplemented", "client streams are not supported; use SendInput"});
  }
  return std::nullopt;
}

}  // namespace airlock::api::e2b::envd
