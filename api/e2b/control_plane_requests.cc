// Reading what E2B's SDKs send the control plane: create and timeout bodies, the list's metadata
// filter. Pure translation, apart from control_plane.cc's handlers (which kept that file under
// 400 lines).
#include "api/e2b/control_plane_requests.h"

#include <cmath>

#include "api/e2b/errors.h"
#include "api/e2b/query.h"
#include "api/wire/json.h"

namespace airlock::api::e2b {
namespace {

using std::chrono::milliseconds;

// Longest timeout a body may name before the manager's own bound: keeps the arithmetic sane.
constexpr double kMaxTimeoutSeconds = 100.0 * 24 * 3600;

bool is_null(const json::Value& value) {
  return value.kind_case() == json::Value::kNullValue;
}

// A JSON object of strings, as metadata and envVars are; false (with the problem) otherwise.
bool string_map(const json::Value& value, const std::string& field,
                std::map<std::string, std::string>& out, std::string& problem) {
  if (is_null(value)) return true;
  if (!value.has_struct_value()) {
    problem = field + ": expected an object of strings";
    return false;
  }
  for (const auto& [name, item] : value.struct_value().fields()) {
    if (!item.has_string_value()) {
      problem = field + "." + name + ": expected a string";
      return false;
    }
    out[name] = item.string_value();
  }
  return true;
}

std::optional<json::Value> parse_object(std::string_view body, std::string& problem) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return json::object({});
  }
  auto parsed = json::parse(body, problem);
  if (!parsed) return std::nullopt;
  if (!parsed->has_struct_value()) {
    problem = "the body must be a JSON object";
    return std::nullopt;
  }
  return parsed;
}

}  // namespace

bool is_served_template(std::string_view template_id) {
  return template_id.empty() || template_id == "base" || template_id == "code-interpreter-v1";
}

std::variant<CreateRequest, HttpResponse> parse_create(std::string_view body) {
  std::string problem;
  auto parsed = parse_object(body, problem);
  if (!parsed) return error(400, "invalid JSON body: " + problem);
  CreateRequest out;
  for (const auto& [name, value] : parsed->struct_value().fields()) {
    if (name == "templateID") {
      if (!value.has_string_value()) return error(400, "templateID: expected a string");
      out.template_id = value.string_value();
    } else if (name == "timeout") {
      if (is_null(value)) continue;
      if (!value.has_number_value() || value.number_value() < 1 ||
          value.number_value() > kMaxTimeoutSeconds ||
          value.number_value() != std::floor(value.number_value())) {
        return error(400, "timeout: expected whole seconds, at least 1");
      }
      out.timeout = milliseconds(static_cast<int64_t>(value.number_value()) * 1000);
    } else if (name == "metadata") {
      if (!string_map(value, "metadata", out.metadata, problem)) return error(400, problem);
    } else if (name == "envVars") {
      if (!string_map(value, "envVars", out.env, problem)) return error(400, problem);
    } else if (name == "allow_internet_access") {
      out.wants_internet = value.has_bool_value() && value.bool_value();
    } else if (name == "autoPause") {
      if (value.has_bool_value() && value.bool_value()) {
        return error(400,
                     "autoPause: pausing is not supported by airlock; at its timeout a "
                     "sandbox is killed");
      }
    } else if (name == "mcp" || name == "volumeMounts" || name == "network") {
      const bool empty = is_null(value) ||
                         (value.has_list_value() && value.list_value().values_size() == 0) ||
                         (value.has_struct_value() && value.struct_value().fields_size() == 0);
      if (!empty) {
        return error(400, name + ": not supported by airlock (" +
                              (name == "network" ? "the sandbox's policy decides its network"
                                                 : "not offered") +
                              ")");
      }
    }
    // Other fields (secure, autoResume, iam, ...) change nothing here:
    // the policy decides what a sandbox may reach.
  }
  if (!is_served_template(out.template_id)) {
    return error(400, "template '" + out.template_id +
                          "' is not available on airlock: only 'base' and "
                          "'code-interpreter-v1' (the same workspace)");
  }
  if (auto policy = out.metadata.find(std::string(kPolicyMetadataKey));
      policy != out.metadata.end()) {
    out.policy = policy->second;
  }
  return out;
}

std::optional<milliseconds> parse_seconds(std::string_view body, const std::string& field,
                                          std::string& problem) {
  problem.clear();
  auto parsed = parse_object(body, problem);
  if (!parsed) {
    problem = "invalid JSON body: " + problem;
    return std::nullopt;
  }
  const json::Value* value = json::field(*parsed, field);
  if (!value || is_null(*value)) return std::nullopt;
  if (!value->has_number_value() || value->number_value() < 0 ||
      value->number_value() > kMaxTimeoutSeconds) {
    problem = field + ": expected seconds, at least 0";
    return std::nullopt;
  }
  return milliseconds(static_cast<int64_t>(std::ceil(value->number_value() * 1000)));
}

bool metadata_filter(std::string_view target, std::map<std::string, std::string>& filter) {
  bool malformed = false;
  auto text = query_param(target, "metadata", malformed);
  if (malformed) return false;
  if (!text) return true;
  std::string_view rest = *text;
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t equals = pair.find('=');
    // Form-decoded, then URI-decoded: the SDK encodes each key and value before the form does.
    auto key = percent_decode(pair.substr(0, equals), true);
    auto value =
        percent_decode(equals == std::string_view::npos ? "" : pair.substr(equals + 1), true);
    if (!key || !value) return false;
    auto key2 = percent_decode(*key), value2 = percent_decode(*value);
    if (!key2 || !value2) return false;
    filter[*key2] = *value2;
  }
  return true;
}

}  // namespace airlock::api::e2b
