// The corpus of broken policies: each file in broken/ holds one mistake (many_errors.yaml holds
// several) and lists, in `# expect: LINE:COLUMN: message` comments, exactly the errors it must
// produce. `-` stands for an error about the whole file; POLICY_DIRS for the searched directories;
// `OTHER.yaml:LINE:COLUMN: message` for an error found in another file of the corpus.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "policies/loader.h"
#include "test_support.h"

namespace airlock::policies {
namespace {

const std::string kBrokenDir = POLICY_TEST_DIR "/broken";

std::vector<std::string> broken_files() {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(kBrokenDir)) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// The errors a broken file declares, formatted as PolicyError::format() would print them.
std::string expected_errors(const std::string& path, const std::string& dirs) {
  std::ifstream in(path);
  std::string line;
  std::string expected;
  const std::string marker = "# expect: ";
  while (std::getline(in, line)) {
    if (line.rfind(marker, 0) != 0) continue;
    std::string rest = replace_all(line.substr(marker.size()), "POLICY_DIRS", dirs);
    const size_t other = rest.find(".yaml:");
    if (rest.rfind("-: ", 0) == 0) {
      expected += path + ": " + rest.substr(3);
    } else if (other != std::string::npos && other < rest.find(' ')) {
      expected += kBrokenDir + "/" + rest;
    } else {
      expected += path + ":" + rest;
    }
    expected += "\n";
  }
  return expected;
}

}  // namespace

TEST_CASE("the broken corpus covers many kinds of mistake") {
  CHECK(broken_files().size() >= 40);
}

TEST_CASE("each broken policy is rejected with exactly its own errors, at line and column") {
  const std::vector<std::string> search_dirs{testing::shipped_dir()};
  for (const auto& path : broken_files()) {
    DYNAMIC_SECTION(std::filesystem::path(path).filename().string()) {
      const std::string dirs = kBrokenDir + ", " + testing::shipped_dir();
      const std::string expected = expected_errors(path, dirs);
      REQUIRE_FALSE(expected.empty());  // a broken file without expectations tests nothing
      const LoadResult result = load_policy(path, search_dirs);
      CHECK_FALSE(result.ok());
      CHECK(result.policy == nullptr);
      CHECK(testing::error_text(result) == expected);
    }
  }
}

}  // namespace airlock::policies
