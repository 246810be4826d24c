// The plan every sandbox's child reads (setup_plan.h) and the request a fork server's zygote
// receives (fork_request.h), as data: what the supervisor plans from a spec, that the cold and
// forked children get the same facts from it, and what the zygote refuses to serve.
#include "sandbox/fork_request.h"

#include <sys/resource.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "sandbox/mounts.h"
#include "sandbox/process.h"
#include "sandbox/rlimits.h"
#include "sandbox/setup_plan.h"

namespace airlock::sandbox {

// A cold child reads the plan after clone and a zygote receives it as bytes: plain data only.
static_assert(std::is_trivially_copyable_v<SetupPlan>);
// One plan type for both: what a cold child reads is what a fork request carries.
static_assert(std::is_same_v<decltype(ChildPlan::setup), decltype(ForkRequest::setup)>);

namespace {

// Two and three instructions: enough for the lengths; the zygote never reads them here.
SeccompFilters small_filters() {
  SeccompFilters filters;
  filters.policy_program.resize(2);
  filters.floor_program.resize(3);
  return filters;
}

size_t filter_bytes(const ForkRequest& request) {
  return (request.setup.policy_length + request.setup.floor_length) * sizeof(sock_filter);
}

Expected<ForkRequest> plan_request(const Spec& spec) {
  auto setup = plan_setup(spec, SandboxIdentity{}, small_filters());
  if (!setup) return setup.error();
  ForkRequest request;
  request.setup = setup.value();
  return request;
}

std::string tmpfs_data(uint64_t size_bytes, uint32_t mode) {
  char octal[16];
  std::snprintf(octal, sizeof octal, "%04o", mode);
  return "size=" + std::to_string(size_bytes) + ",mode=" + octal;
}

}  // namespace

TEST_CASE("a fork request puts the working dir first, then /tmp and /dev/shm with their sizes and modes") {
  Spec spec;
  spec.filesystem.workdir = "/work";
  spec.limits.workdir_size_bytes = 3 * kMiB;
  spec.limits.tmp_size_bytes = 5 * kMiB;
  spec.limits.shm_size_bytes = 7 * kMiB;
  spec.limits.max_open_files = 99;
  spec.filesystem.tmpfs.push_back({"/scratch", 11 * kMiB});
  spec.hostname = "box";
  auto request = plan_request(spec);
  REQUIRE(request.ok());
  const SetupPlan& setup = request->setup;
  CHECK(request->magic == ForkRequest::kMagic);
  CHECK(setup.uid == SandboxIdentity{}.uid);
  CHECK(setup.gid == SandboxIdentity{}.gid);
  CHECK(setup.control_fd_number == 99);
  CHECK(std::string(setup.hostname) == "box");
  CHECK_FALSE(setup.zygote);
  REQUIRE(setup.writable_count == 4);
  CHECK(std::string(setup.writable[0].path) == "/work");
  CHECK(setup.writable[0].size_bytes == 3 * kMiB);
  CHECK(setup.writable[0].mode == 0700);
  CHECK(std::string(setup.writable[1].path) == "/tmp");
  CHECK(setup.writable[1].size_bytes == 5 * kMiB);
  CHECK(setup.writable[1].mode == 01777);
  CHECK(std::string(setup.writable[2].path) == "/dev/shm");
  CHECK(setup.writable[2].size_bytes == 7 * kMiB);
  CHECK(setup.writable[2].mode == 01777);
  CHECK(std::string(setup.writable[3].path) == "/scratch");
  CHECK(setup.writable[3].size_bytes == 11 * kMiB);
  CHECK(setup.policy_length == 2);
  CHECK(setup.floor_length == 3);
  CHECK(fork_request_valid(*request, filter_bytes(*request)));
}

TEST_CASE("cold and forked plans of one spec agree on ids, hostname, rlimits and control fd") {
  Spec spec;
  spec.hostname = "agree";
  spec.limits.cpu_time = std::chrono::milliseconds(2500);
  spec.limits.max_open_files = 64;
  const SandboxIdentity identity{1234, 5678, "sandbox"};
  // The cold path's plan (Supervisor::launch) and a fork request's (Supervisor::fork_launch)
  // both come from plan_setup; the request carries it byte for byte.
  auto cold = plan_setup(spec, identity, small_filters());
  REQUIRE(cold.ok());
  ForkRequest request;
  request.setup = cold.value();
  const SetupPlan& forked = request.setup;
  CHECK(forked.uid == cold->uid);
  CHECK(forked.control_fd_number == cold->control_fd_number);
  CHECK(std::strcmp(forked.hostname, cold->hostname) == 0);

  CHECK(forked.uid == 1234);
  CHECK(forked.gid == 5678);
  CHECK(std::string(forked.hostname) == "agree");
  CHECK(forked.control_fd_number == control_fd_number_for(spec.limits));
  CHECK(forked.control_fd_number == 64);
  const auto expected = plan_rlimits(spec.limits);
  REQUIRE(forked.rlimit_count == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    CHECK(forked.rlimits[i].resource == expected[i].resource);
    CHECK(forked.rlimits[i].soft == expected[i].soft);
    CHECK(forked.rlimits[i].hard == expected[i].hard);
    // The control socket sits where the program cannot open an fd.
    if (expected[i].resource == RLIMIT_NOFILE) {
      CHECK(static_cast<rlim_t>(forked.control_fd_number) >= forked.rlimits[i].soft);
    }
  }
  // The cold child's identity files name the same ids its plan drops to.
  auto mounts = plan_mounts(spec, "/s", "/w", identity);
  REQUIRE(mounts.ok());
  bool found_passwd = false;
  for (const MountOp& op : mounts->ops) {
    if (op.target != "/s/etc/passwd") continue;
    found_passwd = true;
    CHECK(op.data.rfind("sandbox:x:1234:5678:", 0) == 0);
  }
  CHECK(found_passwd);

  // Never fewer than 4: 0-3 are the program's.
  spec.limits.max_open_files = 2;
  CHECK(control_fd_number_for(spec.limits) == 4);
  // A zygote's plan says so, for the cold child to install the floor filter only.
  spec.fork_server = true;
  auto zygote = plan_setup(spec, identity, small_filters());
  REQUIRE(zygote.ok());
  CHECK(zygote->zygote);
}

TEST_CASE("the tmpfs a cold mount plan makes are the writable places a fork request carries") {
  Spec spec;
  spec.filesystem.workdir = "/home/agent";
  spec.limits.tmp_size_bytes = 5 * kMiB;
  spec.limits.shm_size_bytes = 7 * kMiB;
  spec.filesystem.tmpfs.push_back({"/scratch", 11 * kMiB});
  spec.filesystem.tmpfs.push_back({"/var/cache", 13 * kMiB});
  auto setup = plan_setup(spec, SandboxIdentity{}, small_filters());
  REQUIRE(setup.ok());
  auto mounts = plan_mounts(spec, "/s", "/host/work", SandboxIdentity{});
  REQUIRE(mounts.ok());

  // The working dir is writable[0]: a cold sandbox binds it from the host's tmpfs of that size.
  std::vector<std::string> made;
  bool workdir_bound = false;
  for (const MountOp& op : mounts->ops) {
    if (op.kind == MountOp::Kind::tmpfs && op.target != "/s/dev") {
      made.push_back(op.target + " " + op.data);
    }
    if (op.kind == MountOp::Kind::bind && op.source == "/host/work") {
      workdir_bound = op.target == "/s" + std::string(setup->writable[0].path);
    }
  }
  CHECK(workdir_bound);
  std::vector<std::string> carried;
  for (uint32_t i = 1; i < setup->writable_count; ++i) {
    const SetupTmpfs& place = setup->writable[i];
    carried.push_back("/s" + std::string(place.path) + " " +
                      tmpfs_data(place.size_bytes, place.mode));
  }
  CHECK(made == carried);
  CHECK(carried.size() == 4);
}

TEST_CASE("a hostname or tmpfs path too long for the setup plan is a setup error") {
  Spec long_hostname;
  long_hostname.hostname = std::string(HOST_NAME_MAX + 1, 'h');
  auto refused = plan_request(long_hostname);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().operation.find("hostname") != std::string::npos);
  Spec longest_hostname;
  longest_hostname.hostname = std::string(HOST_NAME_MAX, 'h');  // what sethostname takes
  CHECK(plan_request(longest_hostname).ok());

