// The egress section: networks and names as rules hold them, parsing into the effective policy,
// layering with `network`, the hash, `policy show`, and narrowing for a request. Mistakes with
// their positions are in broken/egress_*.yaml.
#include "policies/egress.h"

#include <sys/socket.h>
#include <catch2/catch.hpp>

#include "policies/canonical.h"
#include "policies/loader.h"
#include "policies/render.h"
#include "test_support.h"

namespace airlock::policies {
namespace {

using testing::load_ok;
using testing::TempDir;


Cidr host(const char* address) {
  auto parsed = Cidr::parse(address);
  REQUIRE(parsed);
  return *parsed;
}

const char* const kPolicy =
    "egress:\n"
    "  allow:\n"
    "    - domain: PyPI.org.\n"
    "      ports: [443]\n"
    "      reason: pip installs packages\n"
    "    - cidr: 10.1.2.0/24\n"
    "      ports: [5432]\n"
    "      reason: the team's database\n"
    "    - domain: \"*.pythonhosted.org\"\n"
    "      ports: [443, 80]\n"
    "      reason: pip downloads the files\n"
    "    - domain: api.internal.test\n"
    "      ports: [80]\n"
    "      reason: the internal API, its token added by the gateway\n"
    "      headers:\n"
    "        Authorization: {secret: internal_api}\n"
    "  max_connections: 16\n"
    "  max_bytes: 1GiB\n";

bool denies_inet_sockets(const Policy& policy) {
  for (const auto& rule : policy.syscalls.rules) {
    if (rule.syscall == "socket") return true;
  }
  return false;
}

}  // namespace

TEST_CASE("a cidr parses, says whether it holds an address, and prints as it was read") {
  const Cidr network = host("10.1.2.0/24");
  CHECK_FALSE(network.v6);
  CHECK(network.prefix_length == 24);
  CHECK(network.text() == "10.1.2.0/24");
  CHECK(network.contains(host("10.1.2.77")));
  CHECK_FALSE(network.contains(host("10.1.3.1")));
  CHECK(host("10.1.2.3").text() == "10.1.2.3");  // a bare address is a /32
  CHECK(host("10.1.2.3").prefix_length == 32);
  CHECK(host("0.0.0.0/0").contains(host("192.0.2.1")));
  CHECK(host("2001:db8::/32").v6);
  CHECK(host("2001:db8::/32").text() == "2001:db8::/32");
  CHECK_FALSE(host("2001:db8::/32").contains(host("10.1.2.3")));
  for (const char* bad : {"10.1.2.3/24", "10.1.2.0/33", "10.1.2.0/", "10.1.2/24", "pypi.org",
                          "10.1.2.0/2x", "", "2001:db8::1/32"}) {
    INFO(bad);
    CHECK_FALSE(Cidr::parse(bad));
  }
}

TEST_CASE("a wildcard domain matches every name below it at any depth, not the apex") {
  CHECK(domain_matches("pypi.org", "pypi.org"));
  CHECK_FALSE(domain_matches("pypi.org", "files.pypi.org"));
  CHECK(domain_matches("*.pythonhosted.org", "files.pythonhosted.org"));
  CHECK(domain_matches("*.pythonhosted.org", "a.b.pythonhosted.org"));
  CHECK_FALSE(domain_matches("*.pythonhosted.org", "pythonhosted.org"));
  CHECK_FALSE(domain_matches("*.pythonhosted.org", "evilpythonhosted.org"));
  CHECK_FALSE(domain_matches("*.pythonhosted.org", "pythonhosted.org.evil.test"));
}

TEST_CASE("domains are lower-cased without a trailing dot and checked label by label") {
  CHECK(normalize_domain("PyPI.Org.") == "pypi.org");
  CHECK(normalize_domain("pypi.org..") == "pypi.org.");  // one dot only; the rest is an error
  for (const char* good : {"pypi.org", "*.pythonhosted.org", "a-b.c0.example", "x.y.z.test"}) {
    INFO(good);
    CHECK(domain_problem(good).empty());
  }
  CHECK(domain_problem("pypi..org") == "has an empty label");
  CHECK(domain_problem("pypi.org.") == "has an empty label");
  CHECK(domain_problem("localhost") == "needs at least two labels (\"example.com\")");
  CHECK(domain_problem("-a.org") == "has a label that starts or ends with '-'");
  CHECK(domain_problem("a_b.org") == "holds '_'; a name has letters, digits, '-' and '.'");
  CHECK(domain_problem(std::string(64, 'a') + ".org") == "has a label longer than 63 characters");
  std::string long_name;
  for (int i = 0; i < 51; ++i) long_name += "abcd.";  // 255 + "org"
  CHECK(domain_problem(long_name + "org") == "is longer than 253 characters");
  CHECK(domain_problem("10.1.2.3") == "is an address, not a name; write it as cidr");
  CHECK_FALSE(domain_problem("*").empty());
  CHECK_FALSE(domain_problem("a.*.org").empty());
  CHECK_FALSE(domain_problem("*.*.org").empty());
  CHECK(domain_problem("*.org") == "needs at least two labels (\"example.com\") after '*.'");
}

TEST_CASE(
    "an egress section becomes sorted rules with origins, and the network reaches the gateway") {
  TempDir dir;
  const auto policy = load_ok(dir.write("pypi.yaml", kPolicy), dir.path());
  CHECK(policy->network == "egress");
  const Egress& egress = policy->egress;
  REQUIRE(egress.enabled());
  REQUIRE(egress.allow.size() == 4);
  // Domains first, in order, then networks.
  CHECK(egress.allow[0].domain == "*.pythonhosted.org");
  CHECK(egress.allow[0].ports == std::vector<uint16_t>{80, 443});
  CHECK(egress.allow[0].origin == "policy \"pypi\" (egress.allow[2])");
  CHECK(egress.allow[1].domain == "api.internal.test");
  CHECK(egress.allow[1].headers == std::vector<InjectedHeader>{{"Authorization", "internal_api"}});
  CHECK(egress.allow[2].domain == "pypi.org");
  CHECK(egress.allow[2].reason == "pip installs packages");
  CHECK(egress.allow[2].origin == "policy \"pypi\" (egress.allow[0])");
  REQUIRE(egress.allow[3].cidr);
  CHECK(egress.allow[3].cidr->text() == "10.1.2.0/24");
  CHECK(egress.allow[3].domain.empty());
  CHECK(egress.max_connections == 16);
  CHECK(egress.max_bytes == sandbox::kGiB);
  // Sockets of every family: the network namespace, wired to the gateway, confines them.
  CHECK_FALSE(denies_inet_sockets(*policy));
}

TEST_CASE("the caps default to 64 connections and 256 MiB; no section means no network") {
  TempDir dir;
  const auto with = load_ok(
      dir.write("a.yaml", "egress: {allow: [{domain: pypi.org, ports: [443], reason: pip}]}\n"),
      dir.path());
  CHECK(with->egress.max_connections == 64);
  CHECK(with->egress.max_bytes == 256 * sandbox::kMiB);
  const auto without = load_ok(dir.write("b.yaml", "description: none\n"), dir.path());
  CHECK(without->network == "none");
  CHECK_FALSE(without->egress.enabled());
  CHECK(denies_inet_sockets(*without));
}

TEST_CASE("the nearest layer with egress or network decides both") {
  TempDir dir;
  dir.write("base.yaml",
            "egress:\n  allow:\n    - {domain: pypi.org, ports: [443], reason: pip}\n"
            "    - {domain: github.com, ports: [443], reason: git}\n  max_connections: 8\n");
  SECTION("a child without either inherits the parent's egress") {
    const auto child = load_ok(dir.write("child.yaml", "extends: base\n"), dir.path());
    CHECK(child->network == "egress");
    CHECK(child->egress.allow.size() == 2);
    CHECK(child->egress.max_connections == 8);
    CHECK(child->egress.allow[0].origin == "policy \"base\" (egress.allow[1])");
  }
  SECTION("a child's egress replaces the parent's list and caps entirely") {
    const auto child = load_ok(
        dir.write(
            "child.yaml",
            "extends: base\negress: {allow: [{domain: pypi.org, ports: [443], reason: x}]}\n"),
        dir.path());
    REQUIRE(child->egress.allow.size() == 1);
    CHECK(child->egress.allow[0].domain == "pypi.org");
    CHECK(child->egress.max_connections == 64);
    CHECK(child->egress.allow[0].origin == "policy \"child\" (egress.allow[0])");
  }
  SECTION("a nearer network: none turns egress off, and its socket rule is back") {
    const auto child =
        load_ok(dir.write("child.yaml", "extends: base\nnetwork: none\n"), dir.path());
    CHECK(child->network == "none");
    CHECK_FALSE(child->egress.enabled());
    CHECK(denies_inet_sockets(*child));
  }
  SECTION("a nearer network: loopback turns egress off too") {
    const auto child =
        load_ok(dir.write("child.yaml", "extends: base\nnetwork: loopback\n"), dir.path());
    CHECK(child->network == "loopback");
    CHECK_FALSE(child->egress.enabled());
  }
  SECTION("a nearer egress wins over a farther network: none") {
    dir.write("closed.yaml", "network: none\n");
    const auto child = load_ok(
        dir.write(
            "child.yaml",
            "extends: closed\negress: {allow: [{cidr: 10.0.0.0/8, ports: [80], reason: x}]}\n"),
        dir.path());
    CHECK(child->network == "egress");
    CHECK_FALSE(denies_inet_sockets(*child));
  }
}

TEST_CASE("a file that sets network: loopback beside an egress section contradicts itself") {
  TempDir dir;
  const LoadResult result =
      load_policy(dir.write("both.yaml",
                            "egress: {allow: [{domain: pypi.org, ports: [443], reason: pip}]}\n"
                            "network: loopback\n"),
                  {});
  CHECK_FALSE(result.ok());
  CHECK(testing::error_text(result) ==
        dir.path() +
            "/both.yaml:2:10: network: loopback contradicts the egress section at line 1; a "
            "policy with egress reaches the gateway, so leave network out\n");
}

TEST_CASE("the canonical text holds egress in a stable order; reasons and order do not count") {
  TempDir dir;
  const auto base = load_ok(dir.write("base.yaml", kPolicy), dir.path());
  const std::string& text = base->canonical;
  CHECK(text.find("network \"egress\"\n"
                  "egress.allow domain \"*.pythonhosted.org\" ports 80,443\n"
                  "egress.allow domain \"api.internal.test\" ports 80\n"
                  "egress.header domain \"api.internal.test\" \"authorization\" secret "
                  "\"internal_api\"\n"
                  "egress.allow domain \"pypi.org\" ports 443\n"
                  "egress.allow cidr 10.1.2.0/24 ports 5432\n"
                  "egress.max_connections 16\n"
                  "egress.max_bytes 1073741824\n") != std::string::npos);
  CHECK(text.find("pip installs") == std::string::npos);

  auto hash_of = [&](const std::string& yaml) {
    return load_ok(dir.write("other.yaml", yaml), dir.path())->hash;
  };
  auto replaced = [](std::string text, const std::string& from, const std::string& to) {
    const size_t at = text.find(from);
    REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
  };
  const std::string policy = kPolicy;
  // The same meaning: other reasons, rules in another order, ports in another order.
  CHECK(hash_of(replaced(policy, "pip installs packages", "for pip")) == base->hash);
  CHECK(hash_of(replaced(policy, "[443, 80]", "[80, 443]")) == base->hash);
  CHECK(hash_of(replaced(policy, "Authorization:", "authorization:")) == base->hash);
  // Every change of meaning.
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"[5432]", "[5433]"},
           {"PyPI.org.", "pypi.io"},
           {"10.1.2.0/24", "10.1.0.0/16"},
           {"max_connections: 16", "max_connections: 17"},
           {"max_bytes: 1GiB", "max_bytes: 2GiB"},
           {"internal_api", "other_api"},
           {"Authorization:", "X-Token:"}}) {
    INFO(from << " -> " << to);
    CHECK(hash_of(replaced(policy, from, to)) != base->hash);
  }
}

