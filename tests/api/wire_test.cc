#include "api/wire/wire.h"

#include "api/wire/json.h"
#include "api/wire/text.h"

#include <catch2/catch.hpp>

#include "api/e2b/envd/process.pb.h"

using namespace airlock::api;

TEST_CASE("a JSON request is read with snake_case names") {
  v1::ExecutionRequest request;
  auto error = decode(R"J({"language":"python","code":"print(1)","limits":{"wall_time":"5s"},
                          "output":{"max_bytes":100,"files":["*.png"]}})J",
                      WireFormat::json, request);
  REQUIRE_FALSE(error);
  CHECK(request.runtime() == "python");
  CHECK(request.limits().wall_time() == "5s");
  CHECK(request.output().max_bytes() == 100);
  CHECK(request.output().files(0) == "*.png");
}

TEST_CASE("an unknown field is a 400 that names it") {
  v1::ExecutionRequest request;
  auto error = decode(R"({"language":"python","cod":"x"})", WireFormat::json, request);
  REQUIRE(error);
  CHECK(error->code() == "invalid_json");
  CHECK(error->field() == "cod");
  CHECK(error->message() == "cod: unknown field \"cod\"");
}

TEST_CASE("a value of the wrong type names its field path") {
  v1::ExecutionRequest request;
  auto error = decode(R"({"files":[{"path":1}]})", WireFormat::json, request);
  REQUIRE(error);
  CHECK(error->field() == "files[0].path");
  CHECK(error->message().starts_with("files[0].path: invalid value 1"));
}

TEST_CASE("a value of the wrong type says what would be valid") {
  v1::ExecutionRequest request;
  auto error = decode(R"({"limits":{"wall_time":5}})", WireFormat::json, request);
  REQUIRE(error);
  CHECK(error->field() == "limits.wall_time");
  CHECK(error->message() ==
        "limits.wall_time: invalid value 5; expected a duration with a unit, as a string, e.g. "
        "\"10 s\" or \"500ms\"");
  error = decode(R"({"limits":{"memory":268435456}})", WireFormat::json, request);
  REQUIRE(error);
  CHECK(error->message() ==
        "limits.memory: invalid value 268435456; expected a size with a unit, as a string, e.g. "
        "\"256 MiB\"");
  error = decode(R"({"output":{"max_bytes":"1 MiB"}})", WireFormat::json, request);
  REQUIRE(error);
  CHECK(error->message() ==
        "output.max_bytes: invalid value \"1 MiB\"; expected a whole number of bytes, e.g. 65536");
}

TEST_CASE("malformed JSON says what is wrong on one line") {
  v1::ExecutionRequest request;
  for (const char* body : {R"({"language": "py",)", "[1]", "", "{\"stdin\":\"\\ud800\"}"}) {
    auto error = decode(body, WireFormat::json, request);
    REQUIRE(error);
    CHECK(error->code() == "invalid_json");
    CHECK(error->message().find('\n') == std::string::npos);
  }
}

TEST_CASE("binary protobuf round-trips and garbage is refused") {
  v1::ExecutionRequest request;
  request.set_runtime("bash");
  request.set_code("echo hi");
  std::string bytes = encode(request, WireFormat::protobuf);
  v1::ExecutionRequest back;
  REQUIRE_FALSE(decode(bytes, WireFormat::protobuf, back));
  CHECK(back.code() == "echo hi");
  CHECK(decode("\xff\xff\xff", WireFormat::protobuf, back));
}

TEST_CASE("JSON output keeps field names and default values") {
  v1::ExecutionResult result;
  result.set_status("ok");
  std::string json = encode(result, WireFormat::json);
  CHECK(json.find("\"exit_code\":0") != std::string::npos);
  CHECK(json.find("\"stdout_dropped_bytes\":0") != std::string::npos);
  CHECK(json.find('\n') == std::string::npos);
}

