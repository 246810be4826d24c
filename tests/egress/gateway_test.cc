// The gateway serving a "sandbox side" made by the test: DNS, the checks on each connection, the
// injected secrets, the limits, finish(), and that one hostile sandbox does not slow another.
#include <arpa/inet.h>
#include <sys/socket.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <random>

#include "runner/egress/dns.h"
#include "runner/egress/tls.h"
#include "tests/egress/test_support.h"

namespace airlock::egress::testing {
namespace {

constexpr const char* kSecret = "s3cret-value-never-shown";

policies::Egress api_egress() {
  policies::Egress egress;
  egress.allow.push_back(
      {"api.test", std::nullopt, {80, 443}, "the API", {{"Authorization", "api_token"}}});
  egress.allow.push_back({"tls.test", std::nullopt, {443}, "a TLS service"});
  egress.allow.push_back({"plain.test", std::nullopt, {80}, "a plain service"});
  egress.allow.push_back({"nosecret.test",
                          std::nullopt,
                          {80},
                          "a rule whose secret is missing",
                          {{"X-Key", "missing_secret"}}});
  egress.allow.push_back({"localhost", std::nullopt, {80}, "a name that resolves to loopback"});
  return egress;
}

// A gateway, one sandbox side and its attachment, with the refusals it reported.
struct Rig {
  Rig(policies::Egress egress, GatewayConfig config, std::vector<uint16_t> ports = {80, 443}) {
    if (!net.error().empty()) FAIL("sandbox side: " << net.error());
    gateway = Gateway::start(std::move(config));
    attach(*gateway, egress, ports);
  }
  // Another sandbox on first's gateway (first must outlive it).
  Rig(policies::Egress egress, Rig& first, std::vector<uint16_t> ports = {80, 443}) {
    if (!net.error().empty()) FAIL("sandbox side: " << net.error());
    attach(*first.gateway, egress, ports);
  }
  void attach(Gateway& on, const policies::Egress& egress, const std::vector<uint16_t>& ports) {
    auto attached = on.attach(egress, net.make_sockets(ports), [this](const Blocked& b) {
      std::lock_guard lock(mutex);
      seen.push_back(b);
    });
    if (!attached) FAIL(attached.error().message());
    attachment = std::move(attached.value());
  }
  // Resolves name through the gateway's DNS, as the sandbox's libc would.
  std::string resolve(const std::string& name) {
    std::vector<uint8_t> answer;
    net.run([&] { answer = ask_dns(make_dns_query(1, name, kTypeA)); });
    if (answer.size() < 16 || (answer[3] & 0x0f) != 0 || answer[7] != 1) return "";
    const size_t n = answer.size();
    return std::to_string(answer[n - 4]) + "." + std::to_string(answer[n - 3]) + "." +
           std::to_string(answer[n - 2]) + "." + std::to_string(answer[n - 1]);
  }
  std::string exchange(const std::string& address, uint16_t port, const std::string& data) {
    std::string result;
    net.run([&] { result = testing::exchange(address, port, data); });
    return result;
  }
  bool blocked(const std::string& destination, const std::string& reason_part) {
    std::lock_guard lock(mutex);
    for (const Blocked& b : seen) {
      if (b.destination == destination && b.reason.find(reason_part) != std::string::npos) {
        return true;
      }
    }
    return false;
  }
  SandboxNet net;
  std::unique_ptr<Gateway> gateway;
  std::unique_ptr<Attachment> attachment;
  std::mutex mutex;
  std::vector<Blocked> seen;
};

GatewayConfig config_for(const Upstream& upstream) {
  GatewayConfig config;
  for (const char* name : {"api.test", "tls.test", "plain.test", "nosecret.test"}) {
    config.hosts.emplace_back(name, upstream.address_and_port());
  }
  config.secrets["api_token"] = std::string("Bearer ") + kSecret;
  return config;
}

}  // namespace

TEST_CASE("DNS gives allowed names synthetic addresses and refuses the rest once", "[root]") {
  if (!can_make_namespaces()) return;
  Rig rig(api_egress(), {});
  CHECK(rig.resolve("api.test") == "198.18.1.1");
  CHECK(rig.resolve("API.TEST") == "198.18.1.1");
  CHECK(rig.resolve("tls.test") == "198.18.1.2");
  for (int retry = 0; retry < 3; ++retry) CHECK(rig.resolve("evil.test").empty());
  std::vector<uint8_t> answer;
  rig.net.run([&] { answer = ask_dns(make_dns_query(2, "evil.test", kTypeA)); });
  REQUIRE(answer.size() >= 12);
  CHECK((answer[3] & 0x0f) == 3);
  rig.net.run([&] { answer = ask_dns(make_dns_query(3, "api.test", 28)); });
  REQUIRE(answer.size() >= 12);
  CHECK((answer[3] & 0x0f) == 0);
  CHECK(answer[7] == 0);
  // A program that asks another server (every address is the gateway's) gets its answer from
  // the address it asked.
  rig.net.run([&] { answer = ask_dns(make_dns_query(4, "api.test", kTypeA), "8.8.8.8"); });
  REQUIRE(answer.size() >= 16);
  CHECK(answer[answer.size() - 4] == 198);
  const Report report = rig.attachment->finish();
  CHECK(report.usage.dns_queries == 9);
  CHECK(report.blocked ==
        std::vector<Blocked>{{"dns evil.test", "not in the policy's egress list"}});
}

TEST_CASE("hostile DNS packets get no answer or FORMERR, and good ones still get answers",
          "[root]") {
  if (!can_make_namespaces()) return;
  Rig rig(api_egress(), {});
  rig.net.run([&] {
    auto fd = sandbox::UniqueFd::adopt(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in resolver{};
    resolver.sin_family = AF_INET;
    resolver.sin_port = htons(53);
    resolver.sin_addr.s_addr = htonl(0xc6120001);  // 198.18.0.1
    std::mt19937 random(1);
    const auto good = make_dns_query(9, "api.test", kTypeA);
    for (int i = 0; i < 3000; ++i) {
      std::vector<uint8_t> packet = i % 3 ? good : std::vector<uint8_t>(random() % 600);
      for (auto& byte : packet) {
        if (random() % 8 == 0) byte = static_cast<uint8_t>(random());
      }
      packet.resize(random() % (packet.size() + 1));
      ::sendto(fd.get(), packet.data(), packet.size(), MSG_DONTWAIT,
               reinterpret_cast<sockaddr*>(&resolver), sizeof resolver);
    }
  });
  std::string address;
  for (int attempt = 0; attempt < 5 && address.empty(); ++attempt) {
    address = rig.resolve("plain.test");
  }
  CHECK(address.rfind("198.18.", 0) == 0);
}

TEST_CASE("plain HTTP to an allowed name goes out with Connection: close and the secret",
          "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  Rig rig(api_egress(), config_for(upstream));
  const std::string address = rig.resolve("api.test");
  REQUIRE(address == "198.18.1.1");
  const std::string response = rig.exchange(
      address, 80,
      "GET /v1 HTTP/1.1\r\nHost: api.test\r\nConnection: keep-alive\r\nAuthorization: mine\r\n"
      "Proxy-Authorization: Basic eA==\r\n\r\n");
  CHECK(response.rfind("HTTP/1.1 200 OK", 0) == 0);
  REQUIRE(upstream.requests().size() == 1);
  const std::string seen = upstream.requests()[0];
  CHECK(seen.rfind("GET /v1 HTTP/1.1\r\n", 0) == 0);
  CHECK(seen.find("Connection: close\r\n") != std::string::npos);
  CHECK(seen.find("Authorization: Bearer " + std::string(kSecret)) != std::string::npos);
  CHECK(seen.find("mine") == std::string::npos);
  CHECK(seen.find("Proxy-Authorization") == std::string::npos);
  CHECK(seen.find("keep-alive") == std::string::npos);
  const Report report = rig.attachment->finish();
  CHECK(report.usage.connections == 1);
  CHECK(report.usage.bytes_sent == seen.size());
  CHECK(report.usage.bytes_received == response.size());
}

TEST_CASE("a method of other token characters is checked like any other", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  Rig rig(api_egress(), config_for(upstream));
  const std::string response = rig.exchange(
      rig.resolve("plain.test"), 80,
      "M-SEARCH / HTTP/1.1\r\nHost: evil.test\r\n\r\nGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n");
  CHECK(response.rfind("HTTP/1.1 403", 0) == 0);
  CHECK(rig.blocked("plain.test:80", "HTTP Host evil.test does not match plain.test"));
  CHECK(upstream.connections() == 0);
}

TEST_CASE("a second request on the connection never reaches the upstream", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5", [](int fd, std::string& received) {
    char buffer[4096];
    while (true) {  // everything, until the gateway passes the client's half-close on
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      received.append(buffer, static_cast<size_t>(n));
    }
    const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
  });
  Rig rig(api_egress(), config_for(upstream));
  const std::string response =
      rig.exchange(rig.resolve("plain.test"), 80,
                   "POST / HTTP/1.1\r\nHost: plain.test\r\nContent-Length: 5\r\n\r\nhello"
                   "GET /second HTTP/1.1\r\nHost: evil.test\r\n\r\n");
  CHECK(response.rfind("HTTP/1.1 200", 0) == 0);
  REQUIRE(upstream.requests().size() == 1);
  const std::string seen = upstream.requests()[0];
  CHECK(seen.size() >= 5);
  CHECK(seen.substr(seen.size() - 9) == "\r\n\r\nhello");
  CHECK(seen.find("evil.test") == std::string::npos);
}

