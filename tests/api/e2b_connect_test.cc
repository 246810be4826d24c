#include "api/e2b/connect.h"

#include <catch2/catch.hpp>

#include "api/e2b/envd/filesystem.pb.h"
#include "api/e2b/envd/process.pb.h"

using namespace airlock::api;
using namespace airlock::api::e2b;
using connect::Encoding;

TEST_CASE("an envelope is a flag byte, a big-endian length and the payload") {
  CHECK(connect::envelope(0, "{}") == std::string("\x00\x00\x00\x00\x02{}", 7));
  const std::string big(0x010203, 'x');
  const std::string framed = connect::envelope(0, big);
  CHECK(framed.substr(0, 5) == std::string("\x00\x00\x01\x02\x03", 5));
  CHECK(framed.size() == big.size() + 5);
}

TEST_CASE("the end of a stream is flagged 0x02 and carries {} or the error as JSON") {
  CHECK(connect::end_of_stream(std::nullopt) == std::string("\x02\x00\x00\x00\x02{}", 7));
  const std::string payload = R"({"error":{"code":"not_found","message":"no such pid"}})";
  CHECK(connect::end_of_stream(connect::Error{"not_found", "no such pid"}) ==
        std::string("\x02\x00\x00\x00", 4) + static_cast<char>(payload.size()) + payload);
}

TEST_CASE("unary errors take Connect's HTTP status and a JSON body") {
  CHECK(connect::http_status("invalid_argument") == 400);
  CHECK(connect::http_status("not_found") == 404);
  CHECK(connect::http_status("already_exists") == 409);
  CHECK(connect::http_status("permission_denied") == 403);
  CHECK(connect::http_status("resource_exhausted") == 429);
  CHECK(connect::http_status("failed_precondition") == 400);
  CHECK(connect::http_status("unimplemented") == 501);
  CHECK(connect::http_status("unavailable") == 503);
  CHECK(connect::http_status("deadline_exceeded") == 504);
  CHECK(connect::http_status("internal") == 500);
  CHECK(connect::http_status("made_up") == 500);
  const HttpResponse response = connect::unary_error({"not_found", "path not found"});
  CHECK(response.status == 404);
  CHECK(response.content_type == "application/json");
  CHECK(response.body == R"({"code":"not_found","message":"path not found"})");
}

TEST_CASE("content types name the encoding, with or without parameters") {
  CHECK(connect::unary_encoding("application/json") == Encoding::json);
  CHECK(connect::unary_encoding("Application/JSON; charset=utf-8") == Encoding::json);
  CHECK(connect::unary_encoding("application/proto") == Encoding::proto);
  CHECK_FALSE(connect::unary_encoding("application/connect+json"));
  CHECK_FALSE(connect::unary_encoding("text/plain"));
  CHECK(connect::streaming_encoding("application/connect+json") == Encoding::json);
  CHECK(connect::streaming_encoding("application/connect+proto") == Encoding::proto);
  CHECK_FALSE(connect::streaming_encoding("application/json"));
}

TEST_CASE("JSON requests ignore unknown fields and accept proto names") {
  process::StartRequest request;
  REQUIRE_FALSE(connect::parse_unary_request(
      R"({"process":{"cmd":"/bin/ls","args":["-l"]},"stdin":false,"fromTheFuture":1})",
      Encoding::json, request));
  CHECK(request.process().cmd() == "/bin/ls");
  CHECK(request.has_stdin());
  CHECK_FALSE(request.stdin());
  filesystem::WatchDirRequest watch;
  REQUIRE_FALSE(
      connect::parse_unary_request(R"({"path":"/x","include_entry":true})", Encoding::json, watch));
  CHECK(watch.include_entry());
}

TEST_CASE("a malformed request is invalid_argument, an oversized one resource_exhausted") {
  process::ListRequest request;
  auto error = connect::parse_unary_request("{not json", Encoding::json, request);
  REQUIRE(error);
  CHECK(error->code == "invalid_argument");
  error = connect::parse_unary_request("\xff\xff\xff", Encoding::proto, request);
  REQUIRE(error);
  CHECK(error->code == "invalid_argument");
  error = connect::parse_unary_request(std::string(connect::kMaxRequestMessageBytes + 1, ' '),
                                       Encoding::json, request);
  REQUIRE(error);
  CHECK(error->code == "resource_exhausted");
  error = connect::parse_unary_request(std::string(100, '[') + std::string(100, ']'),
                                       Encoding::json, request);
  REQUIRE(error);
  CHECK(error->code == "invalid_argument");
}

TEST_CASE("a JSON request with deep nesting behind a single-quoted string is refused") {
  // protobuf's parser takes 'single-quoted' strings, which a depth check that knew only double
  // quotes did not: it never counted the brackets after the '"'.
  process::ListRequest request;
  auto error = connect::parse_unary_request(
      "{\"path\":['\"'," + std::string(100000, '[') + std::string(100000, ']') + "]}",
      Encoding::json, request);
  REQUIRE(error);
  CHECK(error->code == "invalid_argument");
  CHECK(error->message ==
        "request is not standard JSON: strings must be in double quotes, not single (at byte 9)");
}

TEST_CASE("a streaming request is exactly one uncompressed envelope") {
  process::StartRequest request;
  const std::string message = R"({"process":{"cmd":"/bin/true"}})";
  REQUIRE_FALSE(
      connect::parse_streaming_request(connect::envelope(0, message), Encoding::json, request));
  CHECK(request.process().cmd() == "/bin/true");
  for (const std::string& bad :
       {std::string("\x00\x00\x00", 3), connect::envelope(0, message) + "x",
        connect::envelope(0, message).substr(0, 10), connect::envelope(1, message),
        connect::envelope(2, message)}) {
    auto error = connect::parse_streaming_request(bad, Encoding::json, request);
    REQUIRE(error);
    CHECK(error->code == "invalid_argument");
  }
  process::StartRequest binary;
  binary.mutable_process()->set_cmd("/bin/true");
  REQUIRE_FALSE(connect::parse_streaming_request(connect::envelope(0, binary.SerializeAsString()),
                                                 Encoding::proto, request));
  CHECK(request.process().cmd() == "/bin/true");
}

TEST_CASE("messages print as proto3 JSON with lowerCamelCase names and int64 as strings") {
  filesystem::EntryInfo entry;
  entry.set_name("a");
  entry.set_size(12);
  entry.set_symlink_target("b");
  entry.mutable_modified_time()->set_seconds(1735689600);
  CHECK(connect::encode(entry, Encoding::json) ==
        R"({"name":"a","size":"12","modifiedTime":"2025-01-01T00:00:00Z","symlinkTarget":"b"})");
  const HttpResponse response = connect::unary_response(entry, Encoding::proto);
  CHECK(response.status == 200);
  CHECK(response.content_type == "application/proto");
  CHECK(response.body == entry.SerializeAsString());
}

TEST_CASE("Connect-Timeout-Ms is read as milliseconds, bounded, and ignored when malformed") {
  HttpRequest request;
  CHECK_FALSE(connect::requested_timeout(request));
  request.headers = {{"connect-timeout-ms", "60000"}};
  CHECK(connect::requested_timeout(request) == std::chrono::milliseconds(60000));
  request.headers = {{"Connect-Timeout-Ms", "9999999999"}};
  CHECK(connect::requested_timeout(request) == connect::kMaxTimeout);
  request.headers = {{"Connect-Timeout-Ms", "12s"}};
  CHECK_FALSE(connect::requested_timeout(request));
  request.headers = {{"Connect-Timeout-Ms", "12345678901"}};
  CHECK_FALSE(connect::requested_timeout(request));
}
