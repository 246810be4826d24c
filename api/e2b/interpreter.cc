#include "api/e2b/interpreter.h"

#include <future>
#include <mutex>

#include "api/e2b/agent.h"
#include "api/e2b/errors.h"
#include "api/e2b/sandbox_slots.h"
#include "policies/sha256.h"

namespace airlock::api::e2b {
namespace {

// One /execute: the agent's events for the run, carried to the writer once the transport gives
// one (events that come before are kept until then). The subscription's callbacks hold it only
// weakly; the StreamingResponse holds it, so it lives as long as the stream.
struct RunStream {
  std::mutex mutex;
  std::shared_ptr<ByteStreamWriter> writer;
  std::string early;  // lines that came before the writer
  bool ended = false;
  std::unique_ptr<runner::Workspace::Subscription> subscription;
  std::shared_ptr<runner::Workspace> workspace;
  std::string run_id;

  // With the lock held: sends a line, or keeps it for the writer.
  void emit(std::string line, bool last) {
    if (ended) return;
    if (last) ended = true;
    if (!writer) {
      early += line;
      return;
    }
    if (!writer->write(std::move(line)) || last) {
      ended = true;
      writer->end();
    }
  }
};

bool is_end_of_execution(std::string_view event) {
  std::string problem;
  auto parsed = json::parse(event, problem);
  return parsed && json::string_field(*parsed, "type") == "end_of_execution";
}

std::string sandbox_ended_line() {
  return json::print(json::object(
             {{"type", json::string("error")},
              {"name", json::string("SandboxEnded")},
              {"value", json::string("the sandbox ended before the code finished")},
              {"traceback", json::string("")}})) +
         "\n";
}

// What the audit log says ran: the language (or context), the code's size and its sha256.
std::string run_summary(const json::Value& run) {
  const std::string code = json::string_field(run, "code").value_or("");
  const auto context = json::string_field(run, "context_id");
  const std::string where =
      context ? "context " + *context : json::string_field(run, "language").value_or("python");
  return where + ", " + std::to_string(code.size()) + " bytes, sha256 " +
         policies::sha256_hex(code);
}

Dispatch execute(const HttpRequest& request, std::shared_ptr<runner::Workspace> workspace,
                 const AuditWorkspace& audit) {
  const std::string run_id = new_run_id();
  auto run = code_run_request(request.body, run_id);
  if (auto* refusal = std::get_if<HttpResponse>(&run)) return std::move(*refusal);
  if (audit) audit("workspace_code", run_summary(std::get<json::Value>(run)));

  auto wait = begin_agent_wait(*workspace);
  if (auto* refused = std::get_if<std::string>(&wait)) return error(429, *refused);
  auto state = std::make_shared<RunStream>();
  state->workspace = workspace;
  state->run_id = run_id;
  std::weak_ptr<RunStream> weak = state;
  // The reply decides the status (404 for an unknown context); the subscription is made in the
  // reply's callback, before any event of the run can come.
  auto replied = std::make_shared<std::promise<AgentResult>>();
  auto reply = replied->get_future();
  workspace->call(json::print(std::get<json::Value>(run)),
                  [weak, replied, workspace](runner::AgentReply answer) {
                    AgentResult result = parse_reply(answer);
                    auto stream = weak.lock();
                    if (result.ok && stream) {
                      auto on_event = [weak](std::string_view event) {
                        auto stream = weak.lock();
                        if (!stream) return;
                        std::lock_guard lock(stream->mutex);
                        stream->emit(std::string(event) + "\n", is_end_of_execution(event));
                      };
                      auto on_end = [weak] {
                        auto stream = weak.lock();
                        if (!stream) return;
                        std::lock_guard lock(stream->mutex);
                        stream->emit(sandbox_ended_line(), true);
                      };
                      auto subscription =
                          workspace->subscribe("r:" + stream->run_id, on_event, on_end);
                      std::lock_guard lock(stream->mutex);
                      stream->subscription = std::move(subscription);
                    }
                    replied->set_value(std::move(result));
                  });
  if (reply.wait_for(kAgentReplyTimeout) != std::future_status::ready) {
    return error(502, "the sandbox did not start the code in time");
  }
  AgentResult result = reply.get();
  if (!result.ok) return error(status_for_agent_code(result.code), result.message);

  StreamingResponse stream;
  stream.head = HttpResponse{200, "application/x-ndjson", {}, ""};
  stream.keepalive = std::string(kExecuteKeepalive);
  stream.keepalive_interval = kExecuteKeepaliveInterval;
  stream.start = [state](std::shared_ptr<ByteStreamWriter> writer) {
    std::lock_guard lock(state->mutex);
    state->writer = writer;
    if (!state->early.empty() && !writer->write(std::move(state->early))) state->ended = true;
    state->early.clear();
    if (state->ended) writer->end();
  };
  // Nobody reads the rest: the run is interrupted (its context lives on).
  stream.on_client_gone = [state] {
    std::lock_guard lock(state->mutex);
    if (state->ended) return;
    state->ended = true;
    state->workspace->call(
        json::print(json::object({{"op", json::string("code.interrupt")},
                                  {"run_id", json::string(state->run_id)}})),
        [](runner::AgentReply) {});
  };
  return stream;
}

HttpResponse agent_json(runner::Workspace& workspace, const json::Value& request,
                        const char* field, int status = 200) {
  AgentResult result = ask(workspace, request);
  if (!result.ok) return error(status_for_agent_code(result.code), result.message);
  if (!field) return HttpResponse{status, "application/json", {}, ""};
  const json::Value* value = json::field(result.body, field);
  if (!value) return error(502, std::string("the sandbox's reply has no ") + field);
  return HttpResponse{status, "application/json", {}, json::print(*value)};
}

std::variant<json::Value, HttpResponse> body_object(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return json::object({});
  std::string problem;
  auto parsed = json::parse(body, problem);
  if (!parsed) return error(400, "invalid JSON body: " + problem);
  if (!parsed->has_struct_value()) return error(400, "the body must be a JSON object");
  return std::move(*parsed);
}

HttpResponse contexts(const HttpRequest& request, std::string_view rest,
                      runner::Workspace& workspace) {
  const std::string& method = request.method;
  if (rest.empty()) {
    if (method == "GET") {
      return agent_json(workspace, json::object({{"op", json::string("ctx.list")}}), "contexts");
    }
    if (method != "POST") return error(405, "use GET or POST on /contexts");
    auto body = body_object(request.body);
    if (auto* refusal = std::get_if<HttpResponse>(&body)) return std::move(*refusal);
    const json::Value& fields = std::get<json::Value>(body);
    json::Value create = json::object({{"op", json::string("ctx.create")},
                                       {"language", json::string("python")}});
    for (const char* name : {"language", "cwd"}) {
      const json::Value* value = json::field(fields, name);
      if (!value || value->kind_case() == json::Value::kNullValue) continue;
      if (!value->has_string_value()) return error(400, std::string(name) + ": expected a string");
      json::set(create, name, *value);
    }
    return agent_json(workspace, create, "context");
  }
  std::string_view id = rest.substr(1);
  const bool restart = id.ends_with("/restart");
  if (restart) id.remove_suffix(std::string_view("/restart").size());
  if (id.empty() || id.size() > 128 || id.find('/') != std::string_view::npos) {
    return error(404, "no such context");
  }
  const json::Value context_id = json::string(std::string(id));
  if (restart && method == "POST") {
    return agent_json(workspace,
                      json::object({{"op", json::string("ctx.restart")}, {"context_id", context_id}}),
                      nullptr, 204);
  }
  if (!restart && method == "DELETE") {
    return agent_json(workspace,
                      json::object({{"op", json::string("ctx.remove")}, {"context_id", context_id}}),
                      nullptr, 204);
  }
  return error(405, "use DELETE on /contexts/{id} and POST on /contexts/{id}/restart");
}

}  // namespace

std::variant<json::Value, HttpResponse> code_run_request(std::string_view body,
                                                         const std::string& run_id) {
  if (body.size() > kMaxCodeBytes + 64 * 1024) {
    return error(413, "the code is larger than " + std::to_string(kMaxCodeBytes) + " bytes");
  }
  auto parsed = body_object(body);
  if (auto* refusal = std::get_if<HttpResponse>(&parsed)) return std::move(*refusal);
  const json::Value& fields = std::get<json::Value>(parsed);
  auto code = json::string_field(fields, "code");
  if (!code) return error(400, "code: required, a string");
  if (code->size() > kMaxCodeBytes) {
    return error(413, "code: larger than " + std::to_string(kMaxCodeBytes) + " bytes");
  }
  json::Value run = json::object({{"op", json::string("code.run")},
                                  {"run_id", json::string(run_id)},
                                  {"code", json::string(*code)},
                                  {"context_id", json::null()},
                                  {"language", json::null()},
                                  {"envs", json::object({})}});
  auto optional_string = [&](const char* name, const char* as) -> std::optional<HttpResponse> {
    const json::Value* value = json::field(fields, name);
    if (!value || value->kind_case() == json::Value::kNullValue) return std::nullopt;
    if (!value->has_string_value()) return error(400, std::string(name) + ": expected a string");
    json::set(run, as, *value);
    return std::nullopt;
  };
  if (auto refusal = optional_string("context_id", "context_id")) return *refusal;
  if (auto refusal = optional_string("language", "language")) return *refusal;
  if (json::field(fields, "context_id") && json::field(fields, "language") &&
      json::field(fields, "context_id")->has_string_value() &&
      json::field(fields, "language")->has_string_value()) {
    return error(400, "context_id and language: give one, not both");
  }
  if (const json::Value* envs = json::field(fields, "env_vars");
      envs && envs->kind_case() != json::Value::kNullValue) {
    if (!envs->has_struct_value()) return error(400, "env_vars: expected an object of strings");
    for (const auto& [name, value] : envs->struct_value().fields()) {
      if (!value.has_string_value()) return error(400, "env_vars." + name + ": expected a string");
    }
    json::set(run, "envs", *envs);
  }
  return run;
}

Dispatch handle_interpreter(const HttpRequest& request, const std::string& path,
                            std::shared_ptr<runner::Workspace> workspace, AuditWorkspace audit) {
  if (path == "/execute") {
    if (request.method != "POST") return error(405, "use POST on /execute");
    return execute(request, std::move(workspace), audit);
  }
  if (path == "/contexts" || path.starts_with("/contexts/")) {
    return contexts(request, std::string_view(path).substr(std::string_view("/contexts").size()),
                    *workspace);
  }
  return error(404, "the code interpreter has no path " + path);
}

}  // namespace airlock::api::e2b