TEST_CASE("a client streaming after its request is no longer read once past a head's worth",
          "[root]") {
  if (!can_make_namespaces()) return;
  // Answers, then keeps its side open until the gateway closes it.
  Upstream upstream("127.0.0.5", [](int fd, std::string& received) {
    char buffer[4096];
    while (received.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
      if (n <= 0) return;
      received.append(buffer, static_cast<size_t>(n));
    }
    const std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
    const timeval forever{};  // past the client's 5 s: the client's sends must time out first
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &forever, sizeof forever);
    while (::recv(fd, buffer, sizeof buffer, 0) > 0) {
    }
  });
  Rig rig(api_egress(), config_for(upstream));
  const std::string address = rig.resolve("plain.test");
  size_t sent = 0;
  bool answered = false;
  const std::string chunk(1 << 20, 'x');
  rig.net.run([&] {
    Client client(address, 80);
    if (!client.connected()) return;
    client.send("GET / HTTP/1.1\r\nHost: plain.test\r\n\r\n");
    // The gateway used to read and drop all of it, uncounted and without end. Now it stops
    // reading: the sends block, and the client's 5 s timeout ends them.
    for (int i = 0; i < 64; ++i) {
      const size_t n = client.send(chunk);
      sent += n;
      if (n < chunk.size()) break;
    }
    answered = client.read_until("\r\n\r\nok");
  });
  CHECK(sent < 64 * chunk.size());
  CHECK(answered);
  const Report report = rig.attachment->finish();  // which ends the upstream's connection
  for (int i = 0; i < 500 && upstream.requests().empty(); ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(upstream.requests().size() == 1);
  CHECK(upstream.requests()[0].find("xxxx") == std::string::npos);
  CHECK(report.usage.bytes_sent == upstream.requests()[0].size());
}

