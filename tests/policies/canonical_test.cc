// The hash names the meaning of a policy: same meaning, same hash; any change of meaning, a new
// one.
#include "policies/canonical.h"

#include <catch2/catch.hpp>

#include <set>
#include "policies/loader.h"

#include "test_support.h"

namespace airlock::policies {
namespace {

using testing::TempDir;

std::string hash_of(const TempDir& dir, const std::string& name, const std::string& text) {
  const LoadResult result = load_policy(dir.write(name, text), {dir.path()});
  INFO(testing::error_text(result));
  REQUIRE(result.ok());
  return result.policy->hash;
}

}  // namespace

TEST_CASE("key order, comments, names and descriptions do not change the hash") {
  TempDir dir;
  const std::string a = hash_of(dir, "a.yaml",
                                "description: one\nlimits: {memory: 256MiB, processes: 8}\n"
                                "syscalls:\n  deny: [chmod, chown]\n");
  const std::string b = hash_of(dir, "b.yaml",
                                "# the same, written differently\n"
                                "syscalls:\n  deny: [chown, chmod, chmod]\n"
                                "limits:\n  processes: 8\n  memory: 262144KiB\n"
                                "description: two\n");
  CHECK(a == b);
}

TEST_CASE("a group and its members spelled out give the same hash") {
  TempDir dir;
  CHECK(hash_of(dir, "a.yaml", "syscalls:\n  deny: ['@swap']\n  default_action: kill\n") ==
        hash_of(dir, "b.yaml", "syscalls:\n  default_action: kill\n  deny: [swapoff, swapon]\n"));
}

TEST_CASE("layering and writing the effective policy out in one file give the same hash") {
  TempDir dir;
  dir.write("base.yaml", "limits: {memory: 1GiB}\nenvironment: {A: x}\n");
  CHECK(hash_of(dir, "child.yaml", "extends: base\nlimits: {processes: 3}\n") ==
        hash_of(dir, "flat.yaml", "limits: {memory: 1GiB, processes: 3}\nenvironment: {A: x}\n"));
}

TEST_CASE("every change of meaning changes the hash") {
  TempDir dir;
  const std::string base = hash_of(dir, "base.yaml", "limits: {memory: 256MiB}\n");
  const std::vector<std::string> variants{
      "limits: {memory: 257MiB}\n",
      "limits: {memory: 256MiB, output_overflow: kill}\n",
      "limits: {memory: 256MiB}\nnetwork: loopback\n",
      "limits: {memory: 256MiB}\nenvironment: {A: b}\n",
      "limits: {memory: 256MiB}\nruntimes: [python]\n",
      "limits: {memory: 256MiB}\nfilesystem: {binds: [/usr]}\n",
      "limits: {memory: 256MiB}\nfilesystem: {binds: [{path: /usr, writable: true}]}\n",
      "limits: {memory: 256MiB}\nsyscalls: {deny: [chmod]}\n",
      "limits: {memory: 256MiB}\nsyscalls: {deny_action: kill, deny: [chmod]}\n",
      "limits: {memory: 256MiB}\nsyscalls: {default_action: log}\n",
  };
  std::set<std::string> hashes{base};
  for (size_t i = 0; i < variants.size(); ++i) {
    INFO(variants[i]);
    hashes.insert(hash_of(dir, "v" + std::to_string(i) + ".yaml", variants[i]));
  }
  CHECK(hashes.size() == variants.size() + 1);
}

TEST_CASE("the hash is the sha256 of the canonical text, which starts with its version") {
  TempDir dir;
  const LoadResult result = load_policy(dir.write("p.yaml", "network: none\n"), {});
  REQUIRE(result.ok());
  CHECK(result.policy->canonical.starts_with("airlock-policy-canonical 1\n"));
  CHECK(result.policy->hash == "sha256:" + policy_digest(result.policy->canonical));
  CHECK(result.policy->canonical.find("syscalls.rule socket arg0 != 1 -> errno(EPERM)\n") !=
        std::string::npos);
}

TEST_CASE("strings in the canonical text are quoted so that no value can forge a line") {
  CHECK(quote_string("a\"b\\c\nd") == "\"a\\\"b\\\\c\\nd\"");
  CHECK(quote_string(std::string("\x01", 1)) == "\"\\u0001\"");
}

}  // namespace airlock::policies
