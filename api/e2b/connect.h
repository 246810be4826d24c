// The Connect protocol (connectrpc.com/docs/protocol), as far as E2B's envd services need it:
// unary calls and server streams over HTTP/1.1 POST, in JSON or binary protobuf, without
// compression. Pure functions from requests to bytes and back; envd.cc decides what to say.
#pragma once

#include <google/protobuf/message.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "api/transport/http_types.h"

namespace airlock::api::e2b::connect {

// How messages are put on the wire: proto3 JSON (what E2B's JS SDK sends) or binary protobuf.
enum class Encoding { json, proto };

// The largest request message read (before base64 decoding of its bytes fields). Agent lines are
// at most 8 MiB, so a larger stdin chunk could not be passed on anyway.
inline constexpr size_t kMaxRequestMessageBytes = 4 * 1024 * 1024;
// Connect-Timeout-Ms values beyond this are treated as this (Connect allows up to 10 digits).
inline constexpr std::chrono::milliseconds kMaxTimeout = std::chrono::hours(24);

// Envelope flags of the streaming protocols.
inline constexpr uint8_t kFlagCompressed = 0x01;
inline constexpr uint8_t kFlagEndStream = 0x02;

// A Connect error: a code from Connect's list ("not_found", "invalid_argument", ...) and a message
// for people.
struct Error {
  std::string code;
  std::string message;
};

// The HTTP status Connect gives a unary error with this code (unknown codes: 500).
int http_status(std::string_view code);
// True for one of Connect's sixteen codes.
bool is_code(std::string_view code);

// The encoding a Content-Type names for a unary call (application/json, application/proto) or
// for a streaming call (application/connect+json, application/connect+proto); parameters such
// as "; charset=utf-8" are allowed. nullopt: not one this call type reads.
std::optional<Encoding> unary_encoding(std::string_view content_type);
std::optional<Encoding> streaming_encoding(std::string_view content_type);
std::string_view unary_content_type(Encoding encoding);
std::string_view streaming_content_type(Encoding encoding);

// Reads a request message: the body itself (unary) or the one envelope the body must be
// (streaming). JSON fields the message does not know are ignored, as Connect asks. On failure
// the error says why (invalid_argument; resource_exhausted when it is too large).
std::optional<Error> parse_unary_request(std::string_view body, Encoding encoding,
                                         google::protobuf::Message& message);
std::optional<Error> parse_streaming_request(std::string_view body, Encoding encoding,
                                             google::protobuf::Message& message);

// A message's bytes in an encoding (JSON with lowerCamelCase names, default values left out).
std::string encode(const google::protobuf::Message& message, Encoding encoding);

// A unary answer: 200 with the message, or the error's status with its JSON body (always JSON,
// whatever the request's encoding, as Connect specifies).
HttpResponse unary_response(const google::protobuf::Message& message, Encoding encoding);
HttpResponse unary_error(const Error& error);

// One streaming envelope: flags, the payload's length (4 bytes, big-endian), the payload.
std::string envelope(uint8_t flags, std::string_view payload);
// A message envelope of a server stream.
std::string stream_message(const google::protobuf::Message& message, Encoding encoding);
// The end-of-stream envelope that must close every server stream: `{}` on success, else
// `{"error":{"code":..,"message":..}}` (JSON in both encodings).
std::string end_of_stream(const std::optional<Error>& error);
// A whole server-stream answer that is only its end (an error found before any message):
// 200, the streaming content type, the end-of-stream envelope.
HttpResponse streaming_error(const Error& error, Encoding encoding);

// The deadline the client asked for in Connect-Timeout-Ms (at most kMaxTimeout), or nullopt
// when absent or malformed.
std::optional<std::chrono::milliseconds> requested_timeout(const HttpRequest& request);

}  // namespace airlock::api::e2b::connect