TEST_CASE("a Host that is not the destination is refused with 403 and no secret", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  Rig rig(api_egress(), config_for(upstream));
  const std::string address = rig.resolve("api.test");
  const std::string response =
      rig.exchange(address, 80, "GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n");
  CHECK(response.rfind("HTTP/1.1 403", 0) == 0);
  CHECK(response.find("api.test:80") != std::string::npos);
  CHECK(response.find(kSecret) == std::string::npos);
  CHECK(rig.blocked("api.test:80", "HTTP Host evil.test does not match api.test"));
  CHECK(upstream.connections() == 0);
  const Report report = rig.attachment->finish();
  CHECK(report.usage.refused == 1);
  for (const Blocked& b : report.blocked) CHECK(b.reason.find(kSecret) == std::string::npos);
}

TEST_CASE("a rule whose secret is not configured answers 502 naming the secret", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  Rig rig(api_egress(), config_for(upstream));
  const std::string response = rig.exchange(rig.resolve("nosecret.test"), 80,
                                            "GET / HTTP/1.1\r\nHost: nosecret.test\r\n\r\n");
  CHECK(response.rfind("HTTP/1.1 502", 0) == 0);
  CHECK(response.find("missing_secret") != std::string::npos);
  CHECK(response.find(kSecret) == std::string::npos);
  CHECK(upstream.connections() == 0);
}

