// docs/openapi.yaml against what the service sends: every schema that describes a wire message
// has exactly the message's fields with their JSON types, and the JSON the service encodes for
// filled-in messages has only documented properties, each of the documented type.
#include <yaml-cpp/yaml.h>

#include <catch2/catch.hpp>

#include <google/protobuf/descriptor.h>

#include "api/handler.h"
#include "api/wire/json.h"
#include "api/wire/translate.h"
#include "api/wire/wire.h"
#include "fakes.h"

using namespace airlock;
using namespace airlock::api;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

namespace {

const YAML::Node& spec() {
  static const YAML::Node root = YAML::LoadFile(std::string(AIRLOCK_SOURCE_DIR) + "/docs/openapi.yaml");
  return root;
}

// A schema with its $ref followed.
YAML::Node resolved(YAML::Node schema) {
  while (schema["$ref"]) {
    const std::string ref = schema["$ref"].as<std::string>();
    const std::string prefix = "#/components/schemas/";
    REQUIRE(ref.starts_with(prefix));
    // reset, not =: assigning a yaml-cpp node writes into the node it refers to.
    schema.reset(spec()["components"]["schemas"][ref.substr(prefix.size())]);
    REQUIRE(schema);
  }
  return schema;
}

// The JSON type the service prints for one value of a field.
std::string json_type(const FieldDescriptor& field) {
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return "integer";  // 64-bit ones too: airlock prints them as numbers (api/wire/wire.cc)
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT:
      return "number";
    case FieldDescriptor::CPPTYPE_BOOL:
      return "boolean";
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return "object";
    default:
      return "string";
  }
}

// Compares one object schema with a message type, recursively; `where` names the place.
void compare(const YAML::Node& schema_in, const Descriptor& message, const std::string& where) {
  const YAML::Node schema = resolved(schema_in);
  INFO(where);
  REQUIRE(schema["type"].as<std::string>() == "object");
  const YAML::Node properties = schema["properties"];
  REQUIRE(properties);
  for (int i = 0; i < message.field_count(); ++i) {
    const FieldDescriptor& field = *message.field(i);
    const std::string path = where + "." + field.name();
    INFO(path);
    YAML::Node property = properties[field.name()];
    CHECK(property);
    if (!property) continue;
    property.reset(resolved(property));
    if (field.is_repeated()) {
      CHECK(property["type"].as<std::string>() == "array");
      property.reset(resolved(property["items"]));
    }
    CHECK(property["type"].as<std::string>() == json_type(field));
    if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      compare(property, *field.message_type(), path);
    }
  }
  // Nothing documented that the message does not have (a JSON alias of a field counts).
  for (const auto& entry : properties) {
    const std::string name = entry.first.as<std::string>();
    INFO(where + "." + name);
    const FieldDescriptor* field = message.FindFieldByName(name);
    for (int i = 0; field == nullptr && i < message.field_count(); ++i) {
      if (message.field(i)->json_name() == name) field = message.field(i);
    }
    CHECK(field != nullptr);
  }
}

// Every key of a JSON value the service sent is a documented property of the documented type.
void check_sent(const json::Value& value, const YAML::Node& schema_in, const std::string& where) {
  const YAML::Node schema = resolved(schema_in);
  INFO(where);
  const std::string type = schema["type"].as<std::string>();
  switch (value.kind_case()) {
    case json::Value::kStructValue:
      REQUIRE(type == "object");
      for (const auto& [name, field] : value.struct_value().fields()) {
        INFO(where + "." + name);
        REQUIRE(schema["properties"][name]);
        check_sent(field, schema["properties"][name], where + "." + name);
      }
      break;
    case json::Value::kListValue:
      REQUIRE(type == "array");
      for (const json::Value& item : value.list_value().values()) {
        check_sent(item, schema["items"], where + "[]");
      }
      break;
    case json::Value::kNumberValue:
      CHECK((type == "integer" || type == "number"));
      break;
    case json::Value::kStringValue:
      CHECK(type == "string");
      break;
    case json::Value::kBoolValue:
      CHECK(type == "boolean");
      break;
    default:
      FAIL("null at " + where);
  }
}

void check_sent(const google::protobuf::Message& message, const std::string& schema_name) {
  std::string problem;
  auto value = json::parse(encode(message, WireFormat::json), problem);
  REQUIRE(value);
  check_sent(*value, spec()["components"]["schemas"][schema_name], schema_name);
}

runner::RunResult sample_run() {
  runner::RunResult run;
  run.id = "ex_1";
  run.runtime = "python";
  run.policy_name = "default";
  run.policy_hash = "sha256:00";
  run.summary = "status: violation";
  run.outcome.status = sandbox::RunStatus::violation;
  run.outcome.usage.wall = std::chrono::milliseconds(1500);
  run.outcome.usage.peak_memory_bytes = 5ULL << 30;
  sandbox::SyscallEvent call;
  call.syscall = "ptrace";
  call.action = "kill";
  call.origin = "floor (@ptrace)";
  call.detail = "ptrace(0)";
  run.outcome.violation = call;
  run.outcome.blocked.push_back(call);
  run.stdout_output = {"out", 3, 0};
  runner::OutputFile file;
  file.path = "a.png";
  file.content = "\x89PNG";
  file.size_bytes = 4;
  file.media_type = "image/png";
  file.binary = true;
  run.files.push_back(file);
  return run;
}

}  // namespace