TEST_CASE("a policy without egress keeps its canonical text free of egress lines") {
  TempDir dir;
  const auto policy = load_ok(dir.write("plain.yaml", "network: loopback\n"), dir.path());
  CHECK(policy->canonical.find("egress") == std::string::npos);
}

TEST_CASE("policy show prints each destination with its reason and headers by secret name") {
  TempDir dir;
  const std::string shown = render_effective(*load_ok(dir.write("pypi.yaml", kPolicy), dir.path()));
  CHECK(shown.find("network: egress\n"
                   "egress:\n"
                   "  allow:\n"
                   "    - domain: \"*.pythonhosted.org\"  # policy \"pypi\" (egress.allow[2])\n"
                   "      ports: [80, 443]\n"
                   "      reason: \"pip downloads the files\"\n") != std::string::npos);
  CHECK(shown.find("        Authorization: {secret: internal_api}\n") != std::string::npos);
  CHECK(shown.find("    - cidr: 10.1.2.0/24  # policy \"pypi\" (egress.allow[1])\n") !=
        std::string::npos);
  CHECK(shown.find("  max_connections: 16\n  max_bytes: 1GiB\n") != std::string::npos);
}

TEST_CASE("a request narrows egress to the destinations it names, never beyond the policy") {
  TempDir dir;
  const auto policy = load_ok(dir.write("pypi.yaml", kPolicy), dir.path());
  SECTION("no narrowing leaves egress as it is") {
    Egress egress = policy->egress;
    CHECK_FALSE(narrow_egress(egress, std::nullopt, "pypi"));
    CHECK(egress == policy->egress);
  }
  SECTION("naming destinations keeps exactly those rules, caps unchanged") {
    Egress egress = policy->egress;
    CHECK_FALSE(
        narrow_egress(egress, std::vector<std::string>{"PyPI.org.", "10.1.2.0/24"}, "pypi"));
    REQUIRE(egress.allow.size() == 2);
    CHECK(egress.allow[0].domain == "pypi.org");
    CHECK(egress.allow[1].cidr->text() == "10.1.2.0/24");
    CHECK(egress.max_connections == 16);
  }
  SECTION("a wildcard is named as written, not by a name it matches") {
    Egress egress = policy->egress;
    CHECK_FALSE(narrow_egress(egress, std::vector<std::string>{"*.pythonhosted.org"}, "pypi"));
    CHECK(egress.allow.size() == 1);
    Egress other = policy->egress;
    CHECK(narrow_egress(other, std::vector<std::string>{"files.pythonhosted.org"}, "pypi") ==
          "'files.pythonhosted.org' is not in policy \"pypi\"'s egress list; a request may only "
          "narrow it");
  }
  SECTION("a destination the policy does not allow is an error, and nothing changes") {
    Egress egress = policy->egress;
    CHECK(narrow_egress(egress, std::vector<std::string>{"pypi.org", "evil.test"}, "pypi") ==
          "'evil.test' is not in policy \"pypi\"'s egress list; a request may only narrow it");
    CHECK(egress == policy->egress);
    CHECK(narrow_egress(egress, std::vector<std::string>{"10.1.0.0/16"}, "pypi").has_value());
  }
  SECTION("an empty list turns egress off") {
    Egress egress = policy->egress;
    CHECK_FALSE(narrow_egress(egress, std::vector<std::string>{}, "pypi"));
    CHECK_FALSE(egress.enabled());
  }
}