TEST_CASE("TLS goes out only with the destination's SNI", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  Rig rig(api_egress(), config_for(upstream));
  const std::string address = rig.resolve("tls.test");
  const std::string hello = make_client_hello("TLS.test");
  rig.exchange(address, 443, hello);
  REQUIRE(upstream.requests().size() == 1);
  CHECK(upstream.requests()[0] == hello);

  CHECK(rig.exchange(address, 443, make_client_hello("api.test")).empty());
  CHECK(rig.blocked("tls.test:443", "TLS SNI api.test does not match tls.test"));
  CHECK(rig.exchange(address, 443, make_client_hello("")).empty());
  CHECK(rig.blocked("tls.test:443", "TLS without SNI"));
  // A hello in small pieces is still read whole.
  rig.net.run([&] {
    Client client(address, 443);
    for (size_t at = 0; at < hello.size(); at += 7) {
      client.send(hello.substr(at, 7));
      std::this_thread::sleep_for(1ms);
    }
    client.shut_write();
    client.read_all();
  });
  CHECK(upstream.requests().size() == 2);
  CHECK(rig.attachment->finish().usage.refused == 2);
}

TEST_CASE("a raw address is refused unless a CIDR rule allows it and its port", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.9");
  policies::Egress egress = api_egress();
  egress.allow.push_back(
      {"", policies::Cidr::parse("127.0.0.9/32"), {upstream.port()}, "a pinned service"});
  Rig rig(egress, {}, {443, upstream.port()});
  CHECK(rig.exchange("8.8.8.8", 443, make_client_hello("dns.google")).empty());
  CHECK(rig.blocked("8.8.8.8:443", "a raw address no rule allows"));
  const std::string response =
      rig.exchange("127.0.0.9", upstream.port(), "GET / HTTP/1.1\r\nHost: whatever\r\n\r\n");
  CHECK(response.rfind("HTTP/1.1 200 OK", 0) == 0);
  CHECK(upstream.connections() == 1);
}

TEST_CASE("a port the rule does not list is refused for that name", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  Rig rig(api_egress(), config_for(upstream));
  const std::string address = rig.resolve("tls.test");
  const std::string response =
      rig.exchange(address, 80, "GET / HTTP/1.1\r\nHost: tls.test\r\n\r\n");
  CHECK(response.empty());  // refused before a byte was read
  CHECK(rig.blocked("tls.test:80", "port 80 is not allowed for tls.test"));
  CHECK(upstream.connections() == 0);
}

TEST_CASE("the explicit proxy at 198.18.0.1 tunnels CONNECT and forwards absolute-form", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  Rig rig(api_egress(), config_for(upstream));
  const std::string hello = make_client_hello("tls.test");
  std::string established;
  rig.net.run([&] {
    Client client("198.18.0.1", 80);
    client.send("CONNECT tls.test:443 HTTP/1.1\r\nHost: tls.test:443\r\n\r\n");
    client.read_until("\r\n\r\n");
    established = client.received;
    client.send(hello);
    client.shut_write();
    client.read_all();
  });
  CHECK(established.rfind("HTTP/1.1 200", 0) == 0);
  REQUIRE(upstream.requests().size() == 1);
  CHECK(upstream.requests()[0] == hello);

  const std::string refused =
      rig.exchange("198.18.0.1", 80, "CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test\r\n\r\n");
  CHECK(refused.rfind("HTTP/1.1 403", 0) == 0);
  CHECK(refused.find("evil.test:443") != std::string::npos);
  CHECK(refused.find("not in the policy's egress list") != std::string::npos);

  const std::string forwarded = rig.exchange(
      "198.18.0.1", 80, "GET http://plain.test/path?x=1 HTTP/1.1\r\nHost: plain.test\r\n\r\n");
  CHECK(forwarded.rfind("HTTP/1.1 200 OK", 0) == 0);
  REQUIRE(upstream.requests().size() == 2);
  CHECK(upstream.requests()[1].rfind("GET /path?x=1 HTTP/1.1\r\nHost: plain.test\r\n", 0) == 0);
}

