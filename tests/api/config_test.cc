#include "api/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <future>

#include "../policies/test_support.h"
#include "sandbox/unique_fd.h"

using namespace airlock::api;
using namespace std::chrono_literals;
using airlock::policies::testing::TempDir;

TEST_CASE("an empty config gives every default") {
  auto result = parse_config("", "empty.yaml");
  REQUIRE(result.config);
  const ServeConfig& config = *result.config;
  CHECK(config.listen_address == "127.0.0.1");
  CHECK(config.listen_port == 8080);
  CHECK(config.api_keys.empty());
  CHECK(config.max_queued == kDefaultMaxQueued);
  CHECK(config.effective_max_concurrent() >= 1);
  CHECK(config.default_policy == "default");
}

TEST_CASE("every setting is read with its unit") {
  auto result = parse_config(R"(
listen: "[::1]:0"
api_keys:
  - name: agent
    sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b
    policies: [default, strict]
max_concurrent: 3
max_queued: 5
max_body_size: 64KiB
header_timeout: 2s
idle_timeout: 500ms
heartbeat_interval: 1s
shutdown_grace: 3s
retry_after: 2s
recent_results: 10
max_file_size: 2MiB
default_policy: strict
policy_dirs: [/etc/airlock/policies]
runtimes_file: /etc/airlock/runtimes.yaml
drivers_dir: /usr/lib/airlock/drivers
fork_library: /usr/lib/airlock/libairlock_fork.so
audit_log: /var/log/airlock/audit.log
state_dir: /tmp/airlock
)",
                             "full.yaml");
  INFO(result.error);
  REQUIRE(result.config);
  const ServeConfig& config = *result.config;
  CHECK(config.listen_address == "::1");
  CHECK(config.listen_port == 0);
  REQUIRE(config.api_keys.size() == 1);
  CHECK(config.api_keys[0].name == "agent");
  CHECK(config.api_keys[0].policies == std::vector<std::string>{"default", "strict"});
  CHECK(config.effective_max_concurrent() == 3);
  CHECK(config.max_queued == 5);
  CHECK(config.max_body_bytes == 64 * 1024);
  CHECK(config.header_timeout == 2s);
  CHECK(config.idle_timeout == 500ms);
  CHECK(config.heartbeat_interval == 1s);
  CHECK(config.shutdown_grace == 3s);
  CHECK(config.retry_after == 2s);
  CHECK(config.recent_results == 10);
  CHECK(config.max_file_bytes == 2 * 1024 * 1024);
  CHECK(config.default_policy == "strict");
  CHECK(config.policy_dirs == std::vector<std::string>{"/etc/airlock/policies"});
  CHECK(config.runtimes_file == "/etc/airlock/runtimes.yaml");
  CHECK(config.drivers_dir == "/usr/lib/airlock/drivers");
  CHECK(config.fork_library == "/usr/lib/airlock/libairlock_fork.so");
  CHECK(config.audit_log == "/var/log/airlock/audit.log");
}

TEST_CASE("an unknown setting is an error that points at it") {
  auto result = parse_config("max_concurrent: 2\nmax_concurent: 3\n", "typo.yaml");
  CHECK_FALSE(result.config);
  CHECK(result.error.starts_with("typo.yaml:2:1: unknown setting \"max_concurent\""));
}

TEST_CASE("a misspelled setting or field suggests the one meant") {
  CHECK(parse_config("max_concurent: 3\n", "t.yaml").error ==
        "t.yaml:1:1: unknown setting \"max_concurent\" — did you mean 'max_concurrent'?");
  CHECK(parse_config("audit_logs: off\n", "t.yaml").error ==
        "t.yaml:1:1: unknown setting \"audit_logs\" — did you mean 'audit_log'?");
  CHECK(parse_config("warm_pool:\n  - {runtime: python, policy: default, sise: 2}\n", "t.yaml")
            .error == "t.yaml:2:40: warm_pool: unknown field \"sise\" — did you mean 'size'?");
  CHECK(parse_config("api_keys:\n  - {nmae: a}\n", "t.yaml").error ==
        "t.yaml:2:6: api_keys: unknown field \"nmae\" — did you mean 'name'?");
  // Nothing near: the whole list, so the reader sees what there is.
  const std::string far = parse_config("zzzzzzzz: 1\n", "t.yaml").error;
  CHECK(far.starts_with("t.yaml:1:1: unknown setting \"zzzzzzzz\" (expected listen, api_keys,"));
}

