#include "policies/syscall_groups.h"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "policies/kernel_names.h"
#include "test_support.h"

namespace airlock::policies {

TEST_CASE("every group member is a syscall libseccomp knows, or a known group") {
  for (const auto& group : syscall_groups()) {
    for (const auto& member : group.members) {
      INFO(group.name << " member " << member);
      if (member.starts_with('@')) {
        CHECK(find_group(member) != nullptr);
      } else {
        CHECK(is_known_syscall(member));
      }
    }
  }
}

TEST_CASE("nested groups expand to their syscalls, sorted and without duplicates") {
  const auto privileged = expand_group("@privileged");
  REQUIRE(privileged);
  for (const char* expected :
       {"mount", "settimeofday", "init_module", "iopl", "reboot", "swapon", "bpf", "acct"}) {
    CHECK(std::find(privileged->begin(), privileged->end(), expected) != privileged->end());
  }
  CHECK(std::is_sorted(privileged->begin(), privileged->end()));
  CHECK(std::adjacent_find(privileged->begin(), privileged->end()) == privileged->end());
  CHECK_FALSE(expand_group("@nonsense"));
}

TEST_CASE("the floor's group names are those policy groups use, and explained where they are not") {
  std::vector<std::string> names;
  for (const auto& group : floor_groups()) {
    INFO(group.name);
    names.push_back(group.name);
    CHECK_FALSE(group.description.empty());
    CHECK_FALSE(group.members.empty());
    if (const auto members = expand_group(group.name)) {
      for (const auto& member : group.members) {
        if (member.ends_with("(some arguments)") || member == "clone3") continue;
        INFO(member);
        CHECK(std::find(members->begin(), members->end(), member) != members->end());
      }
    }
  }
  // The names reviewers used to meet in two spellings.
  CHECK(std::find(names.begin(), names.end(), "@io-uring") != names.end());
  CHECK(std::find(names.begin(), names.end(), "@io_uring") == names.end());
  CHECK(std::find(names.begin(), names.end(), "@kexec") == names.end());
  for (const auto& floor_only : names) {
    if (find_group(floor_only) != nullptr) continue;
    INFO(floor_only << " is only the floor's: no policy may name it");
    CHECK((floor_only == "@bpf" || floor_only == "@perf" || floor_only == "@userfaultfd" ||
           floor_only == "@handles" || floor_only == "@seccomp-listener" ||
           floor_only == "@tty-injection"));
  }
}

TEST_CASE("clone3 is in no group, so no group can let it past the floor") {
  for (const auto& group : syscall_groups()) {
    const auto members = expand_group(group.name);
    CHECK(std::find(members->begin(), members->end(), "clone3") == members->end());
  }
}

TEST_CASE("policies/README.md lists every group with exactly its members") {
  std::ifstream in(testing::shipped_dir() + "/README.md");
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  for (const auto& group : syscall_groups()) {
    std::string row = "| `" + group.name + "` | " + group.description + " |";
    for (size_t i = 0; i < group.members.size(); ++i) {
      row += (i ? ", " : " ") + std::string("`") + group.members[i] + "`";
    }
    row += " |";
    INFO(row);
    CHECK(text.str().find(row) != std::string::npos);
  }
}

}  // namespace airlock::policies
