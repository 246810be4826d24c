// Fuzzes request bodies in both wire formats: decode_request_body as the handlers call it, a
// round trip of what it accepted through both formats (what the service echoes back must parse
// back to the same request), and the body as a POST /v1/executions to the pure Api, which turns
// a decoded request into a job under a policy; its answer must decode (check_answer). The first
// input byte picks the Content-Type and the message type; the rest is the body.
#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <cstdlib>
#include <iostream>

#include "api/wire/wire.h"
#include "fuzz_api.h"

namespace {

using airlock::api::WireFormat;

airlock::fuzz::FuzzApi& fuzz_api() {
  static auto* instance = new airlock::fuzz::FuzzApi(/*with_key=*/false);
  return *instance;
}

constexpr const char* kContentTypes[] = {
    "application/json", "application/x-protobuf", "application/x-www-form-urlencoded",
    nullptr,  // no Content-Type: read as JSON
};

// Encodes message in `format` and decodes it again; it must come back equal. Fields of a newer
// schema that binary protobuf carries along are not compared: JSON has no place for them.
void check_round_trip(const google::protobuf::Message& decoded, WireFormat format) {
  std::unique_ptr<google::protobuf::Message> message(decoded.New());
  message->CopyFrom(decoded);
  message->DiscardUnknownFields();
  std::string wire = airlock::api::encode(*message, format);
  std::unique_ptr<google::protobuf::Message> again(message->New());
  if (auto problem = airlock::api::decode(wire, format, *again)) {
    std::cerr << "a decoded message does not decode again: " << problem->message() << "\n"
              << wire << "\n";
    std::abort();
  }
  if (!google::protobuf::util::MessageDifferencer::Equals(*message, *again)) {
    std::cerr << "a round trip changed the message:\n" << message->DebugString() << "\n"
              << again->DebugString() << "\n";
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  auto& fuzz = fuzz_api();
  const uint8_t selector = data[0];
  const char* content_type = kContentTypes[selector % 4];
  const bool session_request = (selector / 4) % 2 == 1;

  airlock::api::HttpRequest request;
  request.method = "POST";
  request.target = session_request ? "/v1/sessions" : "/v1/executions";
  if (content_type != nullptr) request.headers.emplace_back("Content-Type", content_type);
  request.body.assign(reinterpret_cast<const char*>(data + 1), size - 1);
  request.peer = "127.0.0.1:1";

  airlock::api::v1::ExecutionRequest execution;
  airlock::api::v1::SessionRequest session;
  google::protobuf::Message& message =
      session_request ? static_cast<google::protobuf::Message&>(session) : execution;
  int status = 0;
  auto problem = airlock::api::decode_request_body(request, fuzz.config.max_body_bytes, message,
                                                   status, airlock::api::EmptyBody::invalid);
  if (problem) {
    if (status < 400 || status > 499) std::abort();  // a bad body is the client's error
  } else {
    check_round_trip(message, WireFormat::json);
    check_round_trip(message, WireFormat::protobuf);
  }
  // Sessions are off in the harness (they need a sandbox); executions go as far as a job.
  if (session_request) return 0;
  airlock::api::Dispatch dispatch = fuzz.api.handle(request);
  if (auto* response = std::get_if<airlock::api::HttpResponse>(&dispatch)) {
    airlock::fuzz::check_answer(*response, request.path());
  }
  return 0;
}
