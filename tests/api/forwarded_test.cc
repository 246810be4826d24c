// X-Forwarded-For is believed only from a trusted proxy, and only for the hops such proxies added.
#include "api/transport/forwarded.h"

#include <catch2/catch.hpp>

namespace airlock::api {
namespace {

std::vector<policies::Cidr> networks(std::initializer_list<const char*> texts) {
  std::vector<policies::Cidr> parsed;
  for (const char* text : texts) parsed.push_back(*policies::Cidr::parse(text));
  return parsed;
}

using Headers = std::vector<std::pair<std::string, std::string>>;

}  // namespace

TEST_CASE("a trusted proxy's X-Forwarded-For names the first hop it did not add") {
  const auto trusted = networks({"10.0.0.0/8", "fd00::/8"});
  CHECK(forwarded_client("10.0.0.7:51234", {{"X-Forwarded-For", "198.51.100.7"}}, trusted) ==
        "198.51.100.7 (via 10.0.0.7:51234)");
  // What the client wrote itself comes before the untrusted hop and is not believed.
  CHECK(forwarded_client("10.0.0.7:1", {{"x-forwarded-for", "192.0.2.1, 198.51.100.7, 10.1.2.3"}},
                         trusted) == "198.51.100.7 (via 10.0.0.7:1)");
  // Two headers count as one list, in order.
  CHECK(forwarded_client("10.0.0.7:1",
                         {{"X-Forwarded-For", "198.51.100.7"}, {"X-Forwarded-For", "10.9.9.9"}},
                         trusted) == "198.51.100.7 (via 10.0.0.7:1)");
  // IPv6 peers and hops; an IPv4-mapped peer counts as its IPv4 address.
  CHECK(forwarded_client("fd00::5:80", {{"X-Forwarded-For", "2001:db8::9"}}, trusted) ==
        "2001:db8::9 (via fd00::5:80)");
  CHECK(forwarded_client("::ffff:10.0.0.7:80", {{"X-Forwarded-For", "198.51.100.7"}}, trusted) ==
        "198.51.100.7 (via ::ffff:10.0.0.7:80)");
  // Every hop trusted: the chain began at a proxy, which is then the client.
  CHECK(forwarded_client("10.0.0.7:1", {{"X-Forwarded-For", "10.0.0.8"}}, trusted) ==
        "10.0.0.8 (via 10.0.0.7:1)");
}

TEST_CASE("X-Forwarded-For from anyone else, or malformed, leaves the peer as the client") {
  const auto trusted = networks({"10.0.0.0/8"});
  const Headers forged = {{"X-Forwarded-For", "198.51.100.7"}};
  CHECK(forwarded_client("203.0.113.5:4000", forged, trusted) == "203.0.113.5:4000");
  CHECK(forwarded_client("10.0.0.7:1", forged, {}) == "10.0.0.7:1");   // no proxy trusted
  CHECK(forwarded_client("10.0.0.7:1", {}, trusted) == "10.0.0.7:1");  // no header
  for (const char* bad : {"", "not-an-address", "198.51.100.7:8080", "[2001:db8::1]",
                          "198.51.100.0/24", "198.51.100.7\n"}) {
    INFO(bad);
    CHECK(forwarded_client("10.0.0.7:1", {{"X-Forwarded-For", bad}}, trusted) == "10.0.0.7:1");
  }
  // The walk stops at a malformed hop: only the trusted hop after it is named.
  CHECK(forwarded_client("10.0.0.7:1", {{"X-Forwarded-For", "<script>, 10.0.0.8"}}, trusted) ==
        "10.0.0.8 (via 10.0.0.7:1)");
  // A chain longer than any real one is not walked at all.
  std::string long_chain = "198.51.100.7";
  for (int i = 0; i < 40; ++i) long_chain += ", 10.0.0.1";
  CHECK(forwarded_client("10.0.0.7:1", {{"X-Forwarded-For", long_chain}}, trusted) == "10.0.0.7:1");
}

}  // namespace airlock::api
