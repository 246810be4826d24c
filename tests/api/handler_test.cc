#include "api/handler.h"

#include <catch2/catch.hpp>

#include <sstream>

#include "api/rest/responses.h"
#include "api/wire/json.h"
#include "api/wire/wire.h"
#include "api_parts.h"

using namespace airlock;
using namespace airlock::api;
using namespace airlock::api::testing;

namespace {

struct Fixture : ApiParts {
  explicit Fixture(std::vector<ApiKey> keys = {{"test", kTestKeyDigest, {"default"}}},
                   size_t max_queued = 4)
      : ApiParts(std::move(keys), max_queued), api(context()) {
    config.max_body_bytes = 4096;
    policies.add(make_policy("default", {"python"}));
    policies.add(make_policy("strict", {"python", "bash"}));
  }

  HttpRequest request(std::string method, std::string target, std::string body = {}) {
    HttpRequest r{std::move(method), std::move(target), {}, std::move(body), "test"};
    r.headers.emplace_back("Authorization", "Bearer test-key");
    if (!r.body.empty()) r.headers.emplace_back("Content-Type", "application/json");
    return r;
  }

  // The request with its Content-Type replaced.
  static HttpRequest typed(HttpRequest r, std::string type) {
    std::erase_if(r.headers, [](const auto& header) { return header.first == "Content-Type"; });
    r.headers.emplace_back("Content-Type", std::move(type));
    return r;
  }

  HttpResponse respond(const HttpRequest& request) {
    Dispatch dispatch = api.handle(request);
    REQUIRE(std::holds_alternative<HttpResponse>(dispatch));
    return std::get<HttpResponse>(dispatch);
  }

  // What the transport does for a non-streaming execution: start it, wait for its final event.
  HttpResponse execute(const HttpRequest& request) {
    Dispatch dispatch = api.handle(request);
    if (auto* response = std::get_if<HttpResponse>(&dispatch)) return *response;
    auto& pending = std::get<PendingExecution>(dispatch);
    WireFormat format = pending.format;
    auto observer = std::make_shared<CollectingObserver>();
    auto started = api.start(std::move(pending), observer);
    if (auto* refusal = std::get_if<HttpResponse>(&started)) return *refusal;
    return final_event_response(observer->wait().back(), format);
  }

  // Starts an execution that runs until executor.release(): with one worker and no queue,
  // every later one is refused. Wait on the returned observer after the release.
  std::shared_ptr<CollectingObserver> occupy_the_worker() {
    auto blocker = std::make_shared<CollectingObserver>();
    auto blocked =
        api.handle(request("POST", "/v1/executions", R"({"language":"python","code":"wait"})"));
    REQUIRE(std::holds_alternative<std::string>(
        api.start(std::move(std::get<PendingExecution>(blocked)), blocker)));
    executor.wait_started(1);
    return blocker;
  }

  Api api;
};

v1::ErrorResponse error_of(const HttpResponse& response) {
  v1::ErrorResponse error;
  REQUIRE_FALSE(decode(response.body, WireFormat::json, error));
  return error;
}

v1::ExecutionResult result_of(const HttpResponse& response) {
  v1::ExecutionResult result;
  REQUIRE_FALSE(decode(response.body, WireFormat::json, result));
  return result;
}

}  // namespace

TEST_CASE("health needs no key; readiness reports problems") {
  Fixture f;
  HttpRequest health{"GET", "/healthz", {}, {}, ""};
  CHECK(f.respond(health).status == 200);
  HttpRequest ready{"GET", "/readyz", {}, {}, ""};
  CHECK(f.respond(ready).status == 200);
  f.service.shutdown(std::chrono::milliseconds(0));
  HttpResponse not_ready = f.respond(ready);
  CHECK(not_ready.status == 503);
  CHECK(not_ready.body.find("shutting down") != std::string::npos);
}

TEST_CASE("an execution without a key is 401, with a wrong key 401") {
  Fixture f;
  HttpRequest request{"POST", "/v1/executions", {}, R"({"language":"python"})", ""};
  HttpResponse response = f.respond(request);
  CHECK(response.status == 401);
  CHECK(error_of(response).error().code() == "unauthorized");
  request.headers.emplace_back("Authorization", "Bearer wrong");
  CHECK(f.respond(request).status == 401);
}