TEST_CASE("the audit log: under state_dir by default, an absolute path, or off") {
  CHECK(parse_config("", "c.yaml").config->effective_audit_log() == "/run/airlock/audit.jsonl");
  CHECK(parse_config("state_dir: /srv/state/\n", "c.yaml").config->effective_audit_log() ==
        "/srv/state/audit.jsonl");
  CHECK(parse_config("audit_log: /var/log/a.jsonl\n", "c.yaml").config->effective_audit_log() ==
        "/var/log/a.jsonl");
  CHECK(parse_config("audit_log: off\n", "c.yaml").config->effective_audit_log().empty());
  auto sized = parse_config("audit_log_max_size: 1MiB\naudit_log_keep: 0\n", "c.yaml");
  REQUIRE(sized.config);
  CHECK(sized.config->audit_log_max_bytes == 1024 * 1024);
  CHECK(sized.config->audit_log_keep == 0);
  CHECK(parse_config("audit_log: logs/audit.jsonl\n", "c.yaml").error ==
        "c.yaml:1:12: audit_log: expected an absolute path or off, got \"logs/audit.jsonl\"");
  CHECK(parse_config("audit_log_max_size: 1KiB\n", "c.yaml").error ==
        "c.yaml:1:21: audit_log_max_size: at least 64KiB");
  CHECK(parse_config("state_dir: run/airlock\n", "c.yaml").error ==
        "c.yaml:1:12: state_dir: expected an absolute path, got \"run/airlock\"");
}

TEST_CASE("a number without its unit is rejected") {
  auto result = parse_config("idle_timeout: 30\n", "c.yaml");
  CHECK_FALSE(result.config);
  CHECK(result.error.starts_with("c.yaml:1:15: idle_timeout: "));
}

TEST_CASE("a memory budget too small to read one body of the largest size is refused") {
  auto result = parse_config("memory_budget: 16MiB\nmax_body_size: 16MiB\n", "c.yaml");
  CHECK_FALSE(result.config);
  CHECK(result.error ==
        "c.yaml:1:1: memory_budget: 16 MiB must be at least twice max_body_size "
        "(16 MiB): half of it holds bodies being read");
  CHECK(parse_config("memory_budget: 32MiB\nmax_body_size: 16MiB\n", "c.yaml").config);
}

TEST_CASE("an API key must be a sha256 digest, not the key itself") {
  auto result = parse_config(
      "api_keys:\n  - name: a\n    sha256: my-secret-key\n    policies: ['*']\n", "k.yaml");
  CHECK_FALSE(result.config);
  CHECK(result.error.find("64 lowercase hex digits") != std::string::npos);
}

TEST_CASE("an API key without policies is rejected") {
  auto result = parse_config(
      "api_keys:\n  - sha256: 2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b\n",
      "k.yaml");
  CHECK_FALSE(result.config);
  CHECK(result.error.find("policies is required") != std::string::npos);
}

TEST_CASE("malformed YAML is reported with its position") {
  auto result = parse_config("listen: [unclosed\n", "bad.yaml");
  CHECK_FALSE(result.config);
  CHECK(result.error.starts_with("bad.yaml:"));
}

TEST_CASE("listen addresses are host:port") {
  CHECK(split_host_port("127.0.0.1:8080") ==
        std::make_pair(std::string("127.0.0.1"), uint16_t{8080}));
  CHECK(split_host_port("[::1]:0") == std::make_pair(std::string("::1"), uint16_t{0}));
  CHECK_FALSE(split_host_port("127.0.0.1"));
  CHECK_FALSE(split_host_port("::1:80"));
  CHECK_FALSE(split_host_port("host:65536"));
  CHECK_FALSE(split_host_port("host:"));
}

TEST_CASE("warm pool entries: runtime, policy, size and an optional refill") {
  auto result = parse_config(R"(
warm_pool:
  - {runtime: python, policy: default, size: 4}
  - {runtime: node, policy: strict, size: 2, refill: fresh}
)",
                             "warm.yaml");
  INFO(result.error);
  REQUIRE(result.config);
  const auto& pool = result.config->warm_pool;
  REQUIRE(pool.size() == 2);
  CHECK(pool[0].runtime == "python");
  CHECK(pool[0].size == 4);
  CHECK_FALSE(pool[0].refill.has_value());  // the runtime's default: fork for python
  CHECK(pool[1].policy == "strict");
  CHECK(pool[1].refill == airlock::runner::WarmPoolEntry::Refill::fresh);

  auto bad = parse_config("warm_pool:\n  - {runtime: node, policy: default, size: 1, refill: forked}\n",
                          "bad.yaml");
  REQUIRE_FALSE(bad.config);
  CHECK_THAT(bad.error, Catch::StartsWith("bad.yaml:2:"));
  CHECK_THAT(bad.error, Catch::Contains("expected fork or fresh, got \"forked\""));
}

