#include "runner/workdir.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

namespace airlock::runner {

TEST_CASE("relative paths with '..', absolute paths and empty components are refused") {
  CHECK_FALSE(check_relative_path("data/input.csv").has_value());
  CHECK(check_relative_path("/etc/passwd") ==
        std::optional<std::string>("must be relative to the working directory, not absolute"));
  CHECK(check_relative_path("a/../../b") ==
        std::optional<std::string>("must not contain '.' or '..' components"));
  CHECK(check_relative_path("a//b").has_value());
  CHECK(check_relative_path("a/").has_value());
  CHECK(check_relative_path("").has_value());
}

TEST_CASE("output files are collected by glob and symlinks are never followed") {
  namespace fs = std::filesystem;
  char pattern[] = "/tmp/airlock-collect-XXXXXX";
  const std::string dir = ::mkdtemp(pattern);
  fs::create_directories(dir + "/out");
  std::ofstream(dir + "/plot.png") << "\x89PNG\r\n\x1a\n";
  std::ofstream(dir + "/out/result.csv") << "a,b\n1,2\n";
  std::ofstream(dir + "/notes.txt") << "not asked for";
  fs::create_symlink("/etc/hostname", dir + "/escape.png");
  fs::create_directory_symlink("/etc", dir + "/out/etc");

  auto files = collect_output_files(dir, {"*.png", "out/*"}, 1024);
  fs::remove_all(dir);
  REQUIRE(files.size() == 2);
  CHECK(files[0].path == "out/result.csv");
  CHECK(files[0].media_type == "text/csv");
  CHECK_FALSE(files[0].binary);
  CHECK(files[1].path == "plot.png");
  CHECK(files[1].media_type == "image/png");
  CHECK(files[1].binary);
}

TEST_CASE("a collected file is cut at the size cap and says so") {
  char pattern[] = "/tmp/airlock-collect-XXXXXX";
  const std::string dir = ::mkdtemp(pattern);
  std::ofstream(dir + "/big.txt") << std::string(5000, 'x');
  auto files = collect_output_files(dir, {"*.txt"}, 100);
  std::filesystem::remove_all(dir);
  REQUIRE(files.size() == 1);
  CHECK(files[0].content.size() == 100);
  CHECK(files[0].size_bytes == 5000);
  CHECK(files[0].truncated);
}

}  // namespace airlock::runner