TEST_CASE("a policy the key may not use is 403 and lists the ones it may") {
  Fixture f;
  HttpResponse response =
      f.respond(f.request("POST", "/v1/executions", R"({"language":"python","policy":"strict"})"));
  CHECK(response.status == 403);
  auto error = error_of(response).error();
  CHECK(error.code() == "policy_forbidden");
  REQUIRE(error.valid_size() == 1);
  CHECK(error.valid(0) == "default");
}

TEST_CASE("an unknown runtime is 400 and lists the runtimes the policy allows") {
  Fixture f;
  HttpResponse response = f.respond(f.request("POST", "/v1/executions", R"({"language":"cobol"})"));
  CHECK(response.status == 400);
  auto error = error_of(response).error();
  CHECK(error.code() == "unknown_runtime");
  CHECK(error.field() == "runtime");
  CHECK(std::vector<std::string>(error.valid().begin(), error.valid().end()) ==
        std::vector<std::string>{"python"});
  // bash exists, but policy "default" does not allow it.
  response = f.respond(f.request("POST", "/v1/executions", R"({"language":"bash"})"));
  CHECK(error_of(response).error().message().find("does not allow") != std::string::npos);
}

TEST_CASE("an unknown policy is 400 and lists valid names") {
  Fixture f(std::vector<ApiKey>{});  // no keys: every policy may be named
  HttpResponse response =
      f.respond(f.request("POST", "/v1/executions", R"({"language":"python","policy":"nope"})"));
  CHECK(response.status == 400);
  auto error = error_of(response).error();
  CHECK(error.code() == "unknown_policy");
  CHECK(error.valid_size() == 2);
}

TEST_CASE("malformed bodies are 400 naming the field; other media types 415") {
  Fixture f;
  HttpResponse response =
      f.respond(f.request("POST", "/v1/executions", R"({"language":"python","timeout":5})"));
  CHECK(response.status == 400);
  CHECK(error_of(response).error().field() == "timeout");
  CHECK(f.respond(f.request("POST", "/v1/executions", "{nope")).status == 400);
  HttpRequest xml = Fixture::typed(f.request("POST", "/v1/executions", "<x/>"), "application/xml");
  CHECK(f.respond(xml).status == 415);
}

TEST_CASE("a form post, which a page on another site may send unasked, is never read") {
  Fixture f(std::vector<ApiKey>{});  // no keys: what a page could reach on a developer's machine
  for (const char* type : {"application/x-www-form-urlencoded", "text/plain", "multipart/form-data"}) {
    HttpRequest request{"POST", "/v1/executions", {}, R"({"language":"python","code":"out form"})",
                        "test"};
    request.headers.emplace_back("Content-Type", type);
    HttpResponse response = f.respond(request);
    CHECK(response.status == 415);
    CHECK(error_of(response).error().code() == "unsupported_media_type");
  }
}

TEST_CASE("a request the runner finds invalid is 400 with the runner's words") {
  Fixture f;
  HttpResponse response = f.respond(f.request(
      "POST", "/v1/executions", R"({"language":"python","files":[{"path":"../x","content":""}]})"));
  CHECK(response.status == 400);
  CHECK(error_of(response).error().field() == "files");
}

TEST_CASE("a body over the limit is 413") {
  Fixture f;
  std::string body = R"({"language":"python","code":")" + std::string(5000, 'x') + "\"}";
  CHECK(f.respond(f.request("POST", "/v1/executions", body)).status == 413);
}

TEST_CASE("a JSON execution answers 200 with the result, whatever the program did") {
  Fixture f;
  HttpResponse response = f.execute(f.request(
      "POST", "/v1/executions", R"({"language":"python","code":"out 42\\n\nerr oops\nexit 1"})"));
  CHECK(response.status == 200);
  auto result = result_of(response);
  CHECK(result.status() == "nonzero_exit");
  CHECK(result.stdout() == "42\n");
  CHECK(result.stderr() == "oops");
  CHECK(result.policy().name() == "default");

  HttpResponse again = f.respond(f.request("GET", "/v1/executions/" + result.id()));
  CHECK(again.status == 200);
  CHECK(result_of(again).exit_code() == 1);
}

TEST_CASE("binary protobuf in and out") {
  Fixture f;
  v1::ExecutionRequest message;
  message.set_runtime("python");
  message.set_code("out bin");
  HttpRequest request = Fixture::typed(
      f.request("POST", "/v1/executions", encode(message, WireFormat::protobuf)),
      "application/x-protobuf");
  request.headers.emplace_back("Accept", "application/x-protobuf");
  HttpResponse response = f.execute(request);
  CHECK(response.status == 200);
  CHECK(response.content_type == "application/x-protobuf");
  v1::ExecutionResult result;
  REQUIRE(result.ParseFromString(response.body));
  CHECK(result.stdout() == "bin");
}

