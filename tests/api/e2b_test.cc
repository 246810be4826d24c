// The pure parts of api/e2b/: E2B's JSON in and out of the runner's values, the routing of
// sandbox traffic, multipart uploads, /execute bodies and the error format the SDKs read.
#include <catch2/catch.hpp>

#include "api/config.h"
#include "api/e2b/control_plane.h"
#include "api/e2b/control_plane_requests.h"
#include "api/e2b/errors.h"
#include "api/e2b/files.h"
#include "api/e2b/interpreter.h"
#include "api/e2b/query.h"
#include "api/e2b/router.h"
#include "api/transport/admission.h"

using namespace airlock::api;
using namespace airlock::api::e2b;
using namespace std::chrono_literals;

namespace {

json::Value parsed(const std::string& text) {
  std::string problem;
  auto value = json::parse(text, problem);
  REQUIRE(value);
  return *value;
}

double number(const json::Value& value, const char* name) {
  const json::Value* field = json::field(value, name);
  REQUIRE(field);
  return field->number_value();
}

HttpRequest sandbox_request(std::string target, std::vector<std::pair<std::string, std::string>> headers) {
  HttpRequest request;
  request.method = "POST";
  request.target = std::move(target);
  request.headers = std::move(headers);
  return request;
}

}  // namespace

TEST_CASE("e2b: errors are {code: <status number>, message}") {
  HttpResponse response = e2b::error(404, "sandbox x not found");
  CHECK(response.status == 404);
  auto body = parsed(response.body);
  CHECK(number(body, "code") == 404);
  CHECK(json::string_field(body, "message") == "sandbox x not found");
}

TEST_CASE("e2b: caps are 429 without Retry-After; a lost sandbox is not found") {
  using airlock::runner::SessionRefusal;
  HttpResponse capped = refused({SessionRefusal::too_many_for_owner, "", "4 sandboxes per key"});
  CHECK(capped.status == 429);
  CHECK(capped.headers.empty());
  CHECK(status_for(SessionRefusal::lost) == 404);
  CHECK(status_for(SessionRefusal::invalid) == 400);
  CHECK(status_for_agent_code("resource_exhausted") == 507);
  CHECK(status_for_agent_code("not_found") == 404);
}

TEST_CASE("e2b: a create body becomes a workspace request") {
  auto parsed_create = parse_create(
      R"({"templateID":"code-interpreter-v1","metadata":{"a":"1","airlock.policy":"strict"},)"
      R"("envVars":{"X":"y"},"timeout":3,"secure":true,"allow_internet_access":false})");
  REQUIRE(std::holds_alternative<CreateRequest>(parsed_create));
  const CreateRequest& request = std::get<CreateRequest>(parsed_create);
  CHECK(request.template_id == "code-interpreter-v1");
  CHECK(request.timeout == 3000ms);
  CHECK(request.metadata.at("a") == "1");
  CHECK(request.env.at("X") == "y");
  CHECK(request.policy == "strict");

  auto empty = parse_create("");
  REQUIRE(std::holds_alternative<CreateRequest>(empty));
  CHECK_FALSE(std::get<CreateRequest>(empty).timeout);
}

TEST_CASE("e2b: a template airlock does not serve, or pausing, is a 400 that says what is") {
  auto custom = parse_create(R"({"templateID":"my-template"})");
  REQUIRE(std::holds_alternative<HttpResponse>(custom));
  CHECK(std::get<HttpResponse>(custom).status == 400);
  CHECK(std::get<HttpResponse>(custom).body.find("'base'") != std::string::npos);
  CHECK(std::get<HttpResponse>(parse_create(R"({"templateID":"base","autoPause":true})")).status ==
        400);
  CHECK(std::get<HttpResponse>(parse_create(R"({"timeout":"5"})")).status == 400);
  CHECK(std::get<HttpResponse>(parse_create(R"({"timeout":0})")).status == 400);
  CHECK(std::get<HttpResponse>(parse_create(R"({"envVars":{"X":1}})")).status == 400);
  CHECK(std::get<HttpResponse>(parse_create(R"({"mcp":{"x":{}}})")).status == 400);
  CHECK(std::get<HttpResponse>(parse_create("[1]")).status == 400);
  CHECK(is_served_template("base"));
  CHECK(is_served_template(""));
}

