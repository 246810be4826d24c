#include "policies/errors.h"

#include <yaml-cpp/mark.h>
#include <catch2/catch.hpp>

namespace airlock::policies {

TEST_CASE("an error prints as file:line:column: message, 1-based") {
  ErrorList errors("p.yaml");
  YAML::Mark mark;
  mark.line = 2;  // yaml-cpp counts from 0
  mark.column = 4;
  errors.add(mark, "bad");
  errors.add(YAML::Mark::null_mark(), "whole file");
  REQUIRE(errors.errors().size() == 2);
  CHECK(errors.errors()[0].format() == "p.yaml:3:5: bad");
  CHECK(errors.errors()[1].format() == "p.yaml: whole file");
}

TEST_CASE("edit distance counts insertions, deletions, substitutions and swaps") {
  CHECK(edit_distance("memory", "memory") == 0);
  CHECK(edit_distance("memroy", "memory") == 1);  // swapped neighbours
  CHECK(edit_distance("memor", "memory") == 1);
  CHECK(edit_distance("nemory", "memory") == 1);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("kitten", "sitting") == 3);
}

TEST_CASE("a suggestion is made only for a plausible typo") {
  const std::vector<std::string> keys{"memory", "processes", "wall_time"};
  CHECK(did_you_mean("memroy", keys) == " — did you mean 'memory'?");
  CHECK(did_you_mean("wall_tme", keys) == " — did you mean 'wall_time'?");
  CHECK(did_you_mean("colour", keys).empty());
  CHECK(nearest("x", keys).empty());
}

}  // namespace airlock::policies
