#include "api/e2b/errors.h"

#include "api/wire/json.h"

namespace airlock::api::e2b {

HttpResponse error(int status, const std::string& message) {
  return HttpResponse{
      status, "application/json", {},
      json::print(json::object({{"code", json::number(status)}, {"message", json::string(message)}}))};
}

int status_for(runner::SessionRefusal refusal) {
  switch (refusal) {
    case runner::SessionRefusal::too_many_sessions:
    case runner::SessionRefusal::too_many_for_owner:
      return 429;
    case runner::SessionRefusal::invalid:
      return 400;
    case runner::SessionRefusal::not_found:
    case runner::SessionRefusal::lost:  // the SDK knows only "not found"
      return 404;
    case runner::SessionRefusal::elsewhere:
      return 421;
    case runner::SessionRefusal::busy:
      return 409;
    case runner::SessionRefusal::shutting_down:
      return 503;
    case runner::SessionRefusal::setup_failed:
      return 500;
  }
  return 500;
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
  if (code == "unimplemented") return 501;
  if (code == "unavailable") return 502;
  if (code == "deadline_exceeded") return 504;
  return 500;
}

}  // namespace airlock::api::e2b
