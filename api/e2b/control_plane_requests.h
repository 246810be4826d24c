// Reading what E2B's SDKs send the control plane (api/e2b/control_plane.h): the create and timeout
// bodies, and the metadata filter of a list, as the runner's values or as E2B's 400 answer.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "api/transport/http_types.h"

namespace airlock::api::e2b {

// A metadata key that picks the airlock policy of a new sandbox (default: default_policy).
inline constexpr std::string_view kPolicyMetadataKey = "airlock.policy";

// What a create (POST /v2/sandboxes or /sandboxes) asks for.
struct CreateRequest {
  std::string template_id;
  std::optional<std::chrono::milliseconds> timeout;
  std::map<std::string, std::string> metadata;
  std::map<std::string, std::string> env;
  std::string policy;           // from metadata[kPolicyMetadataKey]; empty: the default policy
  bool wants_internet = false;  // allow_internet_access: true, asked for explicitly
};

// True for the templates airlock serves: "base", "code-interpreter-v1" and empty.
bool is_served_template(std::string_view template_id);

// Reads a create body; the answer that refuses it (400, E2B's format) when it is not valid or
// asks for what airlock does not offer.
std::variant<CreateRequest, HttpResponse> parse_create(std::string_view body);

// A timeout body ({"timeout": seconds} or, for /refreshes, {"duration": seconds}); `field` names
// the field. nullopt with an empty problem: absent.
std::optional<std::chrono::milliseconds> parse_seconds(std::string_view body,
                                                       const std::string& field,
                                                       std::string& problem);

// The metadata filter of a list (?metadata=k%3Dv%26k2%3Dv2, each key and value encoded twice by
// the SDK); false when it cannot be decoded.
bool metadata_filter(std::string_view target, std::map<std::string, std::string>& filter);

}  // namespace airlock::api::e2b
