#include "api/rest/responses.h"

#include <catch2/catch.hpp>

#include "api/wire/wire.h"

using namespace airlock::api;

TEST_CASE("an SSE frame names the event, carries the sequence as id, and is one data line") {
  v1::Event event;
  event.set_sequence(7);
  event.set_execution_id("ex_1");
  event.mutable_stdout()->set_data("line one\nline two\n");
  std::string frame = sse_frame(event);
  CHECK(frame.starts_with("event: stdout\nid: 7\ndata: {"));
  CHECK(frame.ends_with("}\n\n"));
  // Exactly the three header lines and the blank line: no raw newline inside the data.
  CHECK(std::count(frame.begin(), frame.end(), '\n') == 4);
}

TEST_CASE("a final exit answers 200 with the result; a final error 500") {
  v1::Event exit;
  exit.set_execution_id("ex_1");
  exit.mutable_exit()->mutable_result()->set_status("timeout");
  HttpResponse ok = final_event_response(exit, WireFormat::json);
  CHECK(ok.status == 200);
  CHECK(ok.body.find("\"status\":\"timeout\"") != std::string::npos);
  CHECK(is_final(exit));

  v1::Event error;
  error.mutable_error()->set_code("internal");
  CHECK(final_event_response(error, WireFormat::json).status == 500);
  CHECK(event_name(error) == "error");
}

TEST_CASE("a final invalid_request error answers 400") {
  v1::Event error;
  error.set_execution_id("ex_1");
  *error.mutable_error() = make_error(
      "invalid_request", "files[0].path: 'big.bin' (2 MiB) does not fit the working directory",
      "files[0].path");
  HttpResponse refused = final_event_response(error, WireFormat::json);
  CHECK(refused.status == 400);
  CHECK(refused.body.find("\"field\":\"files[0].path\"") != std::string::npos);
  CHECK(refused.body.find("\"code\":\"invalid_request\"") != std::string::npos);
}
