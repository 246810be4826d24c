#include "runner/ids.h"

#include <catch2/catch.hpp>

#include <set>

using airlock::runner::IdMaker;
using airlock::runner::IdOrigin;
using airlock::runner::is_replica_name;

TEST_CASE("an id names its replica, and its maker knows it as its own") {
  const IdMaker ids("r1");
  const std::string id = ids.make("se");
  CHECK(id.starts_with("se_r1_"));
  CHECK(id.size() == 6 + 24);
  CHECK(IdMaker::well_formed("se", id));
  CHECK(IdMaker::replica_of("se", id) == "r1");
  CHECK(ids.origin("se", id) == IdOrigin::this_run);
  // Another kind of id is not this kind.
  CHECK(ids.origin("ex", id) == IdOrigin::not_an_id);
}

TEST_CASE("without a replica name an id keeps its old form") {
  const IdMaker ids;
  const std::string id = ids.make("ex");
  CHECK(id.starts_with("ex_"));
  CHECK(id.size() == 3 + 24);
  CHECK(id.find_first_not_of("0123456789abcdef", 3) == std::string::npos);
  CHECK(IdMaker::replica_of("ex", id).empty());
  CHECK(ids.origin("ex", id) == IdOrigin::this_run);
}

TEST_CASE("ids of one process differ, and share the process's incarnation") {
  const IdMaker ids("airlock-0");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(ids.make("se"));
  CHECK(seen.size() == 1000);
  const IdMaker copy = ids;  // what the service hands to sessions and executions
  CHECK(copy.origin("se", *seen.begin()) == IdOrigin::this_run);
}

TEST_CASE("a replica that restarted tells its earlier ids from another replica's") {
  const IdMaker before("r2");
  const IdMaker after("r2");  // the same name, a new process
  CHECK(after.origin("se", before.make("se")) == IdOrigin::earlier_run);
  CHECK(after.origin("se", IdMaker("r3").make("se")) == IdOrigin::other_replica);
  CHECK(after.origin("se", IdMaker().make("se")) == IdOrigin::other_replica);
  CHECK(IdMaker().origin("se", before.make("se")) == IdOrigin::other_replica);
  // A lone service answers for any id of its form as it always did (404 when it has none).
  CHECK(IdMaker().origin("se", IdMaker().make("se")) == IdOrigin::this_run);
}

TEST_CASE("what is not an id of this form is said to be none") {
  const IdMaker ids("r1");
  for (const char* text :
       {"", "se_", "se_r1_", "se_r1_123", "se_r1_0123456789abcdef0123456g",
        "se_R1_0123456789abcdef01234567", "se_-r1_0123456789abcdef01234567",
        "se_r1_x_0123456789abcdef01234567", "se0123456789abcdef01234567",
        "ex_r1_0123456789abcdef01234567", "se_r1_0123456789abcdef012345678"}) {
    INFO(text);
    CHECK_FALSE(IdMaker::well_formed("se", text));
    CHECK(ids.origin("se", text) == IdOrigin::not_an_id);
  }
}

TEST_CASE("a replica name is short, lowercase, and fits a pod's name") {
  CHECK(is_replica_name("r1"));
  CHECK(is_replica_name("airlock-0"));
  CHECK(is_replica_name(std::string(32, 'a')));
  CHECK_FALSE(is_replica_name(""));
  CHECK_FALSE(is_replica_name(std::string(33, 'a')));
  CHECK_FALSE(is_replica_name("-r1"));
  CHECK_FALSE(is_replica_name("R1"));
  CHECK_FALSE(is_replica_name("r_1"));  // '_' separates the name from the digits
  CHECK_FALSE(is_replica_name("r1.example"));
}