TEST_CASE("without a warm_pool setting the service keeps a small python pool, [] none") {
  auto none = parse_config("listen: 127.0.0.1:0\n", "none.yaml");
  REQUIRE(none.config);
  REQUIRE(none.config->warm_pool.size() == 1);
  CHECK(none.config->warm_pool[0].runtime == "python");
  CHECK(none.config->warm_pool[0].policy.empty());  // the service's default_policy
  CHECK(none.config->warm_pool[0].size == airlock::api::kDefaultWarmPythonSandboxes);
  CHECK(none.config->warm_pool_is_default);
  CHECK(airlock::api::ServeConfig{}.warm_pool.size() == 1);  // no config file at all

  auto off = parse_config("warm_pool: []\n", "off.yaml");
  REQUIRE(off.config);
  CHECK(off.config->warm_pool.empty());
  CHECK_FALSE(off.config->warm_pool_is_default);

  auto own =
      parse_config("warm_pool:\n  - {runtime: node, policy: default, size: 1}\n", "own.yaml");
  REQUIRE(own.config);
  REQUIRE(own.config->warm_pool.size() == 1);  // replaces the default, not added to it
  CHECK(own.config->warm_pool[0].runtime == "node");
}

TEST_CASE("the example warm-pool config loads") {
  auto result = load_config_file(AIRLOCK_SOURCE_DIR "/examples/warm_pool.yaml");
  INFO(result.error);
  REQUIRE(result.config);
  REQUIRE(result.config->warm_pool.size() == 2);
  CHECK(result.config->warm_pool[1].runtime == "node");
}

TEST_CASE("two keys with one name, or an empty name, are refused: ownership goes by name") {
  const std::string digest_a = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
  const std::string digest_b = "62af8704764faf8ea82fc61ce9c4c3908b6cb97d463a634e9e587d7c885db0ef";
  auto same_name = parse_config("api_keys:\n  - {name: agent, sha256: " + digest_a +
                                    ", policies: ['*']}\n  - {name: agent, sha256: " + digest_b +
                                    ", policies: [default]}\n",
                                "keys.yaml");
  REQUIRE_FALSE(same_name.config);
  CHECK(same_name.error.find("the name \"agent\" is given to two keys") != std::string::npos);
  CHECK(same_name.error.starts_with("keys.yaml:3:"));

  auto empty_name = parse_config(
      "api_keys:\n  - {name: '', sha256: " + digest_a + ", policies: ['*']}\n", "keys.yaml");
  REQUIRE_FALSE(empty_name.config);
  CHECK(empty_name.error.find("api_keys.name: must not be empty") != std::string::npos);

  auto same_key = parse_config("api_keys:\n  - {name: a, sha256: " + digest_a +
                                   ", policies: ['*']}\n  - {name: b, sha256: " + digest_a +
                                   ", policies: [default]}\n",
                               "keys.yaml");
  REQUIRE_FALSE(same_key.config);
  CHECK(same_key.error.find("have the same sha256") != std::string::npos);
}

TEST_CASE("allowed hosts default to the loopback names only when listening on loopback") {
  auto local = parse_config("listen: 127.0.0.1:8080\n", "c.yaml");
  REQUIRE(local.config);
  CHECK(local.config->effective_allowed_hosts() ==
        std::vector<std::string>{"localhost", "127.0.0.1", "[::1]"});
  auto wide = parse_config("listen: 0.0.0.0:8080\nallowed_origins: [https://console.example]\n",
                           "c.yaml");
  REQUIRE(wide.config);
  CHECK(wide.config->effective_allowed_hosts() == std::vector<std::string>{"*"});
  auto bad = parse_config("allowed_origins: [console.example]\n", "c.yaml");
  REQUIRE_FALSE(bad.config);
  CHECK(bad.error.find("is not an origin") != std::string::npos);
}