TEST_CASE("e2b: a workspace reads as E2B's Sandbox, ListedSandbox and SandboxDetail") {
  airlock::runner::WorkspaceInfo info;
  info.id = "sb_1";
  info.template_id = "base";
  info.metadata = {{"k", "v"}};
  info.started_at = std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000));
  info.ends_at = info.started_at + 5min;
  info.memory_bytes = 512ull << 20;
  info.disk_bytes = 1ull << 30;
  info.access_token = "tok";
  auto sandbox = sandbox_json(info);
  CHECK(json::string_field(sandbox, "sandboxID") == "sb_1");
  CHECK(json::string_field(sandbox, "envdVersion") == std::string(kEnvdVersion));
  CHECK(json::string_field(sandbox, "envdAccessToken") == "tok");
  CHECK(json::string_field(sandbox, "trafficAccessToken") == "tok");
  auto listed = listed_json(info, false);
  CHECK(json::string_field(listed, "startedAt") == "2023-11-14T22:13:20.000Z");
  CHECK(json::string_field(listed, "endAt") == "2023-11-14T22:18:20.000Z");
  CHECK(number(listed, "memoryMB") == 512);
  CHECK(json::string_field(listed, "state") == "running");
  CHECK_FALSE(json::field(listed, "envdAccessToken"));
  CHECK(json::string_field(listed_json(info, true), "envdAccessToken") == "tok");
}

TEST_CASE("e2b: timeouts are seconds; the list's metadata filter is decoded twice") {
  std::string problem;
  CHECK(parse_seconds(R"({"timeout":5})", "timeout", problem) == 5000ms);
  CHECK(problem.empty());
  CHECK_FALSE(parse_seconds("{}", "timeout", problem));
  CHECK(problem.empty());
  CHECK_FALSE(parse_seconds(R"({"timeout":"x"})", "timeout", problem));
  CHECK_FALSE(problem.empty());

  std::map<std::string, std::string> filter;
  // The SDK's filter {"k y": "v&1"}, as captured on the wire.
  REQUIRE(metadata_filter("/e2b/api/v2/sandboxes?metadata=k%252520y%3Dv%2525261&state=running",
                          filter));
  CHECK(filter == std::map<std::string, std::string>{{"k y", "v&1"}});
  CHECK_FALSE(metadata_filter("/x?metadata=%zz", filter));
}

TEST_CASE("e2b: sandbox traffic is routed by its headers and needs a token") {
  auto target = sandbox_target(sandbox_request(
      "/e2b/sandbox/process.Process/Start",
      {{"E2b-Sandbox-Id", "sb_1"}, {"E2b-Sandbox-Port", "49983"}, {"X-Access-Token", "t"}}));
  REQUIRE(std::holds_alternative<SandboxTarget>(target));
  CHECK(std::get<SandboxTarget>(target).id == "sb_1");
  CHECK(std::get<SandboxTarget>(target).port == kEnvdPort);
  CHECK(std::get<SandboxTarget>(target).path == "/process.Process/Start");

  // The interpreter's /contexts calls send only the traffic token.
  auto contexts = sandbox_target(sandbox_request(
      "/e2b/sandbox/contexts",
      {{"e2b-sandbox-id", "sb_1"}, {"e2b-sandbox-port", "49999"}, {"E2B-Traffic-Access-Token", "t"}}));
  REQUIRE(std::holds_alternative<SandboxTarget>(contexts));
  CHECK(std::get<SandboxTarget>(contexts).token == "t");
  CHECK(std::get<SandboxTarget>(contexts).port == kInterpreterPort);

  auto no_token = sandbox_target(sandbox_request(
      "/e2b/sandbox/files", {{"E2b-Sandbox-Id", "sb_1"}, {"E2b-Sandbox-Port", "49983"}}));
  CHECK(std::get<HttpResponse>(no_token).status == 401);
  auto bad_port = sandbox_target(sandbox_request(
      "/e2b/sandbox/files",
      {{"E2b-Sandbox-Id", "sb_1"}, {"E2b-Sandbox-Port", "22"}, {"X-Access-Token", "t"}}));
  CHECK(std::get<HttpResponse>(bad_port).status == 400);
  CHECK(sandbox_not_found("sb_1").status == 502);
}

TEST_CASE("e2b: the API takes X-API-KEY; sandbox traffic needs no key and any body type") {
  ServeConfig config;
  config.api_keys = {{"agent", "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b",
                      {"*"}}};
  Authenticator auth(config.api_keys);
  HttpRequest list;
  list.method = "GET";
  list.target = "/e2b/api/v2/sandboxes";
  CHECK(std::get<Refusal>(admit(config, auth, list)).status == 401);
  list.headers = {{"X-API-KEY", "wrong"}};
  CHECK(std::get<Refusal>(admit(config, auth, list)).status == 401);

  HttpRequest upload = sandbox_request("/e2b/sandbox/files?path=a",
                                       {{"Content-Type", "multipart/form-data; boundary=x"},
                                        {"Content-Length", "10"}});
  CHECK(std::holds_alternative<Identity>(admit(config, auth, upload)));
  upload.headers.emplace_back("Origin", "https://evil.example");
  CHECK(std::get<Refusal>(admit(config, auth, upload)).status == 403);
}