  Spec long_path;
  long_path.filesystem.tmpfs.push_back({"/" + std::string(sizeof(SetupTmpfs::path), 'p'), kMiB});
  refused = plan_request(long_path);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().operation.find("path longer than") != std::string::npos);

  Spec relative;
  relative.filesystem.tmpfs.push_back({"scratch", kMiB});
  refused = plan_request(relative);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().operation.find("must be absolute") != std::string::npos);

  Spec root;
  root.filesystem.tmpfs.push_back({"/", kMiB});
  CHECK_FALSE(plan_request(root).ok());

  Spec crowded;
  for (int i = 0; i < SetupPlan::kMaxWritable - 2; ++i) {
    crowded.filesystem.tmpfs.push_back({"/t" + std::to_string(i), kMiB});
  }
  CHECK_FALSE(plan_request(crowded).ok());
  crowded.filesystem.tmpfs.pop_back();
  CHECK(plan_request(crowded).ok());
}

TEST_CASE("open files beyond what this process may open are a setup error naming the limit") {
  struct rlimit files {};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &files) == 0);
  Spec spec;
  spec.limits.max_open_files = static_cast<uint32_t>(files.rlim_cur);
  auto refused = plan_request(spec);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().operation == "open_files " + std::to_string(files.rlim_cur) +
                                         " is more than this host lets airlock's processes open (" +
                                         std::to_string(files.rlim_cur) +
                                         "); lower the policy's open_files");
  spec.limits.max_open_files = static_cast<uint32_t>(files.rlim_cur - 1);
  CHECK(plan_request(spec).ok());
}