TEST_CASE("trusted proxies are addresses or networks, each checked") {
  auto result = parse_config("trusted_proxies: [10.0.0.7, 10.0.0.0/8, \"fd00::/8\"]\n", "c.yaml");
  REQUIRE(result.config);
  REQUIRE(result.config->trusted_proxies.size() == 3);
  CHECK(result.config->trusted_proxies[1].text() == "10.0.0.0/8");
  CHECK(parse_config("", "c.yaml").config->trusted_proxies.empty());
  for (const char* bad : {"trusted_proxies: [10.0.0.1/8]\n", "trusted_proxies: [balancer]\n",
                          "trusted_proxies: 10.0.0.7\n"}) {
    INFO(bad);
    auto refused = parse_config(bad, "c.yaml");
    CHECK_FALSE(refused.config);
    CHECK(refused.error.find("trusted_proxies") != std::string::npos);
  }
}

TEST_CASE("a session's CPU over its whole life has a setting of its own") {
  auto result = parse_config("session_cpu_time: 2m\n", "c.yaml");
  REQUIRE(result.config);
  CHECK(result.config->session_cpu_time == std::chrono::minutes(2));
  CHECK(parse_config("", "c.yaml").config->session_cpu_time == kDefaultSessionCpuTime);
}

TEST_CASE("a replica's name goes into the ids it makes, and must be one a balancer can route") {
  CHECK(parse_config("", "c.yaml").config->replica.empty());
  CHECK(parse_config("replica: airlock-0\n", "c.yaml").config->replica == "airlock-0");
  CHECK(parse_config("replica: R_1\n", "c.yaml").error ==
        "c.yaml:1:10: replica: \"R_1\" is not a replica name; expected 1 to 32 of a-z, 0-9 and "
        "'-', not starting with '-' (e.g. r1 or airlock-0)");
}

namespace {

// Reads a config whose egress secret "token" is the file at `path`, on a thread of its own.
// Should the read block on a FIFO there (code that opens or reads it without O_NONBLOCK), a
// writer comes along after a few seconds, so the test fails instead of hanging.
ConfigResult load_secret_file(const std::string& path) {
  const std::string yaml = "egress:\n  secrets:\n    token: {file: \"" + path + "\"}\n";
  auto load = std::async(std::launch::async, [yaml] { return parse_config(yaml, "c.yaml"); });
  if (load.wait_for(5s) == std::future_status::timeout) {
    FAIL_CHECK("reading the secret file \"" << path << "\" blocked");
    while (load.wait_for(100ms) == std::future_status::timeout) {
      if (auto writer = airlock::sandbox::open_fd(path, O_WRONLY | O_NONBLOCK)) {
        (void)::write(writer->get(), "x", 1);
      }
    }
  }
  return load.get();
}

}  // namespace

TEST_CASE("a config's egress secret file is read, a symlink to it too, less its final newline") {
  TempDir dir;
  const std::string file = dir.write("token", "Bearer abc\n");
  // Kubernetes mounts a Secret's keys as symlinks into a ..data directory: they are followed.
  std::filesystem::create_symlink(file, dir.path() + "/link");
  for (const std::string& path : {file, dir.path() + "/link"}) {
    const ConfigResult result = load_secret_file(path);
    INFO(path << ": " << result.error);
    REQUIRE(result.config);
    CHECK(result.config->egress.secrets.at("token") == "Bearer abc");
  }
  // 8 KiB is the limit of the file, its newline included.
  CHECK(load_secret_file(dir.write("full", std::string(8192, 'a'))).config);
}

TEST_CASE("a FIFO or a directory as a config's egress secret file is refused at once, unread") {
  TempDir dir;
  const std::string fifo = dir.path() + "/fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::filesystem::create_symlink(fifo, dir.path() + "/link");
  for (const std::string& path : {fifo, dir.path() + "/link", dir.path()}) {
    const ConfigResult result = load_secret_file(path);
    CHECK_FALSE(result.config);
    CHECK(result.error == "c.yaml:3:12: egress.secrets.token: \"" + path + "\" is " +
                              (path == dir.path() ? "a directory" : "a FIFO") +
                              ", not a regular file");
  }
}

TEST_CASE("a config's egress secret file over 8 KiB is refused, naming it") {
  TempDir dir;
  const std::string path = dir.write("token", std::string(8192, 'a') + "\n");
  const ConfigResult result = load_secret_file(path);
  CHECK_FALSE(result.config);
  CHECK(result.error == "c.yaml:3:12: egress.secrets.token: \"" + path + "\" is larger than 8 KiB");
}