TEST_CASE("a name that resolves to loopback is refused unless pinned", "[root]") {
  if (!can_make_namespaces()) return;
  Rig rig(api_egress(), {});
  const std::string response =
      rig.exchange(rig.resolve("localhost"), 80, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
  CHECK(response.rfind("HTTP/1.1 403", 0) == 0);
  CHECK(rig.blocked("localhost:80", "resolves to a loopback address"));
}

TEST_CASE("the run's connection limit refuses the connections beyond it, reported once", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  policies::Egress egress = api_egress();
  egress.max_connections = 2;
  Rig rig(egress, config_for(upstream));
  const std::string address = rig.resolve("plain.test");
  std::vector<std::string> responses;
  for (int i = 0; i < 4; ++i) {
    responses.push_back(rig.exchange(address, 80, "GET / HTTP/1.1\r\nHost: plain.test\r\n\r\n"));
  }
  CHECK(responses[1].rfind("HTTP/1.1 200", 0) == 0);
  CHECK(responses[2].rfind("HTTP/1.1 403", 0) == 0);
  const Report report = rig.attachment->finish();
  CHECK(report.usage.connections == 2);
  CHECK(report.usage.refused == 2);
  CHECK(report.blocked ==
        std::vector<Blocked>{{"plain.test:80", "the run's limit of 2 connections is reached"}});
}

TEST_CASE("the run's byte limit closes its connections and is reported once", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5", [](int fd, std::string& received) {
    char buffer[4096];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n > 0) received.assign(buffer, static_cast<size_t>(n));
    const std::string big(100000, 'x');
    ::send(fd, big.data(), big.size(), MSG_NOSIGNAL);
  });
  policies::Egress egress = api_egress();
  egress.max_bytes = 10000;
  Rig rig(egress, config_for(upstream));
  const std::string response =
      rig.exchange(rig.resolve("plain.test"), 80, "GET / HTTP/1.1\r\nHost: plain.test\r\n\r\n");
  CHECK(response.size() < 10000);
  const Report report = rig.attachment->finish();
  CHECK(report.usage.bytes_sent + report.usage.bytes_received <= 10000);
  CHECK(report.blocked ==
        std::vector<Blocked>{{"plain.test:80", "the run's limit of 10000 bytes is reached"}});
}

TEST_CASE("a flood of refused names cannot hide a refused connection; the rest is counted",
          "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  Rig rig(api_egress(), config_for(upstream));
  for (int i = 0; i < 700; ++i) rig.resolve("n" + std::to_string(i) + ".evil.test");
  rig.exchange("93.184.216.34", 80, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(rig.blocked("93.184.216.34:80", ""));
  for (int i = 0; i < 600; ++i) {
    rig.exchange("10.200." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1), 80, "x");
  }
  // 512 names and 512 connections listed; 188 names and 89 connections counted (a session's
  // execution gets its part of the count from here).
  CHECK(rig.attachment->usage_so_far().unlisted == 277);
  const Report report = rig.attachment->finish();
  REQUIRE(report.blocked.size() == kMaxBlockedReported + 1);
  CHECK(report.blocked.back() ==
        Blocked{"refusals not listed", "277 more refused attempts, past the list's cap of 1024"});
  CHECK(report.usage.refused == 601);
}

