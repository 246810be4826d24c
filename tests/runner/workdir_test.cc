#include "runner/workdir.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <seccomp.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>

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

namespace {

// A working directory the test made itself, owned by the test's own ids.
class TempWorkspace final : public sandbox::Workspace {
 public:
  explicit TempWorkspace(std::string path) : path_(std::move(path)) {}
  const std::string& path() const override { return path_; }
  sandbox::Status give_to_sandbox(const std::string&) const override { return {}; }
  uint32_t owner_uid() const override { return ::getuid(); }
  uint32_t owner_gid() const override { return ::getgid(); }

 private:
  std::string path_;
};

std::string make_temp_dir() {
  char pattern[] = "/tmp/airlock-workdir-XXXXXX";
  return ::mkdtemp(pattern);
}

}  // namespace

TEST_CASE("writing over a FIFO the sandbox made is refused without blocking") {
  const std::string dir = make_temp_dir();
  REQUIRE(::mkfifo((dir + "/f").c_str(), 0644) == 0);
  TempWorkspace workspace(dir);
  // Before the fix this open(2) waited for a reader forever.
  auto written = write_workspace_file(workspace, "f", "data", false);
  REQUIRE_FALSE(written);
  CHECK(written.error().message().find("not a regular file") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("an input file that does not fit or collides is refused naming its field") {
  InputFile big{"data/big.bin", std::string(3 * 1024 * 1024, 'x'), false};
  auto full = refused_input_file(2, big, sandbox::SetupError{"write(\"data/big.bin\")", ENOSPC},
                                 "the session's working directory");
  REQUIRE(full);
  CHECK(full->field == "files[2].path");
  CHECK(full->message == "'data/big.bin' (3 MiB) does not fit the session's working directory");

  // A real write over a FIFO (a session's code left it there) is refused the same way.
  const std::string dir = make_temp_dir();
  REQUIRE(::mkfifo((dir + "/f").c_str(), 0644) == 0);
  TempWorkspace workspace(dir);
  InputFile fifo{"f", "data", false};
  auto written = write_workspace_file(workspace, fifo.path, fifo.content, false);
  REQUIRE_FALSE(written);
  auto collides = refused_input_file(0, fifo, written.error(), "the working directory");
  REQUIRE(collides);
  CHECK(collides->field == "files[0].path");
  CHECK(collides->message == written.error().message());
  std::filesystem::remove_all(dir);

  // What airlock itself failed at stays a setup error.
  CHECK_FALSE(refused_input_file(0, fifo, sandbox::SetupError{"open(workspace)", EMFILE},
                                 "the working directory"));
}

TEST_CASE("reading a FIFO, by name or by glob, returns nothing without blocking") {
  const std::string dir = make_temp_dir();
  REQUIRE(::mkfifo((dir + "/f").c_str(), 0644) == 0);
  CHECK_FALSE(read_workspace_file(dir, "f", 100).has_value());
  CHECK(collect_output_files(dir, {"*"}, 100).empty());
  std::filesystem::remove_all(dir);
}

TEST_CASE("one file is read by its path, and a symlink to it is not followed") {
  const std::string dir = make_temp_dir();
  std::filesystem::create_directories(dir + "/a/b");
  std::ofstream(dir + "/a/b/c.txt") << "hello";
  std::filesystem::create_symlink("/etc/hostname", dir + "/link");
  auto file = read_workspace_file(dir, "a/b/c.txt", 100);
  REQUIRE(file);
  CHECK(file->content == "hello");
  CHECK_FALSE(read_workspace_file(dir, "link", 100).has_value());
  CHECK_FALSE(read_workspace_file(dir, "missing.txt", 100).has_value());
  CHECK_FALSE(read_workspace_file(dir, "../etc/passwd", 100).has_value());
  std::filesystem::remove_all(dir);
}

TEST_CASE("returned files share one byte budget, and NUL-filled files go out as binary") {
  const std::string dir = make_temp_dir();
  for (int i = 0; i < 10; ++i) {
    // Sparse: a hole of 1000 bytes, nothing on disk; read back as NULs.
    const std::string path = dir + "/sparse" + std::to_string(i) + ".txt";
    std::ofstream(path).close();
    std::filesystem::resize_file(path, 1000);
  }
  auto files = collect_output_files(dir, {"*.txt"}, 1000, 2500);
  std::filesystem::remove_all(dir);
  REQUIRE(files.size() == 10);
  uint64_t total = 0;
  for (const auto& file : files) {
    total += file.content.size();
    CHECK(file.size_bytes == 1000);
    if (!file.content.empty()) CHECK(file.binary);
  }
  CHECK(total == 2500);
  CHECK_FALSE(files[0].truncated);
  CHECK(files[2].content.size() == 500);
  CHECK(files[2].truncated);
  CHECK(files[9].content.empty());
  CHECK(files[9].truncated);
}


TEST_CASE("where openat2 answers ENOSYS, files are still opened only beneath the directory") {
  // As under systemd's RestrictSUIDSGID= (airlock.service sets it): the packaged service failed
  // every run with `open("main.py"): ENOSYS` before the fallback.
  const std::string dir = make_temp_dir();
  std::filesystem::create_directories(dir + "/a");
  std::ofstream(dir + "/a/in.txt") << "hello";
  std::filesystem::create_directory_symlink("/etc", dir + "/etc");
  std::filesystem::create_symlink("/etc/hostname", dir + "/host");
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // Only async-signal-safe habits from here: report through the exit code, one bit a check.
    scmp_filter_ctx filter = seccomp_init(SCMP_ACT_ALLOW);
    if (!filter || seccomp_rule_add(filter, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0) != 0 ||
        seccomp_load(filter) != 0) {
      ::_exit(255);
    }
    int failed = 0;
    struct open_how how {};
    how.flags = O_RDONLY;
    if (::syscall(SYS_openat2, AT_FDCWD, dir.c_str(), &how, sizeof how) >= 0 || errno != ENOSYS) {
      failed |= 1;  // the filter is not what this test is about
    }
    TempWorkspace workspace(dir);
    if (!write_workspace_file(workspace, "b/c/out.txt", "data", false)) failed |= 2;
    if (write_workspace_file(workspace, "etc/airlock-escape", "x", false)) failed |= 4;
    if (write_workspace_file(workspace, "host", "x", false)) failed |= 8;
    auto file = read_workspace_file(dir, "a/in.txt", 100);
    if (!file || file->content != "hello") failed |= 16;
    if (read_workspace_file(dir, "host", 100) || read_workspace_file(dir, "etc/hostname", 100)) {
      failed |= 32;
    }
    if (collect_output_files(dir, {"a/*", "etc/*"}, 100).size() != 1) failed |= 64;
    ::_exit(failed);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  std::ifstream written(dir + "/b/c/out.txt");
  std::string content((std::istreambuf_iterator<char>(written)), std::istreambuf_iterator<char>());
  CHECK(content == "data");
  CHECK_FALSE(std::filesystem::exists("/etc/airlock-escape"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("a walk stops after its cap of directory entries and says it was cut") {
  namespace fs = std::filesystem;
  char pattern[] = "/tmp/airlock-walk-XXXXXX";
  const std::string dir = ::mkdtemp(pattern);
  for (int i = 0; i < 40; ++i) fs::create_directories(dir + "/d" + std::to_string(i) + "/e");
  std::ofstream(dir + "/d39/e/found.txt") << "x";
  bool cut = false;
  auto all = collect_output_files(dir, {"*"}, 0, kMaxOutputFilesTotalBytes, &cut, 1000);
  CHECK_FALSE(cut);
  CHECK(all.size() == 1);
  auto few = collect_output_files(dir, {"*"}, 0, kMaxOutputFilesTotalBytes, &cut, 20);
  CHECK(cut);
  CHECK(few.empty());
  fs::remove_all(dir);
}

}  // namespace airlock::runner
