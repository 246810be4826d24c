// Fuzzes the bytes a client sends on a connection, through the steps api/transport/connection.cc takes: Beast's
// request parser with the transport's limits reads a header, the Api admits or refuses the head
// before any body is read, the parser reads the body, the pure Api handles the whole request, and
// its answer is serialized as the transport writes it. Pipelined requests in one input are read
// one after another, as a connection reads them. Every answer must decode (check_answer).
#include <boost/asio/buffer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdint>
#include <cstdlib>
#include <sstream>

#include "api/transport/server.h"
#include "fuzz_api.h"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;

// A connection that keeps sending requests is cut off long before this many in one input.
constexpr int kMaxRequestsPerInput = 8;

airlock::fuzz::FuzzApi& fuzz_api() {
  static auto* instance = new airlock::fuzz::FuzzApi(/*with_key=*/true);
  return *instance;
}

// Feeds the parser what is left of the input until it has read what it is after (the header when
// not eager, the whole message when eager). False when the input ends first or is malformed:
// the transport then answers 400/413/431 or closes, and nothing reaches the Api.
bool parse(http::request_parser<http::string_body>& parser, net::const_buffer& input) {
  auto finished = [&] { return parser.eager() ? parser.is_done() : parser.is_header_done(); };
  beast::error_code ec;
  while (!finished()) {
    size_t used = parser.put(input, ec);
    input += used;
    if (ec == http::error::need_more || (!ec && used == 0)) {
      ec = {};
      if (used > 0) continue;
      // Nothing more to read: the client stopped sending.
      parser.put_eof(ec);
      return !ec && finished();
    }
    if (ec) return false;
  }
  return true;
}

// The method, target and headers as Session's request_head takes them.
airlock::api::HttpRequest request_head(const http::request<http::string_body>& message) {
  airlock::api::HttpRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  for (const auto& field : message) {
    request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  request.peer = "127.0.0.1:1";
  return request;
}

// What Session::send does with an answer, up to the bytes on the wire.
void send(const airlock::api::HttpResponse& response, std::string_view path, bool keep_alive) {
  airlock::fuzz::check_answer(response, path);
  http::response<http::string_body> message(static_cast<http::status>(response.status), 11);
  message.set(http::field::server, "airlock");
  message.set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) message.set(name, value);
  message.body() = response.body;
  message.keep_alive(keep_alive);
  message.prepare_payload();
  std::ostringstream wire;
  wire << message;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& fuzz = fuzz_api();
  net::const_buffer input(data, size);
  for (int n = 0; n < kMaxRequestsPerInput && input.size() > 0; ++n) {
    // As Session::read_header configures it; async_read_header reads the header alone.
    http::request_parser<http::string_body> parser;
    parser.header_limit(airlock::api::kMaxHeaderBytes);
    parser.body_limit(fuzz.config.max_body_bytes);
    parser.eager(false);
    if (!parse(parser, input)) return 0;
    if (auto length = parser.content_length(); length && *length > fuzz.config.max_body_bytes) {
      return 0;  // 413 before the body
    }
    airlock::api::HttpRequest head = request_head(parser.get());
    if (auto refused = fuzz.api.refuse_head(head)) {
      send(*refused, head.path(), false);
      return 0;
    }
    // async_read reads the rest of the message.
    parser.eager(true);
    if (!parse(parser, input)) return 0;

    http::request<http::string_body> message = parser.release();
    airlock::api::HttpRequest request = request_head(message);
    request.body = std::move(message.body());
    airlock::api::Dispatch dispatch = fuzz.api.handle(request);
    // An execution would be started here; the harness only checks it was accepted whole.
    if (auto* response = std::get_if<airlock::api::HttpResponse>(&dispatch)) {
      send(*response, request.path(), message.keep_alive());
    }
    if (!message.keep_alive()) break;
  }
  return 0;
}
