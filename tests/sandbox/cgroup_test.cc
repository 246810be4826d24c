#include "sandbox/cgroup.h"

#include <unistd.h>

#include <catch2/catch.hpp>

namespace airlock::sandbox {

TEST_CASE("v1 settings cap memory and swap alike, processes, and cpu bandwidth") {
  Limits limits;
  limits.memory_max_bytes = 128 * kMiB;
  limits.max_processes = 32;
  limits.cpu_millicores = 500;
  auto writes = plan_cgroup_v1(limits, true);
  std::vector<std::string> lines;
  for (const CgroupWrite& w : writes) lines.push_back(w.controller + "/" + w.file + "=" + w.value);
  CHECK(lines == std::vector<std::string>{
                     "memory/memory.limit_in_bytes=134217728",
                     "memory/memory.memsw.limit_in_bytes=134217728",
                     "memory/memory.swappiness=0",
                     "pids/pids.max=32",
                     "cpu/cpu.cfs_period_us=100000",
                     "cpu/cpu.cfs_quota_us=50000",
                 });
  auto without_memsw = plan_cgroup_v1(limits, false);
  for (const CgroupWrite& w : without_memsw) CHECK(w.file != "memory.memsw.limit_in_bytes");
}

TEST_CASE("v2 settings forbid swap and make one OOM kill end the whole group") {
  Limits limits;
  limits.memory_max_bytes = 256 * kMiB;
  limits.cpu_millicores = 2000;
  std::vector<std::string> lines;
  for (const CgroupWrite& w : plan_cgroup_v2(limits)) lines.push_back(w.file + "=" + w.value);
  CHECK(lines == std::vector<std::string>{"memory.max=268435456", "memory.swap.max=0",
                                          "memory.oom.group=1", "pids.max=64",
                                          "cpu.max=200000 100000"});
}

TEST_CASE("a background run has the lowest CPU weight each version allows; normal the default") {
  auto line = [](const CgroupWrite& w) { return w.controller + "/" + w.file + "=" + w.value; };
  CHECK(line(plan_cpu_share_v1(CpuShare::background)) == "cpu/cpu.shares=2");
  CHECK(line(plan_cpu_share_v1(CpuShare::normal)) == "cpu/cpu.shares=1024");
  CHECK(line(plan_cpu_share_v2(CpuShare::background)) == "/cpu.weight=1");
  CHECK(line(plan_cpu_share_v2(CpuShare::normal)) == "/cpu.weight=100");
}

TEST_CASE("the own cgroup path is read per controller from /proc/self/cgroup") {
  const std::string v1 =
      "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/b17\n2:cpu,cpuacct:/svc\n0::/\n";
  CHECK(own_cgroup_path(v1, "memory") == "/process_api/b17");
  CHECK(own_cgroup_path(v1, "pids") == "/");
  CHECK(own_cgroup_path(v1, "cpuacct") == "/svc");
  CHECK(own_cgroup_path(v1, "blkio") == "");
  CHECK(own_cgroup_path("0::/system.slice/airlock.service\n", "") ==
        "/system.slice/airlock.service");
}

TEST_CASE("keyed counters are parsed by exact key") {
  const std::string events = "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\noom_group_kill 0\n";
  CHECK(parse_keyed_value(events, "oom_kill") == 1);
  CHECK(parse_keyed_value(events, "oom") == 2);
  CHECK(parse_keyed_value(events, "max") == 3);
  CHECK(parse_keyed_value(events, "missing") == 0);
}

TEST_CASE("an instance dir belongs to a live supervisor only with the same pid and start time") {
  const pid_t self = ::getpid();
  const uint64_t ticks = process_start_ticks(self);
  REQUIRE(ticks > 0);
  CHECK(instance_is_alive(instance_prefix(self, ticks) + "7"));
  CHECK_FALSE(instance_is_alive(instance_prefix(self, ticks + 1) + "7"));  // pid reused
  CHECK_FALSE(instance_is_alive("999999999-1-1"));
  CHECK_FALSE(instance_is_alive("not-an-instance"));
  CHECK_FALSE(instance_is_alive(instance_prefix(self, ticks)));  // no number
}

TEST_CASE("two sandboxes of one process get instance names of their own") {
  const std::string first = new_instance_name(), second = new_instance_name();
  CHECK(first != second);
  CHECK(first.rfind(instance_prefix(::getpid(), process_start_ticks(::getpid())), 0) == 0);
  CHECK(instance_is_alive(first));
  CHECK(instance_is_alive(second));
}

}  // namespace airlock::sandbox