TEST_CASE("the example egress policy loads on top of the shipped python policy") {
  const LoadResult result = load_policy(AIRLOCK_SOURCE_DIR "/examples/policies/pip-egress.yaml",
                                        {testing::shipped_dir()});
  INFO(testing::error_text(result));
  REQUIRE(result.ok());
  CHECK(result.policy->network == "egress");
  CHECK(result.policy->extends_chain ==
        std::vector<std::string>{"pip-egress", "python", "default"});
  for (const auto& rule : result.policy->egress.allow) CHECK_FALSE(rule.reason.empty());
}

}  // namespace airlock::policies

namespace airlock::policies {

TEST_CASE("an IPv6 network may be allowed, named and narrowed like an IPv4 one") {
  testing::TempDir dir;
  const auto policy = testing::load_ok(
      dir.write("v6.yaml", "egress:\n  allow:\n"
                           "    - {cidr: \"2001:DB8::/32\", ports: [443], reason: the v6 mirror}\n"
                           "    - {cidr: \"fd00::5\", ports: [80], reason: a unique-local host}\n"),
      dir.path());
  REQUIRE(policy->egress.allow.size() == 2);
  CHECK(policy->egress.allow[0].cidr->text() == "2001:db8::/32");
  CHECK(policy->egress.allow[1].cidr->text() == "fd00::5");
  Egress egress = policy->egress;
  CHECK_FALSE(narrow_egress(egress, std::vector<std::string>{"fd00::5"}, "v6"));
  CHECK(egress.allow.size() == 1);
}

}  // namespace airlock::policies