TEST_CASE("an event-stream request becomes a streaming execution") {
  Fixture f;
  HttpRequest request = f.request("POST", "/v1/executions", R"({"language":"python"})");
  request.headers.emplace_back("Accept", "text/event-stream");
  Dispatch dispatch = f.api.handle(request);
  REQUIRE(std::holds_alternative<PendingExecution>(dispatch));
  CHECK(std::get<PendingExecution>(dispatch).stream);
}

TEST_CASE("JSON unless the client prefers the event stream") {
  Fixture f;
  auto streams = [&](std::string accept) {
    HttpRequest request = f.request("POST", "/v1/executions", R"({"runtime":"python"})");
    request.headers.emplace_back("Accept", std::move(accept));
    Dispatch dispatch = f.api.handle(request);
    REQUIRE(std::holds_alternative<PendingExecution>(dispatch));
    return std::get<PendingExecution>(dispatch).stream;
  };
  // What many HTTP clients (and MCP's streamable HTTP) send: JSON first, so JSON.
  CHECK_FALSE(streams("application/json, text/event-stream"));
  CHECK_FALSE(streams("text/event-stream;q=0.5, application/json"));
  CHECK_FALSE(streams("*/*"));
  CHECK_FALSE(streams("text/event-stream;q=0, */*"));
  CHECK(streams("text/event-stream, application/json"));
  CHECK(streams("application/json;q=0.9, text/event-stream"));
  CHECK(streams("text/event-stream, */*;q=0.1"));
  CHECK(streams("TEXT/EVENT-STREAM"));
}

TEST_CASE("a request may name the runtime \"language\", its old name") {
  Fixture f;
  for (const char* body : {R"({"runtime":"python","code":"exit 0"})",
                           R"({"language":"python","code":"exit 0"})"}) {
    HttpResponse response = f.execute(f.request("POST", "/v1/executions", body));
    CHECK(response.status == 200);
    CHECK(result_of(response).runtime() == "python");
  }
}

TEST_CASE("a full queue is 429 with Retry-After") {
  Fixture f(std::vector<ApiKey>{}, 0);
  auto blocker = f.occupy_the_worker();
  HttpResponse response =
      f.execute(f.request("POST", "/v1/executions", R"({"language":"python"})"));
  CHECK(response.status == 429);
  bool has_retry_after = false;
  for (const auto& [name, value] : response.headers)
    has_retry_after |= name == "Retry-After" && value == "1";
  CHECK(has_retry_after);
  f.executor.release();
  blocker->wait();
}

TEST_CASE("an MCP run_code that finds the queue full is a tool error, not an HTTP one") {
  Fixture f(std::vector<ApiKey>{}, 0);
  auto blocker = f.occupy_the_worker();
  HttpRequest call = f.request(
      "POST", "/mcp",
      R"json({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"run_code",)json"
      R"json("arguments":{"language":"python","code":"print(1)"}}})json");
  call.headers.emplace_back("Content-Type", "application/json");
  call.headers.emplace_back("Accept", "application/json, text/event-stream");
  HttpResponse response = f.execute(call);
  CHECK(response.status == 200);
  CHECK(response.body.find("\"id\":7") != std::string::npos);
  CHECK(response.body.find("\"isError\":true") != std::string::npos);
  CHECK(response.body.find("queue are full") != std::string::npos);
  f.executor.release();
  blocker->wait();
}

namespace {

HttpRequest mcp_call(Fixture& f, const std::string& tool, const std::string& arguments) {
  HttpRequest call = f.request("POST", "/mcp",
                               R"({"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":")" +
                                   tool + R"(","arguments":)" + arguments + "}}");
  call.headers.emplace_back("Accept", "application/json, text/event-stream");
  return call;
}

}  // namespace

TEST_CASE("an MCP tool names an argument it does not take") {
  Fixture f;
  HttpResponse response =
      f.execute(mcp_call(f, "run_code", R"({"runtime":"python","code":"1","timout":"5s"})"));
  CHECK(response.status == 200);
  CHECK(response.body.find(R"(unknown argument \"timout\"; this tool takes: runtime,)") !=
        std::string::npos);
  response = f.execute(mcp_call(f, "list_runtimes", R"({"verbose":true})"));
  CHECK(response.body.find(R"(unknown argument \"verbose\"; this tool takes: no arguments)") !=
        std::string::npos);
}

