// Helpers shared by the policy tests: temporary policy directories and loading from text.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "policies/loader.h"

namespace airlock::policies::testing {

// A fresh directory under $TMPDIR, removed with everything in it when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "airlock-policy-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code error;
    std::filesystem::remove_all(path_, error);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

  // Writes `dir/name` and returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
    return file;
  }

 private:
  std::string path_;
};

// The shipped policies directory of the source tree.
inline std::string shipped_dir() {
  return AIRLOCK_SOURCE_DIR "/policies";
}

// Every error of a load, formatted, one per line: what a test compares against.
inline std::string error_text(const LoadResult& result) {
  std::string text;
  for (const auto& error : result.errors) text += error.format() + "\n";
  return text;
}

// The policy at path (a name or a file) loaded from dir; fails the test with its errors if it
// does not load.
inline std::shared_ptr<const Policy> load_ok(const std::string& path, const std::string& dir) {
  const LoadResult result = load_policy(path, {dir});
  INFO(error_text(result));
  REQUIRE(result.ok());
  return result.policy;
}

}  // namespace airlock::policies::testing
