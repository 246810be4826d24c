// `policy diff` wording: what a change loosens, tightens or merely changes.
#include "policies/diff.h"

#include <catch2/catch.hpp>

#include "policies/loader.h"
#include "test_support.h"

namespace airlock::policies {
namespace {

using testing::TempDir;

std::vector<std::string> diff_text(const std::string& before, const std::string& after) {
  TempDir dir;
  const LoadResult a = load_policy(dir.write("a.yaml", before), {});
  const LoadResult b = load_policy(dir.write("b.yaml", after), {});
  INFO(testing::error_text(a) << testing::error_text(b));
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  std::vector<std::string> lines;
  for (const auto& change : diff_policies(*a.policy, *b.policy)) lines.push_back(change.text());
  return lines;
}

using Lines = std::vector<std::string>;

}  // namespace

TEST_CASE("raising a limit loosens, lowering it tightens") {
  CHECK(diff_text("limits: {memory: 256MiB, wall_time: 10s}\n",
                  "limits: {memory: 1GiB, wall_time: 5s}\n") ==
        Lines{"wall time limit lowered from 10 s to 5 s (tightens)",
              "memory limit raised from 256 MiB to 1 GiB (loosens)"});
}

TEST_CASE("output overflow, runtimes and network changes are named") {
  CHECK(diff_text("runtimes: [python]\n",
                  "runtimes: [node]\nnetwork: loopback\nlimits: {output_overflow: kill}\n") ==
        Lines{"output overflow now kills the run (was truncate) (tightens)",
              "runtime 'node' added (loosens)", "runtime 'python' removed (tightens)",
              "network changed from none to loopback (loosens)"});
}

TEST_CASE("filesystem changes say which path and how") {
  CHECK(diff_text("filesystem: {binds: [/usr, /etc/ssl], tmpfs: {/cache: 1MiB}}\n",
                  "filesystem: {binds: [{path: /usr, writable: true}, /opt], "
                  "tmpfs: {/cache: 2MiB}}\n") ==
        Lines{"bind /opt added, read-only (loosens)", "bind /usr now writable (loosens)",
              "bind /etc/ssl removed (tightens)",
              "tmpfs /cache size raised from 1 MiB to 2 MiB (loosens)"});
}

TEST_CASE("syscall changes compare what each syscall ends up with") {
  CHECK(diff_text("syscalls: {deny: [chmod, chown]}\n",
                  "syscalls: {deny: [{syscall: chmod, action: kill}], log: [mkdir]}\n") ==
        Lines{"syscall chmod now kill (was errno(EPERM)) (tightens)",
              "syscall chown now allow by the default action (was errno(EPERM)) (loosens)",
              "syscall mkdir now log (was allow) (tightens)"});
}

TEST_CASE("changing the default action and lifting the floor are flagged") {
  CHECK(diff_text("syscalls: {default_action: kill, allow: [read]}\n",
                  "syscalls: {default_action: allow}\n"
                  "unsafe: [{syscall: ptrace, justification: gdb lab}]\n") ==
        Lines{"default syscall action changed from kill to allow (loosens)",
              "mandatory floor lifted for ptrace (unsafe: gdb lab); ptrace now allow (loosens)"});
}

TEST_CASE("environment changes are reported as changes") {
  CHECK(diff_text("environment: {A: x, B: y}\n", "environment: {A: z, C: w}\n") ==
        Lines{"environment variable A changed from \"x\" to \"z\" (changes)",
              "environment variable C added: \"w\" (changes)",
              "environment variable B removed (changes)"});
}

TEST_CASE("turning egress on loosens the network and adds each destination") {
  CHECK(diff_text("network: none\n",
                  "egress: {allow: [{domain: pypi.org, ports: [443], reason: pip}]}\n") ==
        Lines{"network changed from none to egress (loosens)",
              "egress to pypi.org port 443 added: pip (loosens)"});
  CHECK(diff_text("egress: {allow: [{domain: pypi.org, ports: [443], reason: pip}]}\n",
                  "network: loopback\n") ==
        Lines{"network changed from egress to loopback (tightens)",
              "egress to pypi.org removed (tightens)"});
}

TEST_CASE("egress widening loosens and narrowing tightens, per destination, port and cap") {
  const std::string before =
      "egress:\n  allow:\n"
      "    - {domain: pypi.org, ports: [443, 80], reason: pip}\n"
      "    - {cidr: 10.1.2.0/24, ports: [5432], reason: db}\n"
      "    - {domain: api.test, ports: [80], reason: api,\n"
      "       headers: {Authorization: {secret: a}, X-Old: {secret: o}}}\n"
      "  max_connections: 64\n  max_bytes: 256MiB\n";
  const std::string after =
      "egress:\n  allow:\n"
      "    - {domain: pypi.org, ports: [443, 8443], reason: pip}\n"
      "    - {domain: \"*.pythonhosted.org\", ports: [443], reason: files}\n"
      "    - {domain: api.test, ports: [80], reason: api,\n"
      "       headers: {authorization: {secret: b}, X-New: {secret: n}}}\n"
      "  max_connections: 128\n  max_bytes: 128MiB\n";
  CHECK(diff_text(before, after) ==
        Lines{"egress to *.pythonhosted.org port 443 added: files (loosens)",
              "egress to api.test: header authorization now from secret b (was a) (changes)",
              "egress to api.test: header X-New added from secret n (loosens)",
              "egress to api.test: header X-Old removed (tightens)",
              "egress to pypi.org: port 8443 added (loosens)",
              "egress to pypi.org: port 80 removed (tightens)",
              "egress to 10.1.2.0/24 removed (tightens)",
              "egress connection cap raised from 64 to 128 (loosens)",
              "egress byte cap lowered from 256 MiB to 128 MiB (tightens)"});
}

TEST_CASE("an egress reason or rule order is no difference in effect") {
  CHECK(diff_text("egress: {allow: [{domain: a.test, ports: [1], reason: x}, "
                  "{domain: b.test, ports: [2], reason: y}]}\n",
                  "egress: {allow: [{domain: b.test, ports: [2], reason: other}, "
                  "{domain: a.test, ports: [1], reason: words}]}\n")
            .empty());
}

TEST_CASE("two policies with the same meaning have no differences") {
  CHECK(diff_text("limits: {memory: 1GiB}\n# comment\n", "limits:\n  memory: 1024MiB\n").empty());
}

TEST_CASE("conditional syscall rules that let more through loosen") {
  CHECK(diff_text("network: loopback\nsyscalls:\n  default_action: kill\n"
                  "  allow: [read, {syscall: socket, family: [AF_UNIX]}]\n",
                  "network: loopback\nsyscalls:\n  default_action: kill\n"
                  "  allow: [read, {syscall: socket, family: [AF_UNIX, AF_INET]}]\n") ==
        Lines{"rules for syscall socket changed from [socket arg0 == 1 -> allow] to "
              "[socket arg0 == 1 -> allow; socket arg0 == 2 -> allow] (loosens)"});
  CHECK(diff_text("network: loopback\nsyscalls:\n  deny: [{syscall: socket, family: [AF_INET]}]\n",
                  "network: loopback\nsyscalls:\n  deny: [{syscall: socket, family: [AF_INET6]}]\n")
            .front()
            .ends_with("(loosens)"));
}

TEST_CASE("deny_action changing the socket rule of network: none is a change, and loosens") {
  CHECK(diff_text("syscalls: {deny_action: kill}\n", "syscalls: {deny_action: errno(EPERM)}\n") ==
        Lines{"rules for syscall socket changed from [socket arg0 != 1 -> kill] to "
              "[socket arg0 != 1 -> errno(EPERM)] (loosens)"});
}

TEST_CASE("a bind that shows another host path loosens") {
  CHECK(diff_text("filesystem: {binds: [{path: /data, host: /srv/empty}]}\n",
                  "filesystem: {binds: [{path: /data, host: /home}]}\n") ==
        Lines{"bind /data now shows host /home (was /srv/empty) (loosens)"});
}

TEST_CASE("canonical texts that differ are never called no difference") {
  TempDir dir;
  const LoadResult a = load_policy(dir.write("a.yaml", "limits: {memory: 1GiB}\n"), {});
  REQUIRE(a.ok());
  Policy b = *a.policy;
  b.canonical += "something new 1\n";  // a field the comparisons do not know yet
  Lines lines;
  for (const auto& change : diff_policies(*a.policy, b)) lines.push_back(change.text());
  CHECK(lines == Lines{"effective line added: something new 1; not classified, counted as "
                       "loosening (loosens)"});
}

}  // namespace airlock::policies
