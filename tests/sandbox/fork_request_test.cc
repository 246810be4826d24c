// The request a fork server's zygote receives (fork_request.h), as data: what the supervisor
// plans from a spec, and what the zygote refuses to serve.
#include "sandbox/fork_request.h"

#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "sandbox/mounts.h"
#include "sandbox/rlimits.h"

namespace airlock::sandbox {
namespace {

// Two and three instructions: enough for the lengths; the zygote never reads them here.
SeccompFilters small_filters() {
  SeccompFilters filters;
  filters.policy_program.resize(2);
  filters.floor_program.resize(3);
  return filters;
}

size_t filter_bytes(const ForkRequest& request) {
  return (request.policy_length + request.floor_length) * sizeof(sock_filter);
}

}  // namespace

TEST_CASE("a fork request puts the working dir first, then /tmp and /dev/shm with their sizes and modes") {
  Spec spec;
  spec.filesystem.workdir = "/work";
  spec.limits.workdir_size_bytes = 3 * kMiB;
  spec.limits.tmp_size_bytes = 5 * kMiB;
  spec.limits.shm_size_bytes = 7 * kMiB;
  spec.filesystem.tmpfs.push_back({"/scratch", 11 * kMiB});
  spec.hostname = "box";
  auto request = plan_fork_request(spec, small_filters(), 99);
  REQUIRE(request.ok());
  CHECK(request->magic == ForkRequest::kMagic);
  CHECK(request->uid == SandboxIdentity{}.uid);
  CHECK(request->gid == SandboxIdentity{}.gid);
  CHECK(request->control_fd_number == 99);
  CHECK(std::string(request->hostname) == "box");
  REQUIRE(request->tmpfs_count == 4);
  CHECK(std::string(request->tmpfs[0].path) == "/work");
  CHECK(request->tmpfs[0].size_bytes == 3 * kMiB);
  CHECK(request->tmpfs[0].mode == 0700);
  CHECK(std::string(request->tmpfs[1].path) == "/tmp");
  CHECK(request->tmpfs[1].size_bytes == 5 * kMiB);
  CHECK(request->tmpfs[1].mode == 01777);
  CHECK(std::string(request->tmpfs[2].path) == "/dev/shm");
  CHECK(request->tmpfs[2].size_bytes == 7 * kMiB);
  CHECK(request->tmpfs[2].mode == 01777);
  CHECK(std::string(request->tmpfs[3].path) == "/scratch");
  CHECK(request->tmpfs[3].size_bytes == 11 * kMiB);
  CHECK(request->policy_length == 2);
  CHECK(request->floor_length == 3);
  CHECK(fork_request_valid(*request, filter_bytes(*request)));
}

TEST_CASE("a fork request carries the same rlimits as a cold plan") {
  Spec spec;
  spec.limits.cpu_time = std::chrono::milliseconds(2500);
  spec.limits.max_open_files = 64;
  auto request = plan_fork_request(spec, small_filters(), 64);
  REQUIRE(request.ok());
  const auto cold = plan_rlimits(spec.limits);
  REQUIRE(request->rlimit_count == cold.size());
  for (size_t i = 0; i < cold.size(); ++i) {
    CHECK(request->rlimits[i].resource == cold[i].resource);
    CHECK(request->rlimits[i].soft == cold[i].soft);
    CHECK(request->rlimits[i].hard == cold[i].hard);
  }
}

TEST_CASE("a hostname or tmpfs path too long to fork is a setup error") {
  Spec long_hostname;
  long_hostname.hostname = std::string(64, 'h');
  auto refused = plan_fork_request(long_hostname, small_filters(), 64);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().operation.find("hostname") != std::string::npos);

  Spec long_path;
  long_path.filesystem.tmpfs.push_back({"/" + std::string(130, 'p'), kMiB});
  refused = plan_fork_request(long_path, small_filters(), 64);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().operation.find("cannot be forked") != std::string::npos);

  Spec relative;
  relative.filesystem.tmpfs.push_back({"scratch", kMiB});
  CHECK_FALSE(plan_fork_request(relative, small_filters(), 64).ok());

  Spec crowded;
  for (int i = 0; i < ForkRequest::kMaxTmpfs; ++i) {
    crowded.filesystem.tmpfs.push_back({"/t" + std::to_string(i), kMiB});
  }
  CHECK_FALSE(plan_fork_request(crowded, small_filters(), 64).ok());
}

TEST_CASE("a request with a relative tmpfs path, no NUL in its hostname or a wrong filter size is refused") {
  auto planned = plan_fork_request(Spec{}, small_filters(), 64);
  REQUIRE(planned.ok());
  const ForkRequest good = *planned;
  REQUIRE(fork_request_valid(good, filter_bytes(good)));

  ForkRequest relative = good;
  std::strcpy(relative.tmpfs[1].path, "tmp");
  CHECK_FALSE(fork_request_valid(relative, filter_bytes(relative)));

  ForkRequest unterminated_path = good;
  std::memset(unterminated_path.tmpfs[2].path, 'a', sizeof unterminated_path.tmpfs[2].path);
  unterminated_path.tmpfs[2].path[0] = '/';
  CHECK_FALSE(fork_request_valid(unterminated_path, filter_bytes(unterminated_path)));

  ForkRequest unterminated_hostname = good;
  std::memset(unterminated_hostname.hostname, 'h', sizeof unterminated_hostname.hostname);
  CHECK_FALSE(fork_request_valid(unterminated_hostname, filter_bytes(unterminated_hostname)));

  CHECK_FALSE(fork_request_valid(good, filter_bytes(good) - sizeof(sock_filter)));
  CHECK_FALSE(fork_request_valid(good, filter_bytes(good) + 1));

  ForkRequest wrong_magic = good;
  wrong_magic.magic = 0;
  CHECK_FALSE(fork_request_valid(wrong_magic, filter_bytes(wrong_magic)));

  ForkRequest low_control_fd = good;
  low_control_fd.control_fd_number = 3;  // would take the program's fd 3
  CHECK_FALSE(fork_request_valid(low_control_fd, filter_bytes(low_control_fd)));

  ForkRequest too_many_rlimits = good;
  too_many_rlimits.rlimit_count = ForkRequest::kMaxRlimits + 1;
  CHECK_FALSE(fork_request_valid(too_many_rlimits, filter_bytes(too_many_rlimits)));
}

}  // namespace airlock::sandbox