TEST_CASE("finish closes the listeners and returns the counts", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  Rig rig(api_egress(), config_for(upstream));
  const std::string address = rig.resolve("plain.test");
  rig.exchange(address, 80, "GET / HTTP/1.1\r\nHost: plain.test\r\n\r\n");
  const Report report = rig.attachment->finish();
  CHECK(report.usage.connections == 1);
  CHECK(report.usage.dns_queries == 1);
  int error = 0;
  rig.net.run([&] { error = Client(address, 80).connect_errno(); });
  CHECK(error == ECONNREFUSED);
  CHECK(rig.attachment->finish().usage.connections == 1);  // idempotent
}

TEST_CASE("an attachment outlives its gateway: the gateway finished it on the way out", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  Rig rig(api_egress(), config_for(upstream));
  const std::string address = rig.resolve("plain.test");
  std::string response;
  rig.net.run([&] {
    Client open_one(address, 80);  // still open when the gateway goes
    response = exchange(address, 80, "GET / HTTP/1.1\r\nHost: plain.test\r\n\r\n");
    std::this_thread::sleep_for(50ms);
  });
  CHECK(response.rfind("HTTP/1.1 200", 0) == 0);
  rig.gateway.reset();
  int error = 0;
  rig.net.run([&] { error = Client(address, 80).connect_errno(); });
  CHECK(error == ECONNREFUSED);
  CHECK(rig.attachment->finish().usage.connections == 1);
}