TEST_CASE("gateway ports: distinct, at most kMaxGatewayPorts, never 0, none for a fork server") {
  Spec spec;
  spec.gateway_ports = {443, 80, 443, 8080};
  auto plan = plan_setup(spec, SandboxIdentity{}, small_filters());
  REQUIRE(plan.ok());
  REQUIRE(plan->gateway_port_count == 3);
  CHECK(plan->gateway_ports[0] == 443);
  CHECK(plan->gateway_ports[1] == 80);
  CHECK(plan->gateway_ports[2] == 8080);

  Spec crowded;
  for (uint16_t port = 1; port <= kMaxGatewayPorts; ++port) crowded.gateway_ports.push_back(port);
  CHECK(plan_setup(crowded, SandboxIdentity{}, small_filters()).ok());
  crowded.gateway_ports.push_back(1000);
  auto refused = plan_setup(crowded, SandboxIdentity{}, small_filters());
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().operation.find("gateway ports") != std::string::npos);

  Spec zero;
  zero.gateway_ports = {0};
  CHECK_FALSE(plan_setup(zero, SandboxIdentity{}, small_filters()).ok());
  Spec zygote;  // its children get the sockets, not it
  zygote.fork_server = true;
  zygote.gateway_ports = {443};
  auto zygote_plan = plan_setup(zygote, SandboxIdentity{}, small_filters());
  REQUIRE(zygote_plan.ok());
  CHECK(zygote_plan->gateway_port_count == 0);
}

TEST_CASE("a request with a relative tmpfs path, no NUL in its hostname or a wrong filter size is refused") {
  auto planned = plan_request(Spec{});
  REQUIRE(planned.ok());
  const ForkRequest good = *planned;
  REQUIRE(fork_request_valid(good, filter_bytes(good)));

  ForkRequest relative = good;
  std::strcpy(relative.setup.writable[1].path, "tmp");
  CHECK_FALSE(fork_request_valid(relative, filter_bytes(relative)));

  ForkRequest unterminated_path = good;
  std::memset(unterminated_path.setup.writable[2].path, 'a',
              sizeof unterminated_path.setup.writable[2].path);
  unterminated_path.setup.writable[2].path[0] = '/';
  CHECK_FALSE(fork_request_valid(unterminated_path, filter_bytes(unterminated_path)));

  ForkRequest unterminated_hostname = good;
  std::memset(unterminated_hostname.setup.hostname, 'h',
              sizeof unterminated_hostname.setup.hostname);
  CHECK_FALSE(fork_request_valid(unterminated_hostname, filter_bytes(unterminated_hostname)));

  CHECK_FALSE(fork_request_valid(good, filter_bytes(good) - sizeof(sock_filter)));
  CHECK_FALSE(fork_request_valid(good, filter_bytes(good) + 1));

  ForkRequest wrong_magic = good;
  wrong_magic.magic = 0;
  CHECK_FALSE(fork_request_valid(wrong_magic, filter_bytes(wrong_magic)));

  ForkRequest low_control_fd = good;
  low_control_fd.setup.control_fd_number = 3;  // would take the program's fd 3
  CHECK_FALSE(fork_request_valid(low_control_fd, filter_bytes(low_control_fd)));

  ForkRequest too_many_rlimits = good;
  too_many_rlimits.setup.rlimit_count = SetupPlan::kMaxRlimits + 1;
  CHECK_FALSE(fork_request_valid(too_many_rlimits, filter_bytes(too_many_rlimits)));

  ForkRequest too_many_cgroup_files = good;  // more than A has places for
  too_many_cgroup_files.cgroup_join_count = kMaxCgroupJoinFiles + 1;
  CHECK_FALSE(fork_request_valid(too_many_cgroup_files, filter_bytes(too_many_cgroup_files)));

  ForkRequest zygote = good;  // its children would go without the policy's filter
  zygote.setup.zygote = true;
  CHECK_FALSE(fork_request_valid(zygote, filter_bytes(zygote)));
}

}  // namespace airlock::sandbox