TEST_CASE("counters and times are JSON numbers, not strings") {
  v1::Event event;
  event.set_sequence(7);
  v1::ExecutionResult* result = event.mutable_exit()->mutable_result();
  result->set_stdout_bytes(12345678901ULL);
  result->mutable_usage()->set_wall_time_ms(1500);
  result->mutable_usage()->set_peak_memory_bytes(5ULL << 30);
  result->set_exit_code(-1);
  std::string json = encode(event, WireFormat::json);
  CHECK(json.find("\"sequence\":7,") != std::string::npos);
  CHECK(json.find("\"stdout_bytes\":12345678901,") != std::string::npos);
  CHECK(json.find("\"wall_time_ms\":1500,") != std::string::npos);
  CHECK(json.find("\"peak_memory_bytes\":5368709120,") != std::string::npos);
  CHECK(json.find("\"exit_code\":-1,") != std::string::npos);
  // Only the set member of a oneof, and no unset message (no "violation" without one).
  CHECK(json.find("\"stdout\":{") == std::string::npos);
  CHECK(json.find("\"violation\"") == std::string::npos);
  CHECK(json.find("\"blocked\":[]") != std::string::npos);
  v1::SessionInfo session;
  session.set_executions(3);
  CHECK(encode(session, WireFormat::json).find("\"executions\":3,") != std::string::npos);

  // What a client sends back parses to the same message.
  v1::Event back;
  REQUIRE_FALSE(decode(json, WireFormat::json, back));
  CHECK(back.SerializeAsString() == event.SerializeAsString());
}

TEST_CASE("strings are escaped so the JSON stays one valid line") {
  v1::ExecutionResult result;
  result.set_stdout(std::string("a\"b\\c\nd\te\x01" "f\xc3\xa9", 13));
  result.set_stderr(std::string("bad \xff byte"));
  std::string json = encode(result, WireFormat::json);
  CHECK(json.find('\n') == std::string::npos);
  v1::ExecutionResult back;
  REQUIRE_FALSE(decode(json, WireFormat::json, back));
  CHECK(back.stdout() == result.stdout());
  CHECK(back.stderr() == "bad \xef\xbf\xbd byte");
}

TEST_CASE("a request names the runtime as runtime or, as before, language") {
  v1::ExecutionRequest request;
  REQUIRE_FALSE(decode(R"({"runtime":"python"})", WireFormat::json, request));
  CHECK(request.runtime() == "python");
  REQUIRE_FALSE(decode(R"({"language":"bash"})", WireFormat::json, request));
  CHECK(request.runtime() == "bash");
  CHECK(encode(request, WireFormat::json).find("\"runtime\":\"bash\"") != std::string::npos);
}

TEST_CASE("a request nested 100,000 deep is refused before it is parsed") {
  // Before the depth check, protobuf's parser spent minutes on this ~200 KB body.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  v1::ExecutionRequest request;
  auto error = decode(R"({"language":"python","code":"1","args":)" + deep + "}",
                      WireFormat::json, request);
  REQUIRE(error);
  CHECK(error->message().find("nest deeper than 64 levels") != std::string::npos);

  std::string problem;
  CHECK_FALSE(json::parse(R"({"jsonrpc":"2.0","id":1,"params":)" + deep + "}", problem));
  CHECK(problem.find("nest deeper") != std::string::npos);
}

TEST_CASE("a JSON syntax error is one line that quotes none of the input") {
  // Found by tests/fuzz/mcp_fuzzer: protobuf quotes the bytes around the error on further lines,
  // cut anywhere, and /mcp put them into its answer, which was then not utf-8 (not JSON).
  std::string problem;
  CHECK_FALSE(json::parse("{\"a\":\"b\"\xc1\xb4\xff\x02``}", problem));
  CHECK_FALSE(problem.empty());
  CHECK(problem.find('\n') == std::string::npos);
  CHECK(is_valid_utf8(problem));
}

TEST_CASE("an error that quotes bytes that are not utf-8 is repaired and still encoded") {
  // Found by tests/fuzz/http_request_fuzzer: an Origin or a path with a stray byte went into
  // the message, JSON encoding failed (a 4xx answer said "internal") and binary protobuf
  // carried a string that clients refuse to parse.
  v1::ErrorResponse response;
  *response.mutable_error() =
      make_error("origin_forbidden", "the origin \"http://\xff\" is not accepted", "a\xfe");
  CHECK(is_valid_utf8(response.error().message()));
  CHECK(is_valid_utf8(response.error().field()));
  const std::string json = encode(response, WireFormat::json);
  CHECK(json.find("origin_forbidden") != std::string::npos);
  v1::ErrorResponse decoded;
  CHECK_FALSE(decode(encode(response, WireFormat::protobuf), WireFormat::protobuf, decoded));
  CHECK(decoded.error().code() == "origin_forbidden");
}