TEST_CASE("an MCP id too large to come back unchanged is refused, a string id of any size not") {
  Fixture f;
  auto call = [&](const std::string& id) {
    HttpRequest request =
        f.request("POST", "/mcp", R"({"jsonrpc":"2.0","id":)" + id + R"(,"method":"tools/list"})");
    request.headers.emplace_back("Accept", "application/json, text/event-stream");
    return f.execute(request);
  };
  HttpResponse response = call("9007199254740993");
  CHECK(response.status == 400);
  CHECK(response.body.find("send a larger id as a string") != std::string::npos);
  response = call("9007199254740991");
  CHECK(response.status == 200);
  CHECK(response.body.find(R"("id":9007199254740991)") != std::string::npos);
  response = call(R"("9007199254740993")");
  CHECK(response.status == 200);
  CHECK(response.body.find(R"("id":"9007199254740993")") != std::string::npos);
}

TEST_CASE("an MCP limit error names the argument as the model wrote it") {
  Fixture f;
  HttpResponse response =
      f.execute(mcp_call(f, "run_code", R"({"runtime":"python","code":"1","timeout":"5"})"));
  CHECK(response.body.find("\"isError\":true") != std::string::npos);
  CHECK(response.body.find("timeout: duration '5' has no unit") != std::string::npos);
  CHECK(response.body.find("limits.wall_time") == std::string::npos);
}

TEST_CASE("an MCP run_code takes runtime, and language as its old name") {
  Fixture f;
  for (const char* arguments : {R"({"runtime":"python","code":"exit 0"})",
                                R"({"language":"python","code":"exit 0"})"}) {
    HttpResponse response = f.execute(mcp_call(f, "run_code", arguments));
    CHECK(response.status == 200);
    // The fixture answers with the run's result (the MCP answer is made by the transport).
    CHECK(result_of(response).status() == "ok");
    CHECK(result_of(response).runtime() == "python");
  }
}

TEST_CASE("DELETE cancels a running execution; unknown ids are 404") {
  Fixture f;
  auto observer = std::make_shared<CollectingObserver>();
  auto dispatch =
      f.api.handle(f.request("POST", "/v1/executions", R"({"language":"python","code":"wait"})"));
  auto started = f.api.start(std::move(std::get<PendingExecution>(dispatch)), observer);
  std::string id = std::get<std::string>(started);
  f.executor.wait_started(1);
  CHECK(f.respond(f.request("DELETE", "/v1/executions/" + id)).status == 202);
  CHECK(observer->wait().back().exit().result().status() == "cancelled");
  CHECK(f.respond(f.request("DELETE", "/v1/executions/" + id)).status == 409);
  CHECK(f.respond(f.request("GET", "/v1/executions/ex_nope")).status == 404);
  CHECK(f.respond(f.request("GET", "/v1/executions/a%20b")).status == 404);
}

TEST_CASE("runtimes and policies are listed; a policy shows its effective form and hash") {
  Fixture f;
  v1::RuntimeList runtimes;
  REQUIRE_FALSE(
      decode(f.respond(f.request("GET", "/v1/runtimes")).body, WireFormat::json, runtimes));
  CHECK(runtimes.runtimes_size() == 2);
  v1::PolicyList list;
  REQUIRE_FALSE(decode(f.respond(f.request("GET", "/v1/policies")).body, WireFormat::json, list));
  REQUIRE(list.policies_size() == 1);  // only what this key may use
  CHECK(list.policies(0).name() == "default");
  HttpResponse one = f.respond(f.request("GET", "/v1/policies/default"));
  CHECK(one.status == 200);
  v1::PolicyInfo info;
  REQUIRE_FALSE(decode(one.body, WireFormat::json, info));
  CHECK(info.hash().starts_with("sha256:"));
  CHECK_FALSE(info.effective().empty());
  CHECK(f.respond(f.request("GET", "/v1/policies/strict")).status == 403);
}

TEST_CASE("unknown paths are 404 and wrong methods 405 with Allow") {
  Fixture f;
  CHECK(f.respond(f.request("GET", "/nothing")).status == 404);
  CHECK(f.respond(f.request("GET", "/v1/nothing")).status == 404);
  HttpResponse response = f.respond(f.request("GET", "/v1/executions"));
  CHECK(response.status == 405);
  CHECK(response.headers.at(0) == std::make_pair(std::string("Allow"), std::string("POST")));
}