TEST_CASE("a hostile sandbox's slow and silent clients do not delay another sandbox", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  Rig hostile(api_egress(), config_for(upstream));
  Rig other(api_egress(), config_for(upstream));
  const std::string hostile_address = hostile.resolve("plain.test");
  const std::string address = other.resolve("plain.test");
  std::atomic<bool> stop = false;
  std::thread attacker([&] {
    hostile.net.run([&] {
      std::vector<std::unique_ptr<Client>> clients;
      for (int i = 0; i < 300; ++i) {  // more than an attachment may hold open
        clients.push_back(std::make_unique<Client>(hostile_address, 80));
      }
      for (int second = 0; second < 3 && !stop; ++second) {
        for (size_t i = 0; i < clients.size(); i += 2) clients[i]->send("G");  // one byte each
        std::this_thread::sleep_for(300ms);
      }
    });
  });
  std::this_thread::sleep_for(200ms);
  const auto started = std::chrono::steady_clock::now();
  const std::string response =
      other.exchange(address, 80, "GET / HTTP/1.1\r\nHost: plain.test\r\n\r\n");
  const auto took = std::chrono::steady_clock::now() - started;
  stop = true;
  attacker.join();
  CHECK(response.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(took < 1s);
  CHECK(hostile.attachment->finish().usage.refused >= 300 - kMaxOpenConnections);
}

TEST_CASE("names that never resolve hold their own sandbox's lookups, not another's", "[root]") {
  if (!can_make_namespaces()) return;
  // Lookups of *.slow.test hang until the test ends, as names whose servers never answer do
  // (getaddrinfo cannot be interrupted); the others find nothing at once.
  struct Hang {
    std::mutex mutex;
    std::condition_variable wake;
    bool released = false;
    std::atomic<int> entered = 0;
  };
  auto hang = std::make_shared<Hang>();
  GatewayConfig config;
  config.connect_timeout = 3s;
  config.lookup = [hang](const std::string& name) -> std::vector<std::string> {
    if (name.ends_with(".slow.test")) {
      ++hang->entered;
      std::unique_lock lock(hang->mutex);
      hang->wake.wait(lock, [&] { return hang->released; });
    }
    return {};
  };
  policies::Egress egress;
  egress.allow.push_back({"*.slow.test", std::nullopt, {80}, "names that never answer"});
  egress.allow.push_back({"fast.test", std::nullopt, {80}, "a name that answers"});
  Rig other(egress, std::move(config));
  Rig first_hostile(egress, other);
  Rig second_hostile(egress, other);
  struct Release {  // before the gateway's end, which waits for the lookups running
    std::shared_ptr<Hang> hang;
    ~Release() {
      {
        std::lock_guard lock(hang->mutex);
        hang->released = true;
      }
      hang->wake.notify_all();
    }
  } release{hang};
  // Each hostile sandbox runs as many lookups as it may (kMaxResolvingPerAttachment): together,
  // as many as the gateway starts with threads (kResolverThreads).
  std::vector<std::unique_ptr<Client>> stuck;
  int n = 0;
  for (Rig* hostile : {&first_hostile, &second_hostile}) {
    for (int i = 0; i < 2; ++i, ++n) {
      const std::string name = "n" + std::to_string(n) + ".slow.test";
      const std::string address = hostile->resolve(name);
      hostile->net.run([&] {
        stuck.push_back(std::make_unique<Client>(address, 80));
        stuck.back()->send("GET / HTTP/1.1\r\nHost: " + name + "\r\n\r\n");
      });
    }
  }
  for (int i = 0; i < 500 && hang->entered < 4; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(hang->entered == 4);  // every thread the gateway starts with is held
  const std::string response =
      other.exchange(other.resolve("fast.test"), 80, "GET / HTTP/1.1\r\nHost: fast.test\r\n\r\n");
  // Not "timed out resolving": its lookup ran on a thread of its own, and found nothing.
  CHECK(response.rfind("HTTP/1.1 502", 0) == 0);
  CHECK(response.find("cannot resolve fast.test") != std::string::npos);
}

TEST_CASE("garbage on every kind of connection is refused and the gateway still serves", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  Rig rig(api_egress(), config_for(upstream));
  const std::string tls = rig.resolve("tls.test");
  const std::string plain = rig.resolve("plain.test");
  std::mt19937 random(3);
  const std::string hello = make_client_hello("tls.test");
  const std::string request = "GET / HTTP/1.1\r\nHost: plain.test\r\n\r\n";
  const std::string proxy = "CONNECT tls.test:443 HTTP/1.1\r\n\r\n";
  rig.net.run([&] {
    for (int i = 0; i < 150; ++i) {
      const int kind = i % 3;
      std::string payload = kind == 0 ? hello : kind == 1 ? request : proxy;
      for (auto& byte : payload) {
        if (random() % 6 == 0) byte = static_cast<char>(random());
      }
      payload.resize(1 + random() % payload.size());
      exchange(kind == 0 ? tls : kind == 1 ? plain : "198.18.0.1", kind == 0 ? 443 : 80, payload);
    }
  });
  CHECK(rig.exchange(plain, 80, request).rfind("HTTP/1.1 200", 0) == 0);
}

TEST_CASE("what the sandbox's kernel refuses is reported by destination", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  Rig rig(api_egress(), config_for(upstream));
  const std::string plain = rig.resolve("plain.test");
  rig.net.run([&] {
    for (const auto& [address, port] : std::vector<std::pair<std::string, uint16_t>>{
             {plain, 22}, {"10.1.2.3", 5432}, {"127.0.0.1", 9}}) {
      Client client(address, port);
      CHECK(!client.connected());
    }
    const int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(123);
    ::inet_pton(AF_INET, "10.9.9.9", &to.sin_addr);
    CHECK(::sendto(udp, "ntp?", 4, 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == 4);
    ::close(udp);
  });
  const Usage usage = rig.attachment->usage_so_far();  // reads what the kernel refused so far
  CHECK(rig.blocked("plain.test:22", "port 22 is named by no egress rule"));
  CHECK(rig.blocked("10.1.2.3:5432", "port 5432 is named by no egress rule"));
  CHECK(rig.blocked("udp 10.9.9.9:123", "only DNS"));
  CHECK(usage.refused == 2);  // the loopback one is the sandbox's own business, not egress
  CHECK(!rig.blocked("127.0.0.1:9", ""));
  // Allowed traffic and the gateway's own resets are no refusals.
  CHECK(rig.exchange(plain, 80, "GET / HTTP/1.1\r\nHost: plain.test\r\n\r\n")
            .rfind("HTTP/1.1 200", 0) == 0);
  CHECK(rig.attachment->finish().usage.refused == 2);
}

TEST_CASE("an upstream that cannot be reached is a 502 for HTTP, not a refusal", "[root]") {
  if (!can_make_namespaces()) return;
  GatewayConfig config;
  config.hosts.emplace_back("plain.test", "127.0.0.5:1");  // nothing listens on port 1
  Rig rig(api_egress(), config);
  const std::string response =
      rig.exchange(rig.resolve("plain.test"), 80, "GET / HTTP/1.1\r\nHost: plain.test\r\n\r\n");
  CHECK(response.rfind("HTTP/1.1 502", 0) == 0);
  CHECK(response.find("cannot connect to plain.test:80") != std::string::npos);
  const Report report = rig.attachment->finish();
  CHECK(report.usage.connections == 1);
  CHECK(report.usage.refused == 0);
  CHECK(report.blocked.empty());
}

TEST_CASE("a client that says nothing gets an opaque stream: the server speaks first", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5", [](int fd, std::string&) {
    const std::string greeting = "220 ready\r\n";
    ::send(fd, greeting.data(), greeting.size(), MSG_NOSIGNAL);
  });
  Rig rig(api_egress(), config_for(upstream));
  const std::string address = rig.resolve("plain.test");
  std::string greeting;
  rig.net.run([&] {
    Client client(address, 80);
    client.read_until("\r\n");
    greeting = client.received;
  });
  CHECK(greeting == "220 ready\r\n");
  CHECK(rig.attachment->usage_so_far().connections == 1);
}

TEST_CASE("first bytes sent after the wait are checked all the same", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  Rig rig(api_egress(), config_for(upstream));
  const std::string api = rig.resolve("api.test");
  const std::string tls = rig.resolve("tls.test");
  const auto late = [&](const std::string& address, uint16_t port, const std::string& data) {
    std::string received;
    rig.net.run([&] {
      Client client(address, port);
      std::this_thread::sleep_for(400ms);  // past kFirstBytesWait: the upstream is open by now
      client.send(data);
      client.shut_write();
      received = client.read_all();
    });
    return received;
  };
  const std::string refused = late(api, 80, "GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n");
  CHECK(refused.rfind("HTTP/1.1 403", 0) == 0);
  CHECK(refused.find(kSecret) == std::string::npos);
  CHECK(rig.blocked("api.test:80", "HTTP Host evil.test does not match api.test"));
  CHECK(late(tls, 443, make_client_hello("evil.test")).empty());
  CHECK(rig.blocked("tls.test:443", "TLS SNI evil.test does not match tls.test"));
  const std::string allowed = late(api, 80, "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n");
  CHECK(allowed.rfind("HTTP/1.1 200", 0) == 0);
  bool injected = false;
  for (const std::string& request : upstream.requests()) {
    CHECK(request.find("evil.test") == std::string::npos);
    if (request.find(kSecret) != std::string::npos) injected = true;
  }
  CHECK(injected);
}

TEST_CASE("an idle connection is closed after the idle timeout", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5", [](int fd, std::string& received) {
    char buffer[64];
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);  // until the gateway gives up
    if (n > 0) received.assign(buffer, static_cast<size_t>(n));
  });
  GatewayConfig config = config_for(upstream);
  config.idle_timeout = 300ms;
  Rig rig(api_egress(), config);
  const std::string address = rig.resolve("plain.test");
  std::chrono::steady_clock::duration took{};
  rig.net.run([&] {
    const auto started = std::chrono::steady_clock::now();
    Client client(address, 80);
    client.read_all();  // the gateway closes it; the client's own timeout is 5 s
    took = std::chrono::steady_clock::now() - started;
  });
  CHECK(took < 2s);
}

TEST_CASE("set_config's secrets apply to the connections after it", "[root]") {
  if (!can_make_namespaces()) return;
  Upstream upstream("127.0.0.5");
  Rig rig(api_egress(), config_for(upstream));
  GatewayConfig rotated = config_for(upstream);
  rotated.secrets["api_token"] = "Bearer rotated";
  rig.gateway->set_config(rotated);
  rig.exchange(rig.resolve("api.test"), 80, "GET / HTTP/1.1\r\nHost: api.test\r\n\r\n");
  REQUIRE(upstream.requests().size() == 1);
  CHECK(upstream.requests()[0].find("Authorization: Bearer rotated\r\n") != std::string::npos);
}

}  // namespace airlock::egress::testing
