// The registry never weakens what is in force: invalid new versions keep the old one, and runs
// hold the Policy they started with.
#include "policies/registry.h"

#include <catch2/catch.hpp>

#include <filesystem>
#include <thread>

#include "test_support.h"

namespace airlock::policies {

using testing::TempDir;

TEST_CASE("reload loads every policy in the directories") {
  TempDir dir;
  dir.write("alpha.yaml", "limits: {memory: 128MiB}\n");
  dir.write("beta.yaml", "extends: alpha\n");
  dir.write("notes.txt", "not a policy\n");
  PolicyRegistry registry({dir.path()});
  CHECK(registry.reload().empty());
  CHECK(registry.names() == std::vector<std::string>{"alpha", "beta"});
  REQUIRE(registry.get("beta"));
  CHECK(registry.get("beta")->limits.memory_max_bytes == 128 * sandbox::kMiB);
  CHECK(registry.get("gamma") == nullptr);
}

TEST_CASE("an invalid new version keeps the old one in force and reports its errors") {
  TempDir dir;
  const std::string path = dir.write("p.yaml", "limits: {memory: 128MiB}\n");
  PolicyRegistry registry({dir.path()});
  REQUIRE(registry.reload().empty());
  const auto before = registry.get("p");
  REQUIRE(before);

  dir.write("p.yaml", "limits: {memory: 8GiB, memroy: 1GiB}\n");
  const auto errors = registry.reload();
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].format() == path + ":1:24: unknown key 'memroy' — did you mean 'memory'?");
  CHECK(registry.get("p") == before);
  CHECK(registry.get("p")->limits.memory_max_bytes == 128 * sandbox::kMiB);
}

TEST_CASE("a run keeps the policy it started with after a valid reload") {
  TempDir dir;
  dir.write("p.yaml", "limits: {processes: 5}\n");
  PolicyRegistry registry({dir.path()});
  REQUIRE(registry.reload().empty());
  const auto in_flight = registry.get("p");
  dir.write("p.yaml", "limits: {processes: 6}\n");
  REQUIRE(registry.reload().empty());
  CHECK(in_flight->limits.max_processes == 5);
  CHECK(registry.get("p")->limits.max_processes == 6);
  CHECK(registry.get("p")->hash != in_flight->hash);
}

TEST_CASE("a policy whose file is gone is removed; a new invalid one never appears") {
  TempDir dir;
  const std::string path = dir.write("p.yaml", "network: none\n");
  PolicyRegistry registry({dir.path()});
  REQUIRE(registry.reload().empty());
  std::filesystem::remove(path);
  dir.write("q.yaml", "network: everywhere\n");
  CHECK(registry.reload().size() == 1);
  CHECK(registry.names().empty());
}

TEST_CASE("the first directory that holds a name wins") {
  TempDir first;
  TempDir second;
  first.write("p.yaml", "limits: {processes: 1}\n");
  second.write("p.yaml", "limits: {processes: 2}\n");
  second.write("q.yaml", "limits: {processes: 3}\n");
  PolicyRegistry registry({first.path(), second.path()});
  REQUIRE(registry.reload().empty());
  CHECK(registry.get("p")->limits.max_processes == 1);
  CHECK(registry.get("q")->limits.max_processes == 3);
}

TEST_CASE("get is safe while another thread reloads") {
  TempDir dir;
  dir.write("p.yaml", "limits: {processes: 5}\n");
  PolicyRegistry registry({dir.path()});
  REQUIRE(registry.reload().empty());
  std::atomic<bool> stop{false};
  std::atomic<int> misses{0};
  std::thread reader([&] {
    while (!stop) {
      if (!registry.get("p")) ++misses;
    }
  });
  for (int i = 0; i < 50; ++i) {
    dir.write("p.yaml", i % 2 ? "limits: {processes: 5}\n" : "limits: {processes: oops}\n");
    (void)registry.reload();
  }
  stop = true;
  reader.join();
  CHECK(misses == 0);  // an invalid version never made the policy disappear
}

}  // namespace airlock::policies
