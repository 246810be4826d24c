// The gateway's pure parts: DNS answers, the ClientHello scanner, HTTP heads and the rules.
#include <catch2/catch.hpp>
#include <mutex>
#include <random>
#include <thread>

#include "runner/egress/dns.h"
#include "runner/egress/host_addresses.h"
#include "runner/egress/http_head.h"
#include "runner/egress/kernel_refusals.h"
#include "runner/egress/rules.h"
#include "runner/egress/tls.h"

namespace airlock::egress {
namespace {

policies::Egress sample_egress() {
  policies::Egress egress;
  egress.allow.push_back({"api.test", std::nullopt, {80, 443}, "the API"});
  egress.allow.push_back({"*.files.test", std::nullopt, {443}, "downloads"});
  egress.allow.push_back({"", policies::Cidr::parse("10.1.0.0/16"), {5432}, "the database"});
  return egress;
}

int rcode(const std::vector<uint8_t>& packet) {
  return packet[3] & 0x0f;
}
int answers(const std::vector<uint8_t>& packet) {
  return packet[6] << 8 | packet[7];
}

}  // namespace

TEST_CASE("DNS answers an allowed name with a stable synthetic address") {
  const auto egress = sample_egress();
  SyntheticNames names;
  auto first = answer_dns_query(make_dns_query(7, "API.test.", kTypeA), egress, names);
  REQUIRE(first.packet.size() > 16);
  CHECK(rcode(first.packet) == 0);
  CHECK(answers(first.packet) == 1);
  CHECK(std::vector<uint8_t>(first.packet.end() - 4, first.packet.end()) ==
        std::vector<uint8_t>{198, 18, 1, 1});
  auto other = answer_dns_query(make_dns_query(8, "a.b.files.test", kTypeA), egress, names);
  CHECK(std::vector<uint8_t>(other.packet.end() - 4, other.packet.end()) ==
        std::vector<uint8_t>{198, 18, 1, 2});
  auto again = answer_dns_query(make_dns_query(9, "api.test", kTypeA), egress, names);
  CHECK(std::vector<uint8_t>(again.packet.end() - 4, again.packet.end()) ==
        std::vector<uint8_t>{198, 18, 1, 1});
  CHECK(names.name_of({198, 18, 1, 2}) == "a.b.files.test");
  auto aaaa = answer_dns_query(make_dns_query(10, "api.test", 28), egress, names);
  CHECK(rcode(aaaa.packet) == 0);
  CHECK(answers(aaaa.packet) == 0);
}

TEST_CASE("DNS answers NXDOMAIN for a name no rule allows, and says which") {
  SyntheticNames names;
  auto answer = answer_dns_query(make_dns_query(7, "files.test", kTypeA), sample_egress(), names);
  CHECK(rcode(answer.packet) == 3);
  CHECK(answer.refused_name == "files.test");
}

TEST_CASE("DNS refuses malformed queries without reading past the packet") {
  const auto egress = sample_egress();
  SyntheticNames names;
  auto query = make_dns_query(7, "api.test", kTypeA);
  SECTION("truncated") {
    for (size_t size = 0; size < query.size(); ++size) {
      auto answer = answer_dns_query(std::span(query.data(), size), egress, names);
      CHECK((answer.packet.empty() || rcode(answer.packet) == 1));
    }
  }
  SECTION("a compression loop") {
    // A header, then a name that is a pointer to itself.
    const std::vector<uint8_t> loop{0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
    CHECK(rcode(answer_dns_query(loop, egress, names).packet) == 1);
  }
  SECTION("a label over 63 bytes") {
    auto answer =
        answer_dns_query(make_dns_query(1, std::string(64, 'a') + ".test", kTypeA), egress, names);
    CHECK(rcode(answer.packet) == 1);
  }
  SECTION("a name over 253 bytes") {
    std::string name;
    for (int i = 0; i < 5; ++i) name += std::string(60, 'a') + ".";
    name += "test";
    CHECK(rcode(answer_dns_query(make_dns_query(1, name, kTypeA), egress, names).packet) == 1);
  }
  SECTION("two questions") {
    query[5] = 2;
    CHECK(rcode(answer_dns_query(query, egress, names).packet) == 1);
  }
  SECTION("a response is never answered") {
    query[2] |= 0x80;
    CHECK(answer_dns_query(query, egress, names).packet.empty());
  }
  SECTION("random bytes") {
    std::mt19937 random(42);
    for (int i = 0; i < 20000; ++i) {
      std::vector<uint8_t> packet(random() % 80);
      for (auto& byte : packet) byte = static_cast<uint8_t>(random());
      if (packet.size() > 5 && i % 2) packet[4] = 0, packet[5] = 1;
      (void)answer_dns_query(packet, egress, names);
    }
  }
}

TEST_CASE("a name's synthetic addresses stop at the cap") {
  SyntheticNames names;
  for (size_t i = 0; i < kMaxSyntheticNames; ++i) {
    REQUIRE(names.assign("n" + std::to_string(i) + ".test"));
  }
  CHECK_FALSE(names.assign("one-more.test"));
  CHECK(names.assign("n0.test"));
}

TEST_CASE("the ClientHello scanner finds the SNI, in one piece or many") {
  const std::string hello = make_client_hello("api.test");
  auto whole = scan_client_hello(hello);
  REQUIRE(whole.status == ClientHelloScan::Status::complete);
  CHECK(whole.server_name == "api.test");
  for (size_t size = 0; size < hello.size(); ++size) {
    CHECK(scan_client_hello(hello.substr(0, size)).status == ClientHelloScan::Status::need_more);
  }
  // The same handshake split over two records.
  const std::string handshake = hello.substr(5);
  const auto record = [](const std::string& payload) {
    return std::string("\x16\x03\x01", 3) + static_cast<char>(payload.size() >> 8) +
           static_cast<char>(payload.size() & 0xff) + payload;
  };
  const std::string split = record(handshake.substr(0, 10)) + record(handshake.substr(10));
  CHECK(scan_client_hello(split).server_name == "api.test");
  CHECK(scan_client_hello(make_client_hello("")).status == ClientHelloScan::Status::complete);
  CHECK_FALSE(scan_client_hello(make_client_hello("")).server_name);
}

TEST_CASE("the ClientHello scanner survives garbage") {
  std::mt19937 random(7);
  const std::string hello = make_client_hello("api.test");
  for (int i = 0; i < 20000; ++i) {
    std::string mutated = hello;
    for (int flips = 0; flips < 3; ++flips) {
      mutated[random() % mutated.size()] = static_cast<char>(random());
    }
    mutated.resize(random() % (mutated.size() + 1));
    (void)scan_client_hello(mutated);
  }
  CHECK(scan_client_hello(std::string("\x16\x03\x01\xff\xff", 5)).status ==
        ClientHelloScan::Status::malformed);
  CHECK(scan_client_hello(std::string("\x17\x03\x01\x00\x05", 5)).status ==
        ClientHelloScan::Status::malformed);
}

TEST_CASE("an HTTP head is recognised, parsed strictly and rewritten") {
  CHECK(classify_stream("GE") == StreamKind::need_more);
  CHECK(classify_stream("GET /") == StreamKind::http);
  CHECK(classify_stream("SSH-2.0-OpenSSH_9.2p1 Debian\r\n") == StreamKind::opaque);
  const std::string text =
      "GET http://api.test/v1?q=1 HTTP/1.1\r\nHost: api.test\r\nConnection: keep-alive, X-Drop\r\n"
      "X-Drop: 1\r\nProxy-Authorization: Basic eA==\r\nAuthorization: mine\r\nAccept: */*\r\n\r\n";
  REQUIRE(request_head_size(text) == text.size());
  // Searching on from where an earlier, shorter read left off still finds a split "\r\n\r\n".
  CHECK(request_head_size(text, text.size() - 2) == text.size());
  CHECK(request_head_size(text.substr(0, text.size() - 1)) == 0);
  const auto head = parse_request_head(text);
  REQUIRE(head);
  const auto target = parse_absolute_target(head->target);
  REQUIRE(target);
  CHECK(target->authority.host == "api.test");
  CHECK(target->origin_form == "/v1?q=1");
  const std::string rewritten =
      rewrite_request_head(*head, target->origin_form, "api.test", {{"Authorization", "Bearer s"}});
  CHECK(rewritten ==
        "GET /v1?q=1 HTTP/1.1\r\nHost: api.test\r\nAccept: */*\r\nAuthorization: Bearer s\r\n"
        "Connection: close\r\n\r\n");
  CHECK_FALSE(parse_request_head("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"));
  CHECK_FALSE(parse_request_head("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n"));
  CHECK_FALSE(parse_request_head("GET  / HTTP/1.1\r\n\r\n"));
  CHECK_FALSE(parse_request_head("GET / HTTP/2\r\n\r\n"));
  CHECK(parse_authority("API.test:8080")->port == 8080);
  CHECK_FALSE(parse_authority("api.test:99999"));
  CHECK_FALSE(parse_authority("user@api.test"));
  CHECK(parse_authority("[::1]:443")->host == "::1");
}

TEST_CASE("a request's body length is known, chunked, or refused as ambiguous") {
  const auto length_of = [](const std::string& headers) {
    return request_body_length(*parse_request_head("POST / HTTP/1.1\r\n" + headers + "\r\n"));
  };
  CHECK(length_of("") == std::optional<uint64_t>(0));
  CHECK(length_of("Content-Length: 12\r\n") == std::optional<uint64_t>(12));
  const auto chunked = length_of("Transfer-Encoding: chunked\r\n");
  REQUIRE(chunked);
  CHECK_FALSE(*chunked);
  CHECK_FALSE(length_of("Content-Length: 1\r\nTransfer-Encoding: chunked\r\n"));
  CHECK_FALSE(length_of("Content-Length: 1\r\nContent-Length: 1\r\n"));
  CHECK_FALSE(length_of("Content-Length: -1\r\n"));
  CHECK_FALSE(length_of("Transfer-Encoding: gzip, chunked\r\n"));
}

TEST_CASE("rules allow a name on its ports and an address in its CIDR") {
  const auto egress = sample_egress();
  CHECK(check_name(egress, "API.test.", 443).allowed());
  CHECK(check_name(egress, "api.test", 22).reason == "port 22 is not allowed for api.test");
  CHECK(check_name(egress, "evil.test", 443).reason == "not in the policy's egress list");
  CHECK(check_address(egress, *policies::Cidr::parse("10.1.2.3"), 5432).allowed());
  CHECK(check_address(egress, *policies::Cidr::parse("10.2.0.1"), 5432).reason ==
        "a raw address no rule allows");
  CHECK(special_address_kind(*policies::Cidr::parse("127.0.0.1")) == "loopback");
  CHECK(special_address_kind(*policies::Cidr::parse("::ffff:10.0.0.1")) == "private");
  CHECK(special_address_kind(*policies::Cidr::parse("169.254.169.254")) == "link-local");
  CHECK_FALSE(special_address_kind(*policies::Cidr::parse("93.184.216.34")));
  // IPv6 forms that carry an IPv4 address, or reach no public network.
  CHECK(special_address_kind(*policies::Cidr::parse("2002:a00:1::1")) == "6to4");
  CHECK(special_address_kind(*policies::Cidr::parse("2001:0:a00:1::1")) == "Teredo");
  CHECK(special_address_kind(*policies::Cidr::parse("64:ff9b:1::a00:1")) == "NAT64 (local use)");
  CHECK(special_address_kind(*policies::Cidr::parse("::10.0.0.1")) == "IPv4-compatible");
  CHECK(special_address_kind(*policies::Cidr::parse("fec0::1")) == "site-local");
  CHECK_FALSE(special_address_kind(*policies::Cidr::parse("2001:db8::5")));
}

TEST_CASE("the host's own addresses need a rule naming them exactly") {
  const auto cidr = [](const char* text) { return *policies::Cidr::parse(text); };
  policies::Egress egress;
  egress.allow.push_back({"", cidr("0.0.0.0/0"), {80, 443}, "everything"});
  egress.allow.push_back({"", cidr("203.0.113.7"), {80}, "the host's public service"});
  CHECK_FALSE(upstream_refusal(egress, cidr("93.184.216.34"), 443, false));
  CHECK(upstream_refusal(egress, cidr("93.184.216.34"), 443, true) == "host-local");
  CHECK_FALSE(upstream_refusal(egress, cidr("203.0.113.7"), 80, true));
  // The exact rule opens its own ports only, not those a broad rule lists.
  CHECK(upstream_refusal(egress, cidr("203.0.113.7"), 443, true) == "host-local");
  CHECK(upstream_refusal(egress, cidr("127.0.0.1"), 80, true) == "loopback");
  CHECK(address_of_kind("IPv4-compatible") == "an IPv4-compatible address");
  CHECK(address_of_kind("host-local") == "a host-local address");
  HostAddresses host;
  CHECK(host.contains(cidr("127.0.0.1")));
  CHECK(host.contains(cidr("::ffff:127.0.0.1")));
  CHECK_FALSE(host.contains(cidr("192.0.2.77")));
}

TEST_CASE("the host's addresses are read again off the asking thread; the last list answers") {
  const auto cidr = [](const char* text) { return *policies::Cidr::parse(text); };
  std::mutex mutex;
  std::vector<std::thread::id> readers;
  int reads = 0;
  auto reader = [&]() -> std::optional<std::vector<policies::Cidr>> {
    std::lock_guard lock(mutex);
    readers.push_back(std::this_thread::get_id());
    ++reads;
    if (reads == 1) return std::nullopt;  // the first read fails: nothing known
    if (reads == 2) return std::vector<policies::Cidr>{cidr("192.0.2.1")};
    return std::vector<policies::Cidr>{cidr("192.0.2.2")};
  };
  auto read_count = [&] {
    std::lock_guard lock(mutex);
    return reads;
  };
  // Asks until `done` holds; each ask may start a read in the background. A bound, not what is
  // asserted.
  auto ask_until = [](const std::function<bool()>& done) {
    for (int i = 0; i < 2000 && !done(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return done();
  };
  HostAddresses host(reader, std::chrono::milliseconds(0));
  // Never read: every address might be the host's own.
  CHECK(host.contains(cidr("203.0.113.9")));
  // Once a background read has found a list, answers come from it.
  REQUIRE(ask_until([&] { return !host.contains(cidr("203.0.113.9")); }));
  CHECK((host.contains(cidr("192.0.2.1")) || host.contains(cidr("192.0.2.2"))));
  REQUIRE(ask_until([&] { return !host.contains(cidr("203.0.113.9")) && read_count() >= 3; }));
  std::lock_guard lock(mutex);
  CHECK(readers[0] == std::this_thread::get_id());  // the constructor's read
  for (size_t i = 1; i < readers.size(); ++i) CHECK(readers[i] != std::this_thread::get_id());
}

// Found in review: each of these let code past a check.
TEST_CASE("the most specific rule decides a name, whatever the rules' order") {
  policies::Egress egress;
  egress.allow.push_back({"*.corp.test", std::nullopt, {80}, "all of corp", {{"Authorization",
                                                                             "corp_token"}}});
  egress.allow.push_back({"partner.corp.test", std::nullopt, {80}, "no token for them"});
  egress.allow.push_back({"*.eu.corp.test", std::nullopt, {80}, "the EU part"});
  CHECK(check_name(egress, "partner.corp.test", 80).rule->reason == "no token for them");
  CHECK(check_name(egress, "x.eu.corp.test", 80).rule->reason == "the EU part");
  CHECK(check_name(egress, "other.corp.test", 80).rule->reason == "all of corp");
}

TEST_CASE("a special address needs a rule within its range: 0.0.0.0/0 is not the host") {
  policies::Egress egress;
  egress.allow.push_back({"", policies::Cidr::parse("0.0.0.0/0"), {80}, "the internet"});
  egress.allow.push_back({"", policies::Cidr::parse("10.1.2.0/24"), {80}, "one private net"});
  auto allowed = [&](const char* text) {
    return special_address_allowed(egress, *policies::Cidr::parse(text), 80);
  };
  CHECK(allowed("93.184.216.34"));
  CHECK(allowed("10.1.2.3"));
  CHECK_FALSE(allowed("10.1.3.1"));
  CHECK_FALSE(allowed("127.0.0.1"));
  CHECK_FALSE(allowed("169.254.169.254"));
  CHECK_FALSE(allowed("::ffff:127.0.0.1"));
}

TEST_CASE("a private range's rule opens only its own ports, whatever name led there") {
  policies::Egress egress;
  egress.allow.push_back({"*.x.test", std::nullopt, {80}, "the web"});
  egress.allow.push_back({"", policies::Cidr::parse("10.1.2.0/24"), {5432}, "the database"});
  const policies::Cidr database = *policies::Cidr::parse("10.1.2.3");
  // A name under *.x.test resolving into the database's range is judged on its port.
  CHECK(upstream_refusal(egress, database, 80, false) == "private");
  CHECK_FALSE(upstream_refusal(egress, database, 5432, false));
  CHECK(check_name(egress, "db.x.test", 80).allowed());
}

TEST_CASE("what a server may read as a request goes to the strict parser") {
  CHECK(classify_stream("\r\nGET / HTTP/1.1\r\n") == StreamKind::http);
  CHECK(classify_stream("\nGET") == StreamKind::http);
  CHECK(classify_stream("get / HTTP/1.1") == StreamKind::http);
  // Methods servers take that are not all letters (nginx: M-SEARCH; Go, Apache: any token), or
  // longer than common ones, or followed by a tab.
  CHECK(classify_stream("M-SEARCH / HTTP/1.1\r\n") == StreamKind::http);
  CHECK(classify_stream("M-SEARCH / HTTP/1.1") == StreamKind::need_more);
  CHECK(classify_stream("X_1 * http/1.1\n") == StreamKind::http);
  CHECK(classify_stream("ABCDEFGHIJKLMNOPQRSTUVWXYZ / HTTP/1.1\r\n") == StreamKind::http);
  CHECK(classify_stream("GET\t/ HTTP/1.1\r\n") == StreamKind::http);
  CHECK_FALSE(parse_request_head("M-SEARCH\t/ HTTP/1.1\r\nHost: a.test\r\n\r\n"));
  // Other protocols' first lines still pass; a token that never ends is refused at the cap.
  CHECK(classify_stream("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n") == StreamKind::opaque);
  CHECK(classify_stream("*1\r\n$4\r\nPING\r\n") == StreamKind::opaque);
  CHECK(classify_stream("\x16\x03\x01") == StreamKind::opaque);
  CHECK(classify_stream(std::string("0033git-upload-pack /x.git\0host=h\0", 34)) ==
        StreamKind::opaque);
  CHECK(classify_stream(std::string(kMaxUndecidedBytes - 1, 'A')) == StreamKind::need_more);
  CHECK(classify_stream(std::string(kMaxUndecidedBytes, 'A')) == StreamKind::http);
  CHECK(classify_stream("X-1 " + std::string(kMaxUndecidedBytes, 'a')) == StreamKind::http);
  CHECK_FALSE(parse_request_head("\r\nGET / HTTP/1.1\r\nHost: a.test\r\n\r\n"));
  // Connection cannot name the framing away: the upstream must see the length the gateway used.
  const std::string text =
      "POST / HTTP/1.1\r\nHost: a.test\r\nConnection: content-length, transfer-encoding\r\n"
      "Content-Length: 4\r\n\r\n";
  const auto head = parse_request_head(text);
  REQUIRE(head);
  CHECK(rewrite_request_head(*head, "/", std::nullopt, {}).find("Content-Length: 4\r\n") !=
        std::string::npos);
}

}  // namespace airlock::egress

namespace airlock::egress {
namespace {

// An IPv4 header (20 bytes, unfragmented) from source to destination, then payload.
std::vector<uint8_t> ipv4_packet(uint8_t protocol, std::array<uint8_t, 4> source,
                                 std::array<uint8_t, 4> destination, std::vector<uint8_t> payload) {
  std::vector<uint8_t> packet = {0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, protocol, 0, 0};
  packet.insert(packet.end(), source.begin(), source.end());
  packet.insert(packet.end(), destination.begin(), destination.end());
  packet.insert(packet.end(), payload.begin(), payload.end());
  return packet;
}

std::vector<uint8_t> ipv6_packet(uint8_t next, std::array<uint8_t, 16> source,
                                 std::array<uint8_t, 16> destination, std::vector<uint8_t> payload) {
  std::vector<uint8_t> packet = {0x60, 0, 0, 0, 0, 0, next, 64};
  packet.insert(packet.end(), source.begin(), source.end());
  packet.insert(packet.end(), destination.begin(), destination.end());
  packet.insert(packet.end(), payload.begin(), payload.end());
  return packet;
}

// A TCP header from port with the given sequence number and flags.
std::vector<uint8_t> tcp_header(uint16_t port, uint32_t sequence, uint8_t flags) {
  return {static_cast<uint8_t>(port >> 8), static_cast<uint8_t>(port), 0xc0, 0x01,
          static_cast<uint8_t>(sequence >> 24), static_cast<uint8_t>(sequence >> 16),
          static_cast<uint8_t>(sequence >> 8), static_cast<uint8_t>(sequence), 0, 0, 0, 1,
          0x50, flags, 0, 0, 0, 0, 0, 0};
}

constexpr uint8_t kRstAck = 0x14;
constexpr std::array<uint8_t, 4> kSandbox = {10, 0, 0, 1};
constexpr std::array<uint8_t, 16> kV6Sandbox = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
constexpr std::array<uint8_t, 16> kV6Destination = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                                    0,    0,    0,    0,    0, 0, 0, 7};

}  // namespace

TEST_CASE("a kernel's refusal names the destination the program tried") {
  // The reset that answers a SYN to a closed port: from the destination, sequence 0.
  auto refusal = parse_kernel_refusal(ipv4_packet(6, {93, 184, 216, 34}, kSandbox,
                                                  tcp_header(22, 0, kRstAck)));
  REQUIRE(refusal);
  CHECK(refusal->protocol == KernelRefusal::Protocol::tcp);
  CHECK_FALSE(refusal->ipv6);
  CHECK(refusal->address == "93.184.216.34");
  CHECK(refusal->port == 22);
  // A reset ending an established connection carries its sequence number: not a refusal.
  CHECK_FALSE(parse_kernel_refusal(ipv4_packet(6, {93, 184, 216, 34}, kSandbox,
                                               tcp_header(22, 12345, kRstAck))));
  CHECK_FALSE(parse_kernel_refusal(ipv4_packet(6, {93, 184, 216, 34}, kSandbox,
                                               tcp_header(22, 0, 0x12))));  // SYN+ACK
  // Port unreachable, quoting the datagram's IP header and UDP header.
  auto quoted = ipv4_packet(17, kSandbox, {10, 9, 9, 9}, {0x30, 0x39, 0x00, 0x7b, 0, 12, 0, 0});
  std::vector<uint8_t> icmp = {3, 3, 0, 0, 0, 0, 0, 0};
  icmp.insert(icmp.end(), quoted.begin(), quoted.end());
  refusal = parse_kernel_refusal(ipv4_packet(1, {10, 9, 9, 9}, kSandbox, icmp));
  REQUIRE(refusal);
  CHECK(refusal->protocol == KernelRefusal::Protocol::udp);
  CHECK(refusal->address == "10.9.9.9");
  CHECK(refusal->port == 123);
  icmp[1] = 1;  // host unreachable: not what the kernel says of a closed port
  CHECK_FALSE(parse_kernel_refusal(ipv4_packet(1, {10, 9, 9, 9}, kSandbox, icmp)));
  // IPv6: the reset, and ICMPv6 port unreachable quoting a UDP datagram.
  refusal = parse_kernel_refusal(ipv6_packet(6, kV6Destination, kV6Sandbox,
                                             tcp_header(443, 0, kRstAck)));
  REQUIRE(refusal);
  CHECK(refusal->ipv6);
  CHECK(refusal->address == "2001:db8::7");
  CHECK(refusal->port == 443);
  auto quoted6 = ipv6_packet(17, kV6Sandbox, kV6Destination, {0x30, 0x39, 0, 53, 0, 12, 0, 0});
  std::vector<uint8_t> icmp6 = {1, 4, 0, 0, 0, 0, 0, 0};
  icmp6.insert(icmp6.end(), quoted6.begin(), quoted6.end());
  refusal = parse_kernel_refusal(ipv6_packet(58, kV6Destination, kV6Sandbox, icmp6));
  REQUIRE(refusal);
  CHECK(refusal->protocol == KernelRefusal::Protocol::udp);
  CHECK(refusal->address == "2001:db8::7");
  CHECK(refusal->port == 53);
}

TEST_CASE("a refusal of a loopback destination is the sandbox's own, not egress") {
  CHECK_FALSE(parse_kernel_refusal(ipv4_packet(6, {127, 0, 0, 3}, {127, 0, 0, 1},
                                               tcp_header(8000, 0, kRstAck))));
  CHECK_FALSE(parse_kernel_refusal(ipv6_packet(6, kV6Sandbox, kV6Sandbox,
                                               tcp_header(8000, 0, kRstAck))));
}

TEST_CASE("refusal packets cut short, fragmented or random are ignored, never over-read") {
  const auto whole = ipv4_packet(6, {93, 184, 216, 34}, kSandbox, tcp_header(22, 0, kRstAck));
  for (size_t length = 0; length < whole.size(); ++length) {
    CHECK_FALSE(parse_kernel_refusal(std::span<const uint8_t>(whole.data(), length)));
  }
  auto fragment = whole;
  fragment[7] = 1;  // offset 8: a later piece, whose first bytes are not a TCP header
  CHECK_FALSE(parse_kernel_refusal(fragment));
  std::mt19937 random(16);
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> packet(random() % 200);
    for (auto& byte : packet) byte = static_cast<uint8_t>(random());
    if (!packet.empty()) packet[0] = static_cast<uint8_t>((random() % 2 ? 0x40 : 0x60) | (packet[0] & 0x0f));
    (void)parse_kernel_refusal(packet);  // under the sanitizers in CI: no read past the end
  }
}

}  // namespace airlock::egress

namespace airlock::egress {

TEST_CASE("a late DNS answer the sandbox's kernel bounces is no refusal") {
  // The gateway answered from 198.18.0.1:53 after the client had closed its socket.
  const std::vector<uint8_t> quoted = {0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0,
                                       198,  18, 0, 1, 198, 18, 0, 1, 0, 53, 0xb8, 0x63};
  std::vector<uint8_t> packet = {0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 1, 0, 0,
                                 198,  18, 0, 1, 198, 18, 0, 1, 3, 3, 0, 0, 0, 0, 0, 0};
  packet.insert(packet.end(), quoted.begin(), quoted.end());
  CHECK_FALSE(parse_kernel_refusal(packet));
  packet[packet.size() - 3] = 54;  // from another port: the program's own datagram
  CHECK(parse_kernel_refusal(packet));
}

}  // namespace airlock::egress
