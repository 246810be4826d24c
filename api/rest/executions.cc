#include "api/rest/executions.h"

#include "api/job_builder.h"
#include "api/rest/responses.h"
#include "api/wire/wire.h"

namespace airlock::api {
namespace {

constexpr std::string_view kExecutions = "/v1/executions";

Dispatch post_execution(const ApiContext& context, const HttpRequest& request,
                        const Identity& identity, WireFormat format) {
  v1::ExecutionRequest message;
  int status = 400;
  if (auto problem = decode_request_body(request, context.config.max_body_bytes, message, status,
                                         EmptyBody::invalid)) {
    return error_response(status, *problem, format);
  }

  PendingExecution pending;
  pending.format = format;
  auto accept = request.header("Accept");
  pending.stream = accept && prefers_event_stream(*accept);
  auto built = build_job(context, identity, message);
  if (auto* refusal = std::get_if<JobRefusal>(&built)) {
    return error_response(refusal->status, refusal->error, format);
  }
  pending.job = std::move(std::get<Job>(built));
  return pending;
}

HttpResponse get_execution(const ApiContext& context, const std::string& id,
                           const Identity& identity, WireFormat format) {
  auto result = context.executions.find(id, identity.key_name);
  if (result) return message_response(200, *result, format);
  std::string why = "results are kept for the last " +
                    std::to_string(context.config.recent_results) + " executions";
  switch (context.executions.id_origin(id)) {
    case runner::IdOrigin::earlier_run:
      return error(410, "result_lost",
                   "the result of execution \"" + id +
                       "\" is lost: the service restarted since it ran, and results are kept in "
                       "memory only",
                   format);
    case runner::IdOrigin::other_replica:
      why = "it ran on another replica; look it up through the balancer, which routes by the id";
      break;
    case runner::IdOrigin::this_run:
    case runner::IdOrigin::not_an_id:
      break;
  }
  return error(404, "not_found", "no execution \"" + id + "\" (" + why + ")", format);
}

HttpResponse delete_execution(const ApiContext& context, const std::string& id,
                              const Identity& identity, WireFormat format) {
  switch (context.executions.cancel(id, identity.key_name)) {
    case ExecutionService::CancelOutcome::cancelled: {
      v1::ExecutionResult state;
      if (auto found = context.executions.find(id, identity.key_name)) state = *found;
      state.set_id(id);
      return message_response(202, state, format);
    }
    case ExecutionService::CancelOutcome::already_finished:
      return error(409, "already_finished",
                   "execution \"" + id + "\" has already finished; GET it for its result", format);
    case ExecutionService::CancelOutcome::not_found:
      break;
  }
  return error(404, "not_found", "no running execution \"" + id + "\"", format);
}

}  // namespace

Dispatch handle_executions(const ApiContext& context, const HttpRequest& request,
                           const Identity& identity, WireFormat format) {
  const std::string_view path = request.path();
  const std::string& method = request.method;
  if (path == kExecutions) {
    if (method != "POST") return method_not_allowed("POST", format);
    return post_execution(context, request, identity, format);
  }
  std::string id(path.substr(kExecutions.size() + 1));
  if (!is_path_name(id)) return error(404, "not_found", "no such execution", format);
  if (method == "GET") return get_execution(context, id, identity, format);
  if (method == "DELETE") return delete_execution(context, id, identity, format);
  return method_not_allowed("GET, DELETE", format);
}

}  // namespace airlock::api
