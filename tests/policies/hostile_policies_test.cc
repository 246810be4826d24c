// Policies written to hurt the loader: aliases that multiply text, thousands of errors, a second
// YAML document. Each is refused with a precise error, in bounded memory, and nothing is loaded.
#include <catch2/catch.hpp>

#include <string>

#include "policies/errors.h"
#include "policies/layer.h"
#include "policies/loader.h"
#include "policies/render.h"
#include "test_support.h"

namespace airlock::policies {
namespace {

using testing::error_text;
using testing::TempDir;

bool mentions(const LoadResult& result, const std::string& text) {
  return error_text(result).find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("an environment variable over the kernel's MAX_ARG_STRLEN is refused at its line") {
  TempDir dir;
  const std::string path = dir.write(
      "p.yaml", "environment:\n  SMALL: ok\n  BIG: " + std::string(kMaxEnvVarBytes, 'x') + "\n");
  const LoadResult result = load_policy(path, {dir.path()});
  CHECK_FALSE(result.ok());
  CHECK(error_text(result) == path + ":3:8: environment variable 'BIG' is " +
                                  std::to_string(kMaxEnvVarBytes + 5) +
                                  " bytes as NAME=value; at most 131072 (the kernel's "
                                  "MAX_ARG_STRLEN)\n");
}

TEST_CASE("aliases that multiply an environment value past the total are refused") {
  // 100 KiB written once, used 40 times: 4 MB of environment from a 100 KiB file.
  std::string text = "environment:\n  A0: &big " + std::string(100 * 1024, 'x') + "\n";
  for (int i = 1; i < 40; ++i) text += "  A" + std::to_string(i) + ": *big\n";
  TempDir dir;
  const LoadResult result = load_policy(dir.write("p.yaml", text), {dir.path()});
  CHECK_FALSE(result.ok());
  INFO(error_text(result).substr(0, 400));
  CHECK(mentions(result,
                 "environment: more than 1048576 bytes in all (as NAME=value) by "
                 "variable 'A10'"));
}

TEST_CASE("the environment of a chain of policies is capped as a whole") {
  // Five variables of 120 KiB in each of two files: each file is within the cap, both are not.
  const std::string value(120 * 1024, 'x');
  auto environment = [&](const std::string& prefix) {
    std::string text = "environment:\n";
    for (int i = 0; i < 5; ++i) text += "  " + prefix + std::to_string(i) + ": " + value + "\n";
    return text;
  };
  TempDir dir;
  dir.write("base.yaml", environment("A"));
  const std::string child = dir.write("child.yaml", "extends: base\n" + environment("B"));
  const LoadResult result = load_policy(child, {dir.path()});
  INFO(error_text(result).substr(0, 400));
  CHECK(error_text(result) == child + ": environment: " + std::to_string(10 * (value.size() + 4)) +
                                  " bytes (as NAME=value) with the policies it extends; at most "
                                  "1048576\n");
}

TEST_CASE("aliases of aliases are refused before any section reads them") {
  // Nine levels of ten: a billion values from a few hundred bytes.
  std::string text = "x0: &l0 [a, a, a, a, a, a, a, a, a, a]\n";
  for (int level = 1; level < 9; ++level) {
    const std::string below = "*l" + std::to_string(level - 1);
    text += "x" + std::to_string(level) + ": &l" + std::to_string(level) + " [";
    for (int i = 0; i < 10; ++i) text += (i ? ", " : "") + below;
    text += "]\n";
  }
  TempDir dir;
  const std::string path = dir.write("p.yaml", text);
  const LoadResult result = load_policy(path, {dir.path()});
  CHECK(error_text(result) == path +
                                  ": with its YAML aliases (*name) written out, the policy holds "
                                  "more than 1048576 values; refused\n");
}

TEST_CASE("an alias inside its own anchor is refused, not followed for ever") {
  TempDir dir;
  const std::string path = dir.write("p.yaml", "description: &a [*a]\n");
  CHECK(error_text(load_policy(path, {dir.path()})) ==
        path +
            ": with its YAML aliases (*name) written out, the policy nests more than 64 "
            "levels deep; refused\n");
}

TEST_CASE("a second YAML document in a policy file is refused, not ignored") {
  TempDir dir;
  const std::string path =
      dir.write("p.yaml", "limits: {memory: 64MiB}\n---\nlimits: {memory: 64GiB}\n");
  const LoadResult result = load_policy(path, {dir.path()});
  CHECK_FALSE(result.ok());
  CHECK(mentions(result, path + ":3:1: a policy file holds one YAML document; this file has 2"));
}

TEST_CASE("a file with many errors reports the first ones and counts the rest") {
  std::string text;
  for (size_t i = 0; i < kMaxErrorsPerFile + 10; ++i)
    text += "unknown" + std::to_string(i) + ": 1\n";
  TempDir dir;
  const std::string path = dir.write("p.yaml", text);
  const LoadResult result = load_policy(path, {dir.path()});
  REQUIRE(result.errors.size() == kMaxErrorsPerFile + 1);
  CHECK(result.errors.front().line == 1);
  CHECK(result.errors.back().format() ==
        path + ": and 10 more errors not shown; fix the ones above first");
}

TEST_CASE("a long unknown word gets no suggestion") {
  const std::string candidate(kMaxSuggestedWord + 6, 'a');
  const std::string near = candidate.substr(1) + "b";  // one substitution away
  CHECK(did_you_mean(near, {candidate}).empty());
  const std::string short_candidate(kMaxSuggestedWord, 'a');
  CHECK_FALSE(did_you_mean(short_candidate.substr(1) + "b", {short_candidate}).empty());
}

TEST_CASE("policy text reaches a terminal with its control characters escaped") {
  TempDir dir;
  const LoadResult result = load_policy(
      dir.write("p.yaml",
                "unsafe:\n  - syscall: ptrace\n    justification: \"gdb\\e[2J\\e]0;ok\\a lab\"\n"),
      {});
  REQUIRE(result.ok());
  CHECK(render_unsafe(*result.policy) ==
        "UNSAFE policy \"p\": syscall ptrace — gdb\\x1b[2J\\x1b]0;ok\\x07 lab\n");
  CHECK(terminal_safe("a\x9b"
                      "31m b\xc2\x9b"
                      "c") == "a\\x9b31m b\\u009bc");
  CHECK(terminal_safe("caf\xc3\xa9 — \xf0\x9f\x94\x92") == "caf\xc3\xa9 — \xf0\x9f\x94\x92");
  CHECK(terminal_safe("one\ntwo\tthree", true) == "one\ntwo\tthree");
  CHECK(terminal_safe("one\ntwo") == "one\\x0atwo");
}

}  // namespace airlock::policies
