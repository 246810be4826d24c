// A request may only tighten its policy, and must name things that exist.
#include <catch2/catch.hpp>

#include "policies/loader.h"
#include "runner/runner.h"
#include "test_env.h"

namespace airlock::runner {
namespace {

using testing::python;

struct Fixture {
  Fixture() {
    auto table = load_runtimes(AIRLOCK_SOURCE_DIR "/runner/runtimes.yaml");
    REQUIRE(table.ok());
    runtimes = table.value();
    auto loaded = policies::load_policy("python", {AIRLOCK_SOURCE_DIR "/policies"});
    REQUIRE(loaded.ok());
    policy = loaded.policy;
  }
  std::optional<RequestError> check(const RunRequest& request) {
    return validate_request(request, *policy, runtimes);
  }
  RuntimeTable runtimes;
  std::shared_ptr<const policies::Policy> policy;
};

}  // namespace

TEST_CASE("a request within its policy is valid") {
  Fixture fixture;
  RunRequest request = python("print(1)");
  request.limits.wall_time = std::chrono::seconds(2);
  request.limits.memory_max_bytes = 64 * sandbox::kMiB;
  CHECK_FALSE(fixture.check(request).has_value());
}

TEST_CASE("asking for more memory than the policy allows is an error, not a clamp") {
  Fixture fixture;
  RunRequest request = python("print(1)");
  request.limits.memory_max_bytes = fixture.policy->limits.memory_max_bytes * 2;
  auto error = fixture.check(request);
  REQUIRE(error.has_value());
  CHECK(error->field == "limits.memory");
  CHECK_THAT(error->message, Catch::Contains("is above the limit of policy \"python\""));
  CHECK_THAT(error->message, Catch::Contains("a request may only tighten its policy"));
}

TEST_CASE("a longer wall time than the policy's is refused") {
  Fixture fixture;
  RunRequest request = python("print(1)");
  request.limits.wall_time = fixture.policy->limits.wall_time + std::chrono::seconds(1);
  auto error = fixture.check(request);
  REQUIRE(error.has_value());
  CHECK(error->field == "limits.wall_time");
}

TEST_CASE("an unknown runtime lists the available ones") {
  Fixture fixture;
  RunRequest request = python("print(1)");
  request.runtime = "cobol";
  auto error = fixture.check(request);
  REQUIRE(error.has_value());
  CHECK(error->field == "runtime");
  CHECK_THAT(error->message, Catch::Contains("unknown runtime 'cobol'; available: "));
  CHECK_THAT(error->message, Catch::Contains("python"));
}

TEST_CASE("an input file escaping the working dir is refused") {
  Fixture fixture;
  RunRequest request = python("print(1)");
  request.files.push_back({"../../etc/passwd", "x"});
  auto error = fixture.check(request);
  REQUIRE(error.has_value());
  CHECK(error->field == "files[0].path");
}

TEST_CASE("two input files at one path are refused, naming the second and the first") {
  Fixture fixture;
  RunRequest request = python("print(1)");
  request.files = {{"data.csv", "a"}, {"other.txt", "b"}, {"data.csv", "c"}};
  auto error = fixture.check(request);
  REQUIRE(error.has_value());
  CHECK(error->field == "files[2].path");
  CHECK(error->message == "'data.csv' is also the path of files[0]");
}

TEST_CASE("an input file where another needs a directory is refused, in either order") {
  Fixture fixture;
  RunRequest request = python("print(1)");
  request.files = {{"a", "x"}, {"a-b", "x"}, {"a/b/c.txt", "y"}};
  auto error = fixture.check(request);
  REQUIRE(error.has_value());
  CHECK(error->field == "files[2].path");
  CHECK(error->message == "'a/b/c.txt' would be inside 'a', which is a file (files[0])");

  // "a-b" sorts between "a" and "a/...": the check must still find "a/b/c.txt" below "a".
  request.files = {{"a/b/c.txt", "y"}, {"a-b", "x"}, {"a", "x"}};
  error = fixture.check(request);
  REQUIRE(error.has_value());
  CHECK(error->field == "files[2].path");
  CHECK(error->message == "'a' is a file, but files[0] ('a/b/c.txt') needs it to be a directory");

  request.files = {{"a/b.txt", "y"}, {"a/c.txt", "x"}, {"ab", "x"}};
  CHECK_FALSE(fixture.check(request).has_value());  // siblings and look-alike names are fine
}

}  // namespace airlock::runner