TEST_CASE("the OpenAPI schemas list exactly the fields of the wire messages, with JSON types") {
  const std::pair<const char*, const Descriptor*> documented[] = {
      {"ExecutionRequest", v1::ExecutionRequest::descriptor()},
      {"ExecutionResult", v1::ExecutionResult::descriptor()},
      {"Event", v1::Event::descriptor()},
      {"SyscallReport", v1::SyscallReport::descriptor()},
      {"SetupFailure", v1::SetupFailure::descriptor()},
      {"OutputFile", v1::OutputFile::descriptor()},
      {"Error", v1::Error::descriptor()},
      {"ErrorResponse", v1::ErrorResponse::descriptor()},
      {"RuntimeInfo", v1::RuntimeInfo::descriptor()},
      {"PolicyInfo", v1::PolicyInfo::descriptor()},
      {"Health", v1::Health::descriptor()},
      {"SessionRequest", v1::SessionRequest::descriptor()},
      {"SessionInfo", v1::SessionInfo::descriptor()},
      {"SessionFile", v1::SessionFile::descriptor()},
      {"SessionFileList", v1::SessionFileList::descriptor()},
      {"SessionList", v1::SessionList::descriptor()},
      {"RuntimeList", v1::RuntimeList::descriptor()},
      {"PolicyList", v1::PolicyList::descriptor()},
  };
  for (const auto& [name, descriptor] : documented) {
    REQUIRE(spec()["components"]["schemas"][name]);
    compare(spec()["components"]["schemas"][name], *descriptor, name);
  }
}

TEST_CASE("what the service sends matches the OpenAPI description") {
  const v1::ExecutionResult result = to_result(sample_run(), "ex_1");
  check_sent(result, "ExecutionResult");
  runner::RunResult failed = sample_run();
  failed.outcome = sandbox::setup_failure(sandbox::SetupError{"mount(\"/usr\")", EPERM});
  check_sent(to_result(failed, "ex_2"), "ExecutionResult");

  v1::Event event;
  event.set_sequence(3);
  event.set_execution_id("ex_1");
  *event.mutable_exit()->mutable_result() = result;
  event.mutable_exit()->set_stream_dropped_bytes(10);
  check_sent(event, "Event");
  v1::Event started;
  started.set_sequence(1);
  started.mutable_started()->set_runtime("python");
  started.mutable_started()->mutable_policy()->set_name("default");
  check_sent(started, "Event");

  v1::ErrorResponse error;
  *error.mutable_error() = make_error("unknown_runtime", "no", "runtime", {"python"});
  check_sent(error, "ErrorResponse");

  v1::SessionInfo session;
  session.set_id("se_1");
  session.set_executions(2);
  session.set_interpreter_restarts(1);
  session.mutable_policy()->set_name("default");
  check_sent(session, "SessionInfo");

  runner::Runtime runtime;
  runtime.name = "c";
  runtime.source_file = "main.c";
  runtime.compile = {"gcc"};
  runtime.run = {"./main"};
  check_sent(to_runtime_info(runtime), "RuntimeInfo");
  v1::RuntimeList runtimes;
  *runtimes.add_runtimes() = to_runtime_info(runtime);
  check_sent(runtimes, "RuntimeList");

  auto policy = testing::make_policy("default", {"python"});
  v1::PolicyList policies;
  *policies.add_policies() = to_policy_info(*policy, false);
  check_sent(policies, "PolicyList");
  check_sent(to_policy_info(*policy, true), "PolicyInfo");

  v1::SessionList sessions;
  *sessions.add_sessions() = session;
  check_sent(sessions, "SessionList");
}

TEST_CASE("GET /version matches the OpenAPI description") {
  ServeConfig config;
  testing::FakeExecutor executor;
  testing::StaticPolicySource policies;
  Metrics metrics;
  std::ostringstream log_text;
  Logger log{log_text};
  Authenticator auth({});
  ExecutionService service(executor, {1, 0, 1}, metrics, log);
  Api api({config, executor, policies, service, auth, metrics});
  const auto dispatch = api.handle(HttpRequest{"GET", "/version", {}, {}, ""});
  const HttpResponse& response = std::get<HttpResponse>(dispatch);
  REQUIRE(response.status == 200);
  std::string problem;
  auto value = json::parse(response.body, problem);
  REQUIRE(value);
  const YAML::Node schema = spec()["components"]["schemas"]["Version"];
  check_sent(*value, schema, "Version");
  for (const auto& required : schema["required"]) {
    CHECK(json::field(*value, required.as<std::string>()) != nullptr);
  }
}