TEST_CASE("e2b: multipart uploads name their destination in each part's filename") {
  const std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/home/user/a\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\nfirst\r\n"
      "--XyZ\r\ncontent-disposition: form-data; name=\"file\"; filename=\"b%22c\"\r\n\r\n"
      "line\r\nmore\r\n--XyZ--\r\n";
  auto parts = parse_multipart("multipart/form-data; boundary=XyZ", body);
  REQUIRE(std::holds_alternative<std::vector<UploadPart>>(parts));
  const auto& files = std::get<std::vector<UploadPart>>(parts);
  REQUIRE(files.size() == 2);
  CHECK(files[0].filename == "/home/user/a");
  CHECK(files[0].data == "first");
  CHECK(files[1].filename == "b\"c");
  CHECK(files[1].data == "line\r\nmore");
  CHECK(std::holds_alternative<std::string>(parse_multipart("multipart/form-data", body)));
  CHECK(std::holds_alternative<std::string>(
      parse_multipart("multipart/form-data; boundary=XyZ", "--XyZ\r\nno end")));
}

TEST_CASE("e2b: an /execute body becomes the agent's code.run, checked field by field") {
  auto run = code_run_request(R"({"code":"x+1","context_id":"c1","env_vars":{"A":"b"}})", "r1");
  REQUIRE(std::holds_alternative<json::Value>(run));
  const json::Value& request = std::get<json::Value>(run);
  CHECK(json::string_field(request, "op") == "code.run");
  CHECK(json::string_field(request, "run_id") == "r1");
  CHECK(json::string_field(request, "context_id") == "c1");
  CHECK(json::string_field(*json::field(request, "envs"), "A") == "b");
  CHECK(std::get<HttpResponse>(code_run_request("{}", "r")).status == 400);
  CHECK(std::get<HttpResponse>(code_run_request(R"({"code":1})", "r")).status == 400);
  CHECK(std::get<HttpResponse>(
            code_run_request(R"({"code":"1","context_id":"c","language":"python"})", "r"))
            .status == 400);
  CHECK(std::get<HttpResponse>(code_run_request(R"({"code":"1","env_vars":{"A":2}})", "r"))
            .status == 400);
}

TEST_CASE("e2b: query parameters are decoded strictly") {
  bool malformed = false;
  CHECK(query_param("/files?x=1&path=a%20b+c", "path", malformed) == "a b c");
  CHECK_FALSE(malformed);
  CHECK_FALSE(query_param("/files?x=1", "path", malformed));
  CHECK_FALSE(query_param("/files?path=%00", "path", malformed));
  CHECK(malformed);
  CHECK_FALSE(percent_decode("%2"));
}

TEST_CASE("e2b: the config section is read and checked") {
  auto result = parse_config(R"(
e2b:
  enabled: false
  max_workspaces: 3
  max_workspaces_per_key: 1
  default_timeout: 1m
  max_timeout: 2h
  home_size: 64MiB
  spares: 0
)", "e2b.yaml");
  REQUIRE(result.config);
  CHECK_FALSE(result.config->e2b.enabled);
  CHECK(result.config->e2b.max_workspaces == 3);
  CHECK(result.config->e2b.max_workspaces_per_key == 1);
  CHECK(result.config->e2b.default_timeout == 60s);
  CHECK(result.config->e2b.max_timeout == 2h);
  CHECK(result.config->e2b.home_size_bytes == 64ull << 20);
  CHECK(result.config->e2b.spares == 0);
  CHECK(parse_config("", "x").config->e2b.enabled);
  CHECK(parse_config("", "x").config->e2b.spares == 1);
  CHECK(parse_config("e2b:\n  spares: 17\n", "e2b.yaml").error.find("e2b.spares") != std::string::npos);

  auto typo = parse_config("e2b:\n  max_workspace: 3\n", "e2b.yaml");
  CHECK(typo.error.find("max_workspaces") != std::string::npos);
  auto backwards = parse_config("e2b:\n  default_timeout: 2h\n  max_timeout: 1h\n", "e2b.yaml");
  CHECK(backwards.error.find("default_timeout") != std::string::npos);
}