TEST_CASE("nesting depth ignores brackets inside strings and allows ordinary documents") {
  CHECK_FALSE(json::syntax_problem(R"({"code":"[[[[[[[[[[[[[[[[[[[[\"[[[["})", 2));
  CHECK_FALSE(json::syntax_problem(R"({"a":[{"b":[1]}]})", 4));
  CHECK(json::syntax_problem(R"({"a":[{"b":[1]}]})", 3));
  std::string value;
  CHECK(json::parse(R"({"a":[{"b":[1,"]]]]"]}]})", value));
}

TEST_CASE("deep nesting behind a single-quoted string is refused before protobuf parses it") {
  // protobuf's parser takes 'single-quoted' strings; a depth check that knew only double quotes
  // took the '"' below for the start of a string and never counted the brackets after it, and
  // protobuf then spent minutes on them.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string hidden = "['\"'," + deep + "]";
  v1::ExecutionRequest request;
  auto error = decode(R"({"language":"python","code":"1","args":)" + hidden + "}", WireFormat::json,
                      request);
  REQUIRE(error);
  CHECK(error->code() == "invalid_json");
  CHECK(error->message() ==
        "malformed JSON: strings must be in double quotes, not single (at "
        "byte 40)");
  std::string problem;
  CHECK_FALSE(json::parse(R"({"jsonrpc":"2.0","id":1,"params":)" + hidden + "}", problem));
  CHECK(problem.find("double quotes, not single") != std::string::npos);
}

TEST_CASE("only standard JSON reaches protobuf, each departure named") {
  auto problem = [](std::string_view text) { return json::syntax_problem(text).value_or(""); };
  CHECK(problem("{code: 1}") == "an object's keys must be strings in double quotes (at byte 1)");
  CHECK(problem("[1,]") == "a ',' may not come before ']' (at byte 3)");
  CHECK(problem(R"({"a":1,})") == "a ',' may not come before '}' (at byte 7)");
  CHECK(problem("[1] // note") == "more follows the JSON value (at byte 4)");
  CHECK(problem("[/* note */ 1]") == "JSON has no comments (at byte 1)");
  CHECK(problem("[01]") == "a number may not start with 0 (at byte 2)");
  CHECK(problem("[NaN]") ==
        "expected a value: an object, array, string, number, true, false or null (at byte 1)");
  CHECK(problem("[\"a\tb\"]").starts_with("a control character in a string must be escaped"));
  CHECK(problem(R"(["\x"])") == "\\x is not an escape JSON has (at byte 2)");
  CHECK(problem(R"({"a" 1})") == "expected ':' after an object's key (at byte 5)");
  CHECK(problem(R"(["open)") == "a string is not closed (at byte 6)");
  CHECK(problem("[1") == "the text ends before its value does (at byte 2)");
  CHECK(problem("  ") == "the text is empty; expected a JSON value (at byte 2)");
  for (std::string_view good : {R"({"a":[1,-2.5e+3,0,true,false,null,"\u00e9\n"],"b":{}})", "[]",
                                " 7 ", R"("text")", "-0.0E-1"}) {
    INFO(good);
    CHECK_FALSE(json::syntax_problem(good));
  }
}

TEST_CASE("a key given twice in one object is refused, named, instead of the last one winning") {
  v1::ExecutionRequest request;
  auto error = decode(R"j({"language":"python","code":"print(1)","code":"print(2)"})j",
                      WireFormat::json, request);
  REQUIRE(error);
  CHECK(error->message() ==
        "malformed JSON: the key \"code\" appears twice in one object (at byte 39)");
  CHECK_FALSE(json::syntax_problem(R"({"a":{"b":1},"c":{"b":2},"b":[{"b":3}]})"));
}

TEST_CASE("a key is the same key however it is spelled: escaped, or by a field's other name") {
  auto problem = [](std::string_view text, const google::protobuf::Descriptor* schema = nullptr) {
    return json::syntax_problem(text, json::kMaxJsonDepth, schema).value_or("");
  };
  // Escapes decode before keys are compared, surrogate pairs included.
  CHECK(problem(R"({"a":1,"\u0061":2})") ==
        "the key \"\\u0061\" names what \"a\" named before it in one object (at byte 7)");
  CHECK(problem("{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}").starts_with("the key \"\xf0"));
  CHECK(problem(R"({"a\nb":1,"a\u000Ab":2})").starts_with("the key \"a\\u000Ab\" names"));
  CHECK(problem(R"({"a\/":4,"a/":5})").starts_with("the key \"a/\" names what \"a\\/\" named"));
  // Lone surrogates are keys of their own, apart from the pair they would make.
  CHECK_FALSE(json::syntax_problem(R"({"\ud83d":1,"\ude00":2,"\ud83d\ude00":3})"));

  // A field by its name and by its JSON name: protobuf would have run the last one given.
  const auto* request = v1::ExecutionRequest::descriptor();
  CHECK(problem(R"({"language":"python","code":"x","runtime":"node"})", request) ==
        "the key \"runtime\" names what \"language\" named before it in one object (at byte 32)");
  CHECK(problem(R"({"code":"x","limits":{"wall_time":"1s","wallTime":"9s"}})", request)
            .starts_with("the key \"wallTime\" names what \"wall_time\" named"));
  // In each element of a repeated message, and in a map's message values.
  CHECK(problem(R"({"files":[{"name":"a"},{"name":"b","content":"","name":"c"}]})", request)
            .starts_with("the key \"name\" appears twice"));
  CHECK_FALSE(json::syntax_problem(R"({"files":[{"name":"a"},{"name":"b"}],"limits":{}})",
                                   json::kMaxJsonDepth, request));
  // A map's keys are its own, not fields: "cwd" and "Cwd" are two variables.
  const auto* start = process::StartRequest::descriptor();
  CHECK_FALSE(json::syntax_problem(R"({"process":{"cmd":"env","envs":{"cwd":"1","Cwd":"2"}}})",
                                   json::kMaxJsonDepth, start));
  CHECK(problem(R"({"process":{"cmd":"a","envs":{"A":"1","\u0041":"2"}}})", start)
            .starts_with("the key \"\\u0041\" names what \"A\" named"));
  // A repeated message field given one object alone, or as arrays in an array (protobuf takes
  // both), is still read as that message.
  const auto* result = v1::ExecutionResult::descriptor();
  CHECK(problem(R"({"files":{"size_bytes":1,"sizeBytes":2}})", result)
            .starts_with("the key \"sizeBytes\" names what \"size_bytes\" named"));
  CHECK(problem(R"({"files":[[{"media_type":"a","mediaType":"b"}]]})", result)
            .starts_with("the key \"mediaType\" names what \"media_type\" named"));
  // A key that decodes to what a field's number looks like inside is a key of its own.
  CHECK_FALSE(
      json::syntax_problem(R"({"code":"x","\u00002":1,"f2":1})", json::kMaxJsonDepth, request));
  // Unknown keys and free-form values (Struct) are compared as decoded text.
  CHECK(problem(R"({"code":"x","colour":1,"colour":2})", request)
            .starts_with("the key \"colour\" appears twice"));

  // Through decode, as every JSON request body is read.
  v1::ExecutionRequest decoded;
  auto error = decode(R"j({"language":"python","code":"print(1)","runtime":"node"})j",
                      WireFormat::json, decoded);
  REQUIRE(error);
  CHECK(error->code() == "invalid_json");
}

TEST_CASE("the keys open objects hold are capped, so a body of short keys costs bounded memory") {
  auto with_keys = [](int count, bool nested) {
    std::string text = nested ? "{\"n\":{" : "{";
    for (int i = 0; i < count; ++i)
      text += "\"k" + std::to_string(i) + "\":" + (i + 1 < count ? "1," : "1");
    return text + (nested ? "}}" : "}");
  };
  CHECK_FALSE(json::syntax_problem(with_keys(99'999, false)));
  CHECK(json::syntax_problem(with_keys(100'001, false))
            .value_or("")
            .starts_with("the objects open here hold more than 100000 keys"));
  CHECK(json::syntax_problem(with_keys(100'000, true))
            .value_or("")
            .starts_with("the objects open here hold more than 100000 keys"));
  // Keys of objects already closed no longer count.
  std::string many = "[";
  for (int i = 0; i < 30; ++i) many += (i ? "," : "") + with_keys(10'000, false);
  CHECK_FALSE(json::syntax_problem(many + "]"));
}

TEST_CASE("the values a text holds are capped, so a body of short elements costs bounded memory") {
  auto with_zeros = [](size_t count) {
    std::string text = R"({"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":[)";
    for (size_t i = 0; i < count; ++i) text += i ? ",0" : "0";
    return text + "]}}";
  };
  // The object, its three scalars, params' object and its array: six before the zeros.
  CHECK_FALSE(json::syntax_problem(with_zeros(500'000 - 6)));
  CHECK(json::syntax_problem(with_zeros(500'000 - 5))
            .value_or("")
            .starts_with("the text holds more than 500000 values"));
  // Before, 8 million zeros (16 MiB) were parsed into as many protobuf Values.
  std::string error;
  CHECK_FALSE(json::parse(with_zeros(8'000'000), error));
  CHECK(error.starts_with("the text holds more than 500000 values"));
}
