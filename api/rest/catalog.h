// What the service offers and how it is: runtimes and policies (/v1/runtimes, /v1/policies...),
// /version, /healthz and /readyz. Pure request handling.
#pragma once

#include <string>
#include <vector>

#include "api/auth.h"
#include "api/handler.h"
#include "api/transport/http_types.h"

namespace airlock::api {

// Handles /v1/runtimes, /v1/policies and /v1/policies/{name} for an authenticated identity.
Dispatch handle_catalog(const ApiContext& context, const HttpRequest& request,
                        const Identity& identity, WireFormat format);

// Ready to take executions: accepting, policies loaded, runtimes configured; else the problems.
bool service_ready(const ApiContext& context, std::vector<std::string>& problems);

// /healthz (liveness: always ok) or /readyz (503 with the problems when not ready).
HttpResponse health_response(const ApiContext& context, bool readiness);

// /version: airlock's version, the API's and the MCP revisions it speaks.
HttpResponse version_response(WireFormat format);

}  // namespace airlock::api
