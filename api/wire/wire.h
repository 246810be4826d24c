// Putting messages on the wire and taking them off: protobuf's standard JSON mapping (snake_case
// names, every field present) or binary protobuf. Parse errors name the field and the problem.
#pragma once

#include <google/protobuf/message.h>

#include <optional>
#include <string>
#include <string_view>

#include "api/airlock.pb.h"
#include "api/transport/http_types.h"

namespace airlock::api {

// A message as JSON on one line (so it fits one SSE data line) or as binary protobuf.
std::string encode(const google::protobuf::Message& message, WireFormat format);

// Fills message from body; on failure, an Error whose `field` and `message` say what is wrong.
std::optional<v1::Error> decode(std::string_view body, WireFormat format,
                                google::protobuf::Message& message);

// An Error value; `valid` lists the names that would have been accepted.
// What an empty request body means for an endpoint.
enum class EmptyBody { invalid, all_defaults };

// Checks a request's body (size, Content-Type: JSON or protobuf) and
// decodes it into message. On a problem, `status` is the HTTP status to answer with.
std::optional<v1::Error> decode_request_body(const HttpRequest& request, uint64_t max_body_bytes,
                                             google::protobuf::Message& message, int& status,
                                             EmptyBody empty);

v1::Error make_error(std::string code, std::string message, std::string field = {},
                     const std::vector<std::string>& valid = {});

}  // namespace airlock::api