TEST_CASE("metrics count executions by status and runtime") {
  Fixture f;
  f.execute(f.request("POST", "/v1/executions", R"({"language":"python","code":"exit 0"})"));
  HttpResponse metrics = f.respond(HttpRequest{"GET", "/metrics", {}, {}, ""});
  CHECK(metrics.status == 200);
  CHECK(metrics.body.find("airlock_executions_total{status=\"ok\",runtime=\"python\"} 1") !=
        std::string::npos);
  CHECK(metrics.body.find("airlock_execution_duration_seconds_count{runtime=\"python\"} 1") !=
        std::string::npos);
  CHECK(metrics.body.find("airlock_build_info{version=\"" AIRLOCK_VERSION "\"} 1") !=
        std::string::npos);
}

TEST_CASE("GET /version needs no key and names the version and the API") {
  Fixture f;
  HttpResponse response = f.respond(HttpRequest{"GET", "/version", {}, {}, ""});
  CHECK(response.status == 200);
  CHECK(response.body.find("\"version\":\"" AIRLOCK_VERSION "\"") != std::string::npos);
  CHECK(response.body.find("\"api\":\"v1\"") != std::string::npos);
  CHECK(f.respond(HttpRequest{"DELETE", "/version", {}, {}, ""}).status == 405);
}

TEST_CASE("requests refused for who sent them are reported with the key and the client") {
  Fixture f;
  std::vector<policies::RefusalRecord> refused;
  ApiContext context{f.config, f.executor, f.policies, f.service, f.auth, f.metrics};
  context.on_refused = [&](const policies::RefusalRecord& record) { refused.push_back(record); };
  Api api(context);
  HttpRequest no_key{"POST", "/v1/executions", {}, R"({"language":"python"})", "10.1.2.3:4567"};
  CHECK(std::get<HttpResponse>(api.handle(no_key)).status == 401);
  HttpRequest forbidden = f.request("GET", "/v1/policies/strict");
  forbidden.peer = "10.1.2.3:4568";
  CHECK(std::get<HttpResponse>(api.handle(forbidden)).status == 403);
  CHECK(std::get<HttpResponse>(api.handle(f.request("GET", "/v1/runtimes"))).status == 200);
  HttpRequest head_only{"GET", "/v1/runtimes", {}, {}, "10.1.2.3:4569"};
  CHECK(api.refuse_head(head_only)->status == 401);
  // MCP answers a forbidden policy inside a 200; it is a refusal all the same.
  HttpRequest mcp = f.request(
      "POST", "/mcp",
      R"json({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"run_code",)json"
      R"json("arguments":{"language":"python","code":"1","policy":"strict"}}})json");
  mcp.peer = "10.1.2.3:4570";
  CHECK(std::get<HttpResponse>(api.handle(mcp)).status == 200);
  REQUIRE(refused.size() == 4);
  CHECK(refused[3].status == 403);
  CHECK(refused[3].code == "policy_forbidden");
  CHECK(refused[3].key == "test");
  CHECK(refused[3].client == "10.1.2.3:4570");
  CHECK(refused[3].path == "/mcp");
  refused.pop_back();
  REQUIRE(refused.size() == 3);
  CHECK(refused[0].status == 401);
  CHECK(refused[0].code == "unauthorized");
  CHECK(refused[0].key.empty());
  CHECK(refused[0].client == "10.1.2.3:4567");
  CHECK(refused[0].method == "POST");
  CHECK(refused[0].path == "/v1/executions");
  CHECK(refused[1].status == 403);
  CHECK(refused[1].code == "policy_forbidden");
  CHECK(refused[1].key == "test");
  CHECK(refused[1].path == "/v1/policies/strict");
  CHECK(refused[2].client == "10.1.2.3:4569");
}

TEST_CASE("a request for another host name, as DNS rebinding sends, is refused") {
  Fixture f(std::vector<ApiKey>{});
  f.config.listen_address = "127.0.0.1";
  HttpRequest rebound = f.request("GET", "/v1/runtimes");
  rebound.headers.emplace_back("Host", "attacker.example:8080");
  HttpResponse response = f.respond(rebound);
  CHECK(response.status == 421);
  CHECK(error_of(response).error().code() == "misdirected_request");

  for (const char* host : {"127.0.0.1:8080", "localhost:8080", "[::1]:8080", "LOCALHOST"}) {
    HttpRequest local = f.request("GET", "/v1/runtimes");
    local.headers.emplace_back("Host", host);
    CHECK(f.respond(local).status == 200);
  }
  f.config.allowed_hosts = {"airlock.internal"};
  HttpRequest named = f.request("GET", "/v1/runtimes");
  named.headers.emplace_back("Host", "airlock.internal:8080");
  CHECK(f.respond(named).status == 200);
}

