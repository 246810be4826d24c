// The REST API's one-shot executions (/v1/executions...): run one (its result, or its events as
// they come), look up a recent result, cancel a queued or running one. Pure request handling; the
// execution service does the work.
#pragma once

#include "api/auth.h"
#include "api/handler.h"
#include "api/transport/http_types.h"

namespace airlock::api {

// Handles /v1/executions and any path under it for an authenticated identity.
Dispatch handle_executions(const ApiContext& context, const HttpRequest& request,
                           const Identity& identity, WireFormat format);

}  // namespace airlock::api
