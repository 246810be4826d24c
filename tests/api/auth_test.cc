#include "api/auth.h"

#include <catch2/catch.hpp>

#include "policies/sha256.h"

using namespace airlock::api;

namespace {

// sha256("test-key") and sha256("admin-key")
const std::string kTestKeyDigest =
    "62af8704764faf8ea82fc61ce9c4c3908b6cb97d463a634e9e587d7c885db0ef";
const std::string kAdminKeyDigest =
    "69a5265506c94c77b787a7d7377b7685a0eff82e33920a71e7ee22cd6154953e";

Authenticator two_keys() {
  return Authenticator({{"test", kTestKeyDigest, {"default"}}, {"admin", kAdminKeyDigest, {"*"}}});
}

}  // namespace

TEST_CASE("without keys everyone is let in with every policy") {
  Authenticator auth({});
  Identity identity;
  CHECK(auth.open());
  CHECK_FALSE(auth.authenticate(std::nullopt, identity));
  CHECK(identity.may_use("anything"));
}

TEST_CASE("a request without a bearer key is refused as missing") {
  Authenticator auth = two_keys();
  Identity identity;
  CHECK(auth.authenticate(std::nullopt, identity) == AuthFailure::missing);
  CHECK(auth.authenticate("Basic dGVzdA==", identity) == AuthFailure::missing);
  CHECK(auth.authenticate("Bearer ", identity) == AuthFailure::missing);
}

TEST_CASE("a wrong key is refused as invalid") {
  Authenticator auth = two_keys();
  Identity identity;
  CHECK(auth.authenticate("Bearer test-kez", identity) == AuthFailure::invalid);
  // The digest itself is not a key.
  CHECK(auth.authenticate("Bearer " + kTestKeyDigest, identity) == AuthFailure::invalid);
}

TEST_CASE("a valid key may use only its policies") {
  Authenticator auth = two_keys();
  Identity identity;
  REQUIRE_FALSE(auth.authenticate("bearer test-key", identity));
  CHECK(identity.key_name == "test");
  CHECK(identity.may_use("default"));
  CHECK_FALSE(identity.may_use("unsafe"));
}

TEST_CASE("a key allowed \"*\" may use every policy") {
  Authenticator auth = two_keys();
  Identity identity;
  REQUIRE_FALSE(auth.authenticate("Bearer admin-key", identity));
  CHECK(identity.key_name == "admin");
  CHECK(identity.may_use("unsafe"));
}

TEST_CASE("replacing the keys lets the new ones in and the old ones no longer") {
  Authenticator auth = two_keys();
  Identity identity;
  REQUIRE_FALSE(auth.replace({{"rotated", airlock::policies::sha256_hex("new-key"), {"default"}}}));
  CHECK(auth.authenticate("Bearer test-key", identity) == AuthFailure::invalid);
  REQUIRE_FALSE(auth.authenticate("Bearer new-key", identity));
  CHECK(identity.key_name == "rotated");
  CHECK(auth.names() == std::vector<std::string>{"rotated"});
}

TEST_CASE("a reload may not take away every key, which would let everyone in") {
  Authenticator auth = two_keys();
  const auto refused = auth.replace({});
  REQUIRE(refused);
  CHECK(refused->find("would let every client in") != std::string::npos);
  CHECK_FALSE(auth.open());
  Identity identity;
  CHECK_FALSE(auth.authenticate("Bearer admin-key", identity));
  // A service that started without keys may get some.
  Authenticator open_auth({});
  CHECK_FALSE(open_auth.replace({{"first", kTestKeyDigest, {"default"}}}));
  CHECK_FALSE(open_auth.open());
}
