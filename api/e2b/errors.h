// E2B's error answers: the control plane's and the sandbox's plain HTTP endpoints both answer
// {"code": <the HTTP status, a number>, "message": "..."}; E2B's SDKs read the number (a 404 is
// "sandbox not found") and show the message.
#pragma once

#include <string>

#include "api/transport/http_types.h"
#include "runner/session_registry.h"

namespace airlock::api::e2b {

HttpResponse error(int status, const std::string& message);

// The answer to a workspace manager's refusal: caps are 429 without Retry-After (the SDK would
// retry a hard cap three times otherwise), a gone or unknown workspace 404.
HttpResponse refused(const runner::SessionError& refusal);
int status_for(runner::SessionRefusal refusal);

// The HTTP status of an agent error code (Connect's names: "not_found", ...), for /files and the
// interpreter: not_found 404, invalid_argument 400, resource_exhausted 507 (a full disk),
// too_many_waits 429 (agent.h's ask), ...
int status_for_agent_code(const std::string& code);

}  // namespace airlock::api::e2b
