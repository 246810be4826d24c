#include "api/wire/translate.h"

#include <catch2/catch.hpp>

#include "api/wire/text.h"
#include "api/wire/wire.h"
#include "fakes.h"

using namespace airlock;
using namespace airlock::api;
using namespace std::chrono_literals;

namespace {

v1::ExecutionRequest python(const std::string& code) {
  v1::ExecutionRequest request;
  request.set_runtime("python");
  request.set_code(code);
  return request;
}

}  // namespace

TEST_CASE("a request's limits with units become typed overrides") {
  v1::ExecutionRequest request = python("print(1)");
  request.mutable_limits()->set_wall_time("5s");
  request.mutable_limits()->set_cpu_time("500ms");
  request.mutable_limits()->set_memory("128MiB");
  request.mutable_limits()->set_processes(8);
  request.mutable_output()->set_max_bytes(4096);
  request.mutable_output()->add_files("*.png");
  request.add_args("--flag");
  request.set_stdin("input");
  runner::RunRequest out;
  REQUIRE_FALSE(to_run_request(request, 1024 * 1024, out));
  CHECK(out.runtime == "python");
  CHECK(out.limits.wall_time == 5s);
  CHECK(out.limits.cpu_time == 500ms);
  CHECK(out.limits.memory_max_bytes == 128 * sandbox::kMiB);
  CHECK(out.limits.max_processes == 8u);
  CHECK(out.limits.output_kept_bytes == 4096u);
  CHECK(out.output_globs == std::vector<std::string>{"*.png"});
  CHECK(out.argv == std::vector<std::string>{"--flag"});
  CHECK(out.stdin_data == "input");
  CHECK(out.max_file_bytes == 1024 * 1024);
}

TEST_CASE("a limit without a unit names the field") {
  v1::ExecutionRequest request = python("");
  request.mutable_limits()->set_memory("128");
  runner::RunRequest out;
  auto error = to_run_request(request, 1024, out);
  REQUIRE(error);
  CHECK(error->field() == "limits.memory");
  CHECK(error->code() == "invalid_request");
}

TEST_CASE("runtime is required") {
  runner::RunRequest out;
  auto error = to_run_request(v1::ExecutionRequest(), 1024, out);
  REQUIRE(error);
  CHECK(error->field() == "runtime");
  CHECK(error->message() == "runtime: required (see GET /v1/runtimes)");
}

TEST_CASE("limits take durations and sizes as airlock prints them") {
  v1::ExecutionRequest request = python("print(1)");
  request.mutable_limits()->set_wall_time("2 min");
  request.mutable_limits()->set_cpu_time("1.5 s");
  request.mutable_limits()->set_memory("256 MiB");
  runner::RunRequest out;
  REQUIRE_FALSE(to_run_request(request, 1024, out));
  CHECK(out.limits.wall_time == 120s);
  CHECK(out.limits.cpu_time == 1500ms);
  CHECK(out.limits.memory_max_bytes == 256 * sandbox::kMiB);
}

TEST_CASE("input files are decoded from utf-8 or base64") {
  v1::ExecutionRequest request = python("");
  auto* text = request.add_files();
  text->set_path("data.txt");
  text->set_content("hello");
  auto* binary = request.add_files();
  binary->set_path("bin/tool");
  binary->set_content(base64_encode(std::string("\x00\x01\xff", 3)));
  binary->set_encoding("base64");
  binary->set_executable(true);
  runner::RunRequest out;
  REQUIRE_FALSE(to_run_request(request, 1024, out));
  REQUIRE(out.files.size() == 2);
  CHECK(out.files[0].content == "hello");
  CHECK(out.files[1].content == std::string("\x00\x01\xff", 3));
  CHECK(out.files[1].executable);
}

