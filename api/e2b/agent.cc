#include "api/e2b/agent.h"

#include <atomic>
#include <random>

#include "api/e2b/sandbox_slots.h"

namespace airlock::api::e2b {

AgentResult parse_reply(const runner::AgentReply& reply) {
  AgentResult result;
  if (reply.busy) {
    result.code = "too_many_waits";
    result.message = reply.error;
    return result;
  }
  if (!reply.delivered) {
    result.code = "unavailable";
    result.message = reply.error.empty() ? "the sandbox did not answer" : reply.error;
    return result;
  }
  std::string problem;
  auto parsed = json::parse(reply.json, problem);
  if (!parsed || !parsed->has_struct_value()) {
    result.code = "unavailable";
    result.message = "the sandbox's agent answered something unreadable";
    return result;
  }
  const json::Value* ok = json::field(*parsed, "ok");
  if (ok && ok->has_bool_value() && ok->bool_value()) {
    result.ok = true;
    result.body = std::move(*parsed);
    return result;
  }
  const json::Value* failure = json::field(*parsed, "error");
  result.code = failure ? json::string_field(*failure, "code").value_or("internal") : "internal";
  result.message = failure ? json::string_field(*failure, "message").value_or("") : "";
  if (result.message.empty()) result.message = "the sandbox's agent refused the request";
  return result;
}

AgentResult ask(runner::Workspace& workspace, const json::Value& request,
                std::chrono::milliseconds timeout) {
  auto wait = begin_agent_wait(workspace);
  if (auto* refused = std::get_if<std::string>(&wait)) {
    AgentResult result;
    result.code = "too_many_waits";
    result.message = std::move(*refused);
    return result;
  }
  return parse_reply(workspace.call_and_wait(json::print(request), timeout));
}

std::string new_run_id() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 random{std::random_device{}()};
  char text[48];
  std::snprintf(text, sizeof text, "run-%llu-%016llx",
                static_cast<unsigned long long>(++counter),
                static_cast<unsigned long long>(random()));
  return text;
}

}  // namespace airlock::api::e2b
