// The HTTP side of sessions (/v1/sessions...): create, inspect, list, close, run an execution in
// one (the same request, result and event stream as /v1/executions), and move files in and out of
// its working directory. Pure request handling; the session manager does the work.
#pragma once

#include "api/auth.h"
#include "api/handler.h"
#include "api/transport/http_types.h"
#include "api/job_builder.h"

namespace airlock::api {

// Handles any path under /v1/sessions for an authenticated identity.
Dispatch handle_sessions(const ApiContext& context, const HttpRequest& request,
                         const Identity& identity, WireFormat format);

// The wire view of a session.
v1::SessionInfo to_session_info(const runner::SessionInfo& info);

// Makes the job of an execution in a session: the session's runtime and policy, its lease (so a
// second one is refused with 409 until this one is done) and the session's own runner. Fails with
// the status and error to answer.
std::variant<Job, JobRefusal> build_session_job(const ApiContext& context,
                                                       const Identity& identity,
                                                       const std::string& session_id,
                                                       v1::ExecutionRequest message);

// The HTTP status for a session manager's refusal.
int status_for(runner::SessionRefusal refusal);
std::string code_for(runner::SessionRefusal refusal);

}  // namespace airlock::api
