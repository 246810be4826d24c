// `policy check`'s review notes: sensitive and writable binds warn, a required bind of a host
// path that does not exist fails.
#include "policies/review.h"

#include <catch2/catch.hpp>

#include <algorithm>

#include "policies/loader.h"
#include "test_support.h"

namespace airlock::policies {
namespace {

using Severity = ReviewNote::Severity;

std::vector<ReviewNote> review_text(const std::string& yaml,
                                    const std::vector<std::string>& missing = {}) {
  testing::TempDir dir;
  const LoadResult loaded = load_policy(dir.write("p.yaml", yaml), {});
  INFO(testing::error_text(loaded));
  REQUIRE(loaded.ok());
  return review_policy(*loaded.policy, [&](const std::string& path) {
    return std::find(missing.begin(), missing.end(), path) == missing.end();
  });
}

}  // namespace

TEST_CASE("ordinary read-only binds of paths that exist need no note") {
  CHECK(review_text("filesystem:\n  binds: [/usr, /etc/ssl, {path: /lib64, optional: true}]\n")
            .empty());
  const LoadResult shipped = load_policy("default", {testing::shipped_dir()});
  REQUIRE(shipped.ok());
  CHECK(review_policy(*shipped.policy, [](const std::string&) { return true; }).empty());
}

TEST_CASE("a bind that exposes a sensitive host file warns, naming the file") {
  const auto shadow = review_text("filesystem:\n  binds: [/etc/shadow]\n");
  REQUIRE(shadow.size() == 1);
  CHECK(shadow[0].severity == Severity::warning);
  CHECK(shadow[0].message == "bind /etc/shadow: exposes /etc/shadow (password hashes)");
  // A directory that holds one is as bad; so is a path below one, under another name inside.
  const auto etc = review_text("filesystem:\n  binds: [/etc]\n");
  REQUIRE(etc.size() == 1);
  CHECK(etc[0].message == "bind /etc: exposes /etc/shadow (password hashes)");
  const auto socket =
      review_text("filesystem:\n  binds: [{path: /srv/d.sock, host: /run/docker.sock}]\n");
  REQUIRE(socket.size() == 1);
  CHECK(socket[0].message ==
        "bind /srv/d.sock (host /run/docker.sock): exposes /run/docker.sock (the Docker daemon: "
        "root on the host)");
  CHECK(review_text("filesystem:\n  binds: [/etc/shadowed-not-really]\n").empty());
}

TEST_CASE("a writable bind of a host directory warns") {
  const auto notes = review_text("filesystem:\n  binds: [{path: /srv/data, writable: true}]\n");
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].severity == Severity::warning);
  CHECK(notes[0].message == "bind /srv/data: writable: programs in the sandbox can change and "
                            "create host files under /srv/data");
}

TEST_CASE("a required bind of a host path that does not exist is an error; an optional one is not") {
  const auto notes = review_text(
      "filesystem:\n  binds: [/opt/missing, {path: /opt/also-missing, optional: true}]\n",
      {"/opt/missing", "/opt/also-missing"});
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].severity == Severity::error);
  CHECK(notes[0].message.starts_with("bind /opt/missing: the host path does not exist here"));
}

TEST_CASE("binds of container runtimes, the system bus and airlock's own state warn") {
  for (const char* path : {"/var/run/containerd", "/run/dbus", "/run/airlock", "/var/lib/airlock",
                           "/run/systemd/private"}) {
    INFO(path);
    const auto notes = review_text("filesystem:\n  binds: [" + std::string(path) + "]\n");
    REQUIRE(notes.size() == 1);
    CHECK(notes[0].message.find(": exposes ") != std::string::npos);
  }
}

TEST_CASE("egress rules that reach the host's own neighbours warn; the internet does not") {
  auto egress = [](const std::string& cidr) {
    return review_text("egress:\n  allow:\n    - cidr: " + cidr +
                       "\n      ports: [80]\n      reason: test\n");
  };
  const auto metadata = egress("169.254.169.254/32");
  REQUIRE(metadata.size() == 1);
  CHECK(metadata[0].severity == Severity::warning);
  CHECK(metadata[0].message ==
        "egress 169.254.169.254: reaches 169.254.169.254/32 (cloud "
        "instance metadata: the host's cloud credentials)");
  const auto link = egress("169.254.0.0/16");
  REQUIRE(link.size() == 1);
  CHECK(link[0].message.find("cloud instance metadata") != std::string::npos);
  REQUIRE(egress("127.0.0.1/32").size() == 1);
  CHECK(egress("127.0.0.1/32")[0].message.find("airlock's API") != std::string::npos);
  REQUIRE(egress("10.1.2.0/24").size() == 1);
  REQUIRE(egress("fd00:ec2::254/128").size() == 1);
  // The gateway never lets these reach a special range: the review says nothing of them.
  CHECK(egress("0.0.0.0/0").empty());
  CHECK(egress("8.8.8.0/24").empty());
  CHECK(egress("2000::/3").empty());
}

}  // namespace airlock::policies