TEST_CASE("a page from another origin is refused on every path, MCP's too") {
  Fixture f(std::vector<ApiKey>{});
  for (const char* path : {"/v1/runtimes", "/v1/sessions/se_0123/files/secret.txt", "/mcp"}) {
    HttpRequest request = f.request("GET", path);
    request.headers.emplace_back("Origin", "https://evil.example");
    HttpResponse response = f.respond(request);
    CHECK(response.status == 403);
    CHECK(response.body.find("not accepted") != std::string::npos);
  }
  HttpRequest local = f.request("GET", "/v1/runtimes");
  local.headers.emplace_back("Origin", "http://127.0.0.1:3000");
  CHECK(f.respond(local).status == 200);
  f.config.allowed_origins = {"https://console.example.com"};
  HttpRequest listed = f.request("GET", "/v1/runtimes");
  listed.headers.emplace_back("Origin", "https://console.example.com");
  CHECK(f.respond(listed).status == 200);
}

TEST_CASE("a refusal that quotes bytes that are not utf-8 is still answered in JSON") {
  // Found by the http_request fuzzer: MCP's refusal printed as `null`, the body unreadable.
  Fixture f(std::vector<ApiKey>{});
  for (const char* path : {"/mcp", "/v1/runtimes"}) {
    HttpRequest request = f.request("GET", path);
    request.headers.emplace_back("Origin", "htt\xc1\xba/1");
    HttpResponse response = f.respond(request);
    CHECK(response.status == 403);
    std::string error;
    auto body = json::parse(response.body, error);
    REQUIRE(body);
    CHECK(body->has_struct_value());
    CHECK(response.body.find("\xef\xbf\xbd") != std::string::npos);  // U+FFFD for the bad bytes
  }
}

TEST_CASE("a refused head is answered without its body") {
  Fixture f;
  HttpRequest head{"POST", "/v1/executions", {}, {}, "test"};
  head.headers.emplace_back("Content-Length", "16000000");
  head.headers.emplace_back("Content-Type", "application/json");
  auto refused = f.api.refuse_head(head);
  REQUIRE(refused);
  CHECK(refused->status == 401);
  head.headers.emplace_back("Authorization", "Bearer test-key");
  CHECK_FALSE(f.api.refuse_head(head));
}

TEST_CASE("a head no handler takes is refused by its path and method alone") {
  Fixture f;
  auto refused = [&](std::string method, std::string target, bool body) {
    HttpRequest head{std::move(method), std::move(target), {}, {}, "test"};
    head.headers.emplace_back("Content-Type", "application/json");
    if (body) head.headers.emplace_back("Content-Length", "16000000");
    auto response = f.api.refuse_head(head);
    return response ? response->status : 0;
  };
  CHECK(refused("POST", "/nothing", true) == 404);
  CHECK(refused("GET", "/nothing", false) == 404);
  CHECK(refused("POST", "/version", true) == 405);
  CHECK(refused("GET", "/metrics", true) == 413);
  CHECK(refused("GET", "/version", false) == 0);
  CHECK(refused("POST", "/e2b/sandbox/files", true) == 501);  // no workspaces here
}

TEST_CASE("an absolute-form target is refused: the service is no proxy") {
  Fixture f;
  HttpRequest head{"GET", "http://localhost/version", {}, {}, "test"};
  auto refused = f.api.refuse_head(head);
  REQUIRE(refused);
  CHECK(refused->status == 400);
  CHECK(refused->body.find("must be a path starting with") != std::string::npos);
  CHECK(f.respond(head).status == 400);
}

TEST_CASE("only E2B's sandbox traffic is handled on the sandbox traffic's threads") {
  Fixture f;
  auto waits = [&](std::string target) {
    return f.api.waits_on_sandbox(HttpRequest{"POST", std::move(target), {}, {}, "test"});
  };
  CHECK(waits("/e2b/sandbox/process.Process/Start"));
  CHECK(waits("/e2b/sandbox/files?path=x"));
  CHECK_FALSE(waits("/e2b/api/sandboxes"));
  CHECK_FALSE(waits("/v1/executions"));
  CHECK_FALSE(waits("/mcp"));
}