TEST_CASE("a bad file encoding or base64 names the file") {
  v1::ExecutionRequest request = python("");
  auto* file = request.add_files();
  file->set_path("a");
  file->set_content("!!!");
  file->set_encoding("base64");
  runner::RunRequest out;
  auto error = to_run_request(request, 1024, out);
  REQUIRE(error);
  CHECK(error->field() == "files[0].content");

  file->set_encoding("latin-1");
  runner::RunRequest again;
  error = to_run_request(request, 1024, again);
  REQUIRE(error);
  CHECK(error->field() == "files[0].encoding");
  CHECK(error->valid_size() == 2);
}

TEST_CASE("asking for bigger output files than the service allows is refused") {
  v1::ExecutionRequest request = python("");
  request.mutable_output()->set_max_file_bytes(2048);
  runner::RunRequest out;
  auto error = to_run_request(request, 1024, out);
  REQUIRE(error);
  CHECK(error->field() == "output.max_file_bytes");
}

TEST_CASE("a result carries counts, usage, policy and files; binary files come as base64") {
  runner::RunResult run;
  run.outcome.status = sandbox::RunStatus::nonzero_exit;
  run.outcome.exit_code = 3;
  run.outcome.usage.wall = 1500ms;
  run.outcome.usage.peak_memory_bytes = 1000;
  run.stdout_output = {"head\xff", 10, 5};
  run.policy_name = "default";
  run.policy_hash = "sha256:abc";
  run.summary = "nonzero_exit: exit code 3";
  runner::OutputFile image{"plot.png", std::string("\x89PNG\x00", 5), 5, false, "image/png", true};
  runner::OutputFile text{"out.txt", "ok", 2, false, "text/plain", false};
  run.files = {image, text};
  v1::ExecutionResult result = to_result(run, "ex_1");
  CHECK(result.id() == "ex_1");
  CHECK(result.status() == "nonzero_exit");
  CHECK(result.exit_code() == 3);
  CHECK(result.stdout() == "head\xEF\xBF\xBD");
  CHECK(result.stdout_bytes() == 10);
  CHECK(result.stdout_dropped_bytes() == 5);
  CHECK(result.usage().wall_time_ms() == 1500);
  CHECK(result.policy().hash() == "sha256:abc");
  REQUIRE(result.files_size() == 2);
  CHECK(result.files(0).encoding() == "base64");
  CHECK(base64_decode(result.files(0).content()) == image.content);
  CHECK(result.files(1).encoding() == "utf-8");
  CHECK(result.files(1).content() == "ok");
}

TEST_CASE("a setup error reaches the wire with its operation and errno") {
  runner::RunResult run;
  run.outcome = sandbox::setup_failure(sandbox::SetupError{"mount(\"/usr\")", EPERM});
  v1::ExecutionResult result = to_result(run, "ex_1");
  CHECK(result.status() == "setup_error");
  REQUIRE(result.has_setup());
  CHECK(result.setup().operation() == "mount(\"/usr\")");
  CHECK(result.setup().errno_name() == "EPERM");
  CHECK(result.setup().errno_number() == EPERM);
  CHECK(result.reason() ==
        "sandbox setup failed: mount(\"/usr\"): EPERM (Operation not permitted)");
  CHECK(encode(result, WireFormat::json).find("\"errno_name\":\"EPERM\"") != std::string::npos);

  // Without an errno: the operation alone, no name.
  run.outcome = sandbox::setup_failure(sandbox::SetupError{"the session was closed", 0});
  result = to_result(run, "ex_2");
  CHECK(result.setup().operation() == "the session was closed");
  CHECK(result.setup().errno_name().empty());
  CHECK(result.setup().errno_number() == 0);

  // Any other outcome has none.
  run.outcome = sandbox::Outcome{};
  run.outcome.status = sandbox::RunStatus::ok;
  CHECK_FALSE(to_result(run, "ex_3").has_setup());
}

TEST_CASE("a policy's effective form shows limits with units") {
  auto policy = testing::make_policy("default", {"python"});
  v1::PolicyInfo info = to_policy_info(*policy, true);
  CHECK(info.name() == "default");
  CHECK(info.hash() == policy->hash);
  CHECK(info.effective() == policy->canonical);
  CHECK_FALSE(info.limits().memory().empty());
  CHECK(to_policy_info(*policy, false).effective().empty());
}
