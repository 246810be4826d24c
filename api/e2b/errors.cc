#include "api/e2b/errors.h"

#include "api/rest/sessions.h"
#include "api/wire/json.h"

namespace airlock::api::e2b {

HttpResponse error(int status, const std::string& message) {
  return HttpResponse{status,
                      "application/json",
                      {},
                      json::print(json::object(
                          {{"code", json::number(status)}, {"message", json::string(message)}}))};
}

int status_for(runner::SessionRefusal refusal) {
  // The REST API's statuses, but that E2B's SDKs know only "not found" for a lost sandbox.
  return refusal == runner::SessionRefusal::lost ? 404 : api::status_for(refusal);
}

HttpResponse refused(const runner::SessionError& refusal) {
  std::string message = refusal.message;
  if (!refusal.field.empty() && message.find(refusal.field) == std::string::npos) {
    message = refusal.field + ": " + message;
  }
  return error(status_for(refusal.refusal), message);
}

int status_for_agent_code(const std::string& code) {
  if (code == "not_found") return 404;
  if (code == "invalid_argument" || code == "failed_precondition") return 400;
  if (code == "permission_denied") return 403;
  if (code == "already_exists") return 409;
  if (code == "resource_exhausted") return 507;
  if (code == "too_many_waits") return 429;
  if (code == "unimplemented") return 501;
  if (code == "unavailable") return 502;
  if (code == "deadline_exceeded") return 504;
  return 500;
}

}  // namespace airlock::api::e2b
