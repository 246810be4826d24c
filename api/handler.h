// The pure request handling of the execution API: one HTTP request in, one response out (or an
// execution for the transport to start). No sockets here; the transport only moves bytes. Api
// admits a request (Host, Origin, key) and routes it to its protocol: the REST API (api/rest/),
// MCP (api/mcp/), or the service's own /healthz, /readyz, /metrics and /version.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "api/transport/admission.h"
#include "api/transport/byte_stream.h"
#include "api/auth.h"
#include "api/config.h"
#include "api/execution_service.h"
#include "api/executor.h"
#include "api/transport/http_types.h"
#include "api/metrics.h"
#include "api/policy_source.h"
#include "policies/audit_log.h"
#include "runner/sessions.h"
#include "runner/workspaces.h"

namespace airlock::api {

struct ApiContext {
  const ServeConfig& config;
  Executor& executor;
  PolicySource& policies;
  ExecutionService& executions;
  const Authenticator& auth;
  Metrics& metrics;
  runner::SessionManager* sessions = nullptr;  // null: the service offers no sessions
  // E2B-compatible workspaces (api/e2b/); null: /e2b/ answers that they are off.
  runner::WorkspaceManager* workspaces = nullptr;
  // Told of every request answered 401 or 403 (for the audit log), on the thread that handled
  // it, which may be an I/O thread: it must not block.
  std::function<void(const policies::RefusalRecord&)> on_refused = {};
  // Told of every workspace created or killed through the E2B API (for the audit log); must
  // not block.
  std::function<void(const policies::WorkspaceRecord&)> on_workspace = {};
};

// A validated, authorized execution request, ready to submit.
struct PendingExecution {
  Job job;
  WireFormat format = WireFormat::json;  // of the final result (non-streaming)
  bool stream = false;                   // the client asked for server-sent events
  // When set (MCP), makes the answer from the final event instead of final_event_response.
  std::function<HttpResponse(const v1::Event& final_event)> respond;
  // When set (MCP), makes the answer to a start the service refused (a full queue, shutdown)
  // from the refusal's message, instead of the HTTP error response.
  std::function<HttpResponse(const std::string& message)> refused;
  // MCP: how much of stdout and stderr together the tool result holds (head and tail).
  uint64_t tool_output_budget = 0;
};

// A plain response, an execution to start, or a body made over time (E2B's streams).
using Dispatch = std::variant<HttpResponse, PendingExecution, StreamingResponse>;

class Api {
 public:
  explicit Api(ApiContext context) : context_(context) {}
  virtual ~Api() = default;

  // Routes one request. Never throws for any input; a bug inside becomes a 500. Virtual so that
  // the transport's tests can answer with streams of their own.
  virtual Dispatch handle(const HttpRequest& request) const;

  // The answer to a request whose head (method, target, headers) is refused: a wrong Host or
  // Origin, a missing API key, a body type the API does not read, a path or method no handler
  // takes (refuse_route). nullopt: read its body and
  // handle it. handle() checks the same again; the transport asks first so that a refused
  // request's body is never read.
  std::optional<HttpResponse> refuse_head(const HttpRequest& head) const;

  // Whether handling the request may wait on a sandbox's agent (E2B's sandbox traffic): the
  // transport gives such requests threads of their own. Virtual for the transport's tests.
  virtual bool waits_on_sandbox(const HttpRequest& head) const;

  // Submits an execution; on success the observer gets its events and the id comes back, else
  // the response that refuses it (429 with Retry-After when the queue is full, 503 on shutdown).
  std::variant<std::string, HttpResponse> start(PendingExecution pending,
                                                std::shared_ptr<ExecutionObserver> observer) const;

  // Ready to take executions: accepting, policies loaded, runtimes configured.
  bool ready(std::vector<std::string>& problems) const;

 private:
  // The request's identity, or the answer refusing it (Host, Origin, key), noted for the audit log.
  std::variant<Identity, HttpResponse> admit_or_refuse(const HttpRequest& request) const;
  // The answer to a request whose path and method alone refuse it (an unknown path, a method or
  // a body the service's own paths do not take, sandbox traffic that names no sandbox), so that
  // its body is never read; nullopt: read it.
  std::optional<HttpResponse> refuse_route(const HttpRequest& head) const;
  // Which protocol's handler takes a request: api/rest/, api/mcp/, or the service's own paths.
  Dispatch route(const HttpRequest& request, const Identity& identity) const;
  // Passes a 401 or 403 answer to context_.on_refused; `key` is the caller's, when known.
  void note_refusal(const HttpRequest& request, const HttpResponse& response,
                    const std::string& key) const;

  ApiContext context_;
};

}  // namespace airlock::api