TEST_CASE("an empty or missing egress secret file in a config is refused, naming it") {
  TempDir dir;
  for (const std::string& path : {dir.write("empty", ""), dir.write("newline", "\n")}) {
    const ConfigResult result = load_secret_file(path);
    CHECK_FALSE(result.config);
    CHECK(result.error == "c.yaml:3:12: egress.secrets.token: \"" + path + "\" is empty");
  }
  const std::string missing = dir.path() + "/missing";
  const ConfigResult result = load_secret_file(missing);
  CHECK_FALSE(result.config);
  CHECK(result.error == "c.yaml:3:12: egress.secrets.token: open(\"" + missing +
                            "\"): ENOENT (No such file or directory)");
}

TEST_CASE("a config's egress hosts must pin addresses, each name once") {
  const auto hosts = [](const std::string& entries) {
    return parse_config("egress:\n  hosts:\n" + entries, "c.yaml");
  };
  const ConfigResult good = hosts("    a.test: 127.0.0.5\n    b.test: \"127.0.0.6:8080\"\n"
                                  "    c.test: \"[::1]:8443\"\n    d.test: \"::1\"\n");
  REQUIRE(good.config);
  CHECK(good.config->egress.hosts.size() == 4);
  for (const std::string bad : {"a.example.com", "127.0.0.5:", "127.0.0.5:70000", "[::1",
                                 "1.2.3.4:80:90", "[::1]x", "0.0.0.0", "[::]:80"}) {
    INFO(bad);
    CHECK(hosts("    a.test: \"" + bad + "\"\n").error ==
          "c.yaml:3:13: egress.hosts.a.test: '" + bad +
              "' is not an address: expected an IPv4 or IPv6 address, optionally with :port "
              "([v6]:port)");
  }
  CHECK(hosts("    a.test: 127.0.0.5\n    A.test: 127.0.0.6\n").error ==
        "c.yaml:4:5: egress.hosts: 'a.test' is given twice");
  CHECK(hosts("    \"*.a.test\": 127.0.0.5\n").error ==
        "c.yaml:3:5: egress.hosts: '*.a.test': a pin names one host, not a wildcard");
}

TEST_CASE("a config's egress secret is named once") {
  CHECK(parse_config("egress:\n  secrets:\n    t: {env: HOME}\n    t: {env: PATH}\n", "c.yaml")
            .error == "c.yaml:4:5: egress.secrets: 't' is given twice (first at line 3)");
}

TEST_CASE("a key given twice is refused at every level of the config, not last-wins") {
  CHECK(parse_config("max_queued: 1\nmax_queued: 2\n", "c.yaml").error ==
        "c.yaml:2:1: max_queued: given twice (first at line 1)");
  CHECK(parse_config("e2b:\n  max_workspaces: 1\n  max_workspaces: 500\n", "c.yaml").error ==
        "c.yaml:3:3: e2b: 'max_workspaces' is given twice (first at line 2)");
  const std::string key(64, 'a');
  CHECK(parse_config("api_keys:\n  - name: k\n    sha256: " + key + "\n    policies: [default]\n" +
                         "    policies: [admin]\n",
                     "c.yaml")
            .error == "c.yaml:5:5: api_keys: 'policies' is given twice (first at line 4)");
}

TEST_CASE("a config that aliases itself into a cycle is refused, not followed") {
  const ConfigResult result = parse_config("e2b: &a {x: *a}\n", "c.yaml");
  CHECK_FALSE(result.config);
  CHECK(result.error.find("nests deeper than 32 levels") != std::string::npos);
}

TEST_CASE("a config that is not a regular file is refused unread") {
  char pattern[] = "/tmp/airlock-config-XXXXXX";
  REQUIRE(::mkdtemp(pattern) != nullptr);
  const std::string dir = pattern;
  CHECK(load_config_file(dir).error ==
        dir + ": cannot read the config: \"" + dir + "\" is a directory, not a regular file");
  const std::string fifo = dir + "/c.yaml";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);  // no writer: a plain open would wait for ever
  CHECK(load_config_file(fifo).error ==
        fifo + ": cannot read the config: \"" + fifo + "\" is a FIFO, not a regular file");
  CHECK(load_config_file("/dev/zero").error ==
        "/dev/zero: cannot read the config: \"/dev/zero\" is a device, not a regular file");
  ::unlink(fifo.c_str());
  ::rmdir(dir.c_str());
}
