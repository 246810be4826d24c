// Policies written to hurt the loader: aliases that multiply text, thousands of errors, a second
// YAML document. Each is refused with a precise error, in bounded memory, and nothing is loaded.
#include <catch2/catch.hpp>

#include <string>

#include "policies/errors.h"
#include "policies/layer.h"
#include "policies/loader.h"
#include "test_support.h"

namespace airlock::policies {
namespace {

using testing::error_text;
using testing::TempDir;

bool mentions(const LoadResult& result, const std::string& text) {
  return error_text(result).find(text) != std::string::npos;
}

}  // namespace

TEST_CASE("a file with many errors reports the first ones and counts the rest") {
  std::string text;
  for (size_t i = 0; i < kMaxErrorsPerFile + 10; ++i)
    text += "unknown" + std::to_string(i) + ": 1\n";
  TempDir dir;
  const std::string path = dir.write("p.yaml", text);
  const LoadResult result = load_policy(path, {dir.path()});
  REQUIRE(result.errors.size() == kMaxErrorsPerFile + 1);
  CHECK(mentions(result, path + ": and 10 more errors not shown; fix the ones above first\n"));
}

TEST_CASE("a long unknown word gets no suggestion") {
  const std::string candidate(kMaxSuggestedWord + 6, 'a');
  const std::string near = candidate.substr(1) + "b";  // one substitution away
  CHECK(did_you_mean(near, {candidate}).empty());
  const std::string short_candidate(kMaxSuggestedWord, 'a');
  CHECK_FALSE(did_you_mean(short_candidate.substr(1) + "b", {short_candidate}).empty());
}

}  // namespace airlock::policies
