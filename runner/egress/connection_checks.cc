#include "runner/egress/connection.h"

#include "runner/egress/http_head.h"
#include "runner/egress/rules.h"
#include "runner/egress/tls.h"

// The checks half of a connection: where it goes (a synthetic address's name, a raw address, or
// what the explicit proxy is asked for), and what its first bytes say about it.

namespace airlock::egress {

namespace {

constexpr uint16_t kHttpPort = 80;

std::optional<policies::Cidr> address_literal(const std::string& host) {
  if (host.find('/') != std::string::npos) return std::nullopt;
  return policies::Cidr::parse(host);
}

}  // namespace

// Sets host_ and port_ and checks them against the rules; a synthetic address stands for the
// name DNS gave it to. False (after refusing) when no rule allows the destination.
bool Connection::set_destination(const std::string& host, uint16_t port) {
  host_ = host;
  port_ = port;
  raw_address_ = address_literal(host);
  if (raw_address_ && !raw_address_->v6) {
    const Ipv4 address{raw_address_->address[0], raw_address_->address[1], raw_address_->address[2],
                       raw_address_->address[3]};
    if (in_synthetic_range(address)) {
      auto name = owner_->synthetic_name(address);
      if (!name) {
        refuse("a synthetic address this run's DNS did not give", 403);
        return false;
      }
      host_ = *name;
      raw_address_.reset();
    }
  }
  if (!raw_address_ && !is_hostname(host_)) {
    host_ = printable(host_);
    refuse("not a valid host name", 400);
    return false;
  }
  const Verdict verdict = raw_address_ ? check_address(owner_->egress(), *raw_address_, port_)
                                       : check_name(owner_->egress(), host_, port_);
  if (!verdict.allowed()) {
    refuse(verdict.reason, 403);
    return false;
  }
  if (!raw_address_) host_ = normalize_name(host_);
  rule_ = verdict.rule;
  return true;
}

void Connection::on_proxy_request() {
  const size_t size = request_head_size(head_, head_searched_);
  if (size == 0) head_searched_ = head_.size();
  if (size == 0) {
    if (head_.size() >= kMaxRequestHeadBytes || classify_stream(head_) == StreamKind::opaque) {
      refuse("the gateway's own address takes only proxy requests", 400);
      return;
    }
    read_client();
    return;
  }
  const auto head = parse_request_head(std::string_view(head_).substr(0, size));
  if (!head || size > kMaxRequestHeadBytes) {
    refuse("a malformed proxy request", 400);
    return;
  }
  if (head->method == "CONNECT") {
    const auto authority = parse_authority(head->target);
    if (!authority || !authority->port) {
      refuse("a CONNECT target without host:port", 400);
      return;
    }
    head_.erase(0, size);  // what follows is the tunnel's
    head_searched_ = 0;
    if (!set_destination(authority->host, *authority->port)) return;
    http_ = false;
    response_ = "HTTP/1.1 200 Connection Established\r\n\r\n";
    net::async_write(client_, net::buffer(response_),
                     [self = shared_from_this()](ErrorCode ec, size_t) {
                       if (self->closed_) return;
                       if (ec) {
                         self->close();
                         return;
                       }
                       self->start_sniffing();
                     });
    return;
  }
  const auto absolute = parse_absolute_target(head->target);
  if (!absolute) {
    refuse("the gateway's own address takes only CONNECT and absolute-form requests", 400);
    return;
  }
  if (set_destination(absolute->authority.host, absolute->authority.port.value_or(kHttpPort))) {
    start_sniffing();  // the head is there already: checked and rewritten like a direct one
  }
}

void Connection::start_sniffing() {
  phase_ = Phase::sniffing;
  head_deadline_ = Clock::now() + kHeadTimeout;
  if (!head_.empty()) {
    on_sniffed();
    return;
  }
  arm(kFirstBytesWait, [this] {
    // Nothing yet: maybe a protocol in which the server speaks first, so the upstream is opened
    // now. The client's first bytes are still checked if they come before the server's: waiting
    // must not be a way around the SNI and Host checks.
    sniff_after_connect_ = true;
    ErrorCode ignored;
    client_.cancel(ignored);
    resolve();
  });
  read_client();
}

void Connection::on_sniffed() {
  if (starts_like_tls(head_)) {
    check_tls();
    return;
  }
  switch (classify_stream(head_)) {
    case StreamKind::opaque:
      checks_passed();
      return;
    case StreamKind::http:
      check_http();
      return;
    case StreamKind::need_more:
      arm(head_deadline_ - Clock::now(), [this] { close(); });
      read_client();
      return;
  }
}

void Connection::check_tls() {
  const ClientHelloScan scan = scan_client_hello(head_);
  if (scan.status == ClientHelloScan::Status::need_more) {
    arm(head_deadline_ - Clock::now(), [this] { close(); });
    read_client();
    return;
  }
  if (scan.status == ClientHelloScan::Status::malformed) {
    refuse("a malformed TLS ClientHello", 400);
    return;
  }
  if (!raw_address_) {  // a CIDR rule allows an address, whatever name the client says
    if (!scan.server_name) {
      refuse("TLS without SNI", 403);
      return;
    }
    if (normalize_name(*scan.server_name) != host_) {
      refuse("TLS SNI " + printable(*scan.server_name) + " does not match " + host_, 403);
      return;
    }
  }
  checks_passed();
}

void Connection::check_http() {
  http_ = true;
  const size_t size = request_head_size(head_, head_searched_);
  if (size == 0) head_searched_ = head_.size();
  if (size == 0 && head_.size() < kMaxRequestHeadBytes) {
    arm(head_deadline_ - Clock::now(), [this] { close(); });
    read_client();
    return;
  }
  if (size == 0 || size > kMaxRequestHeadBytes) {
    refuse("an HTTP request head over 64 KiB", 431);
    return;
  }
  const auto head = parse_request_head(std::string_view(head_).substr(0, size));
  if (!head) {
    refuse("a malformed HTTP request", 400);
    return;
  }
  bool multiple_hosts = false;
  const auto host_header = head->header("host", &multiple_hosts);
  if (multiple_hosts) {
    refuse("an HTTP request with more than one Host header", 400);
    return;
  }
  // Host names the destination unless the target is absolute-form, which names it instead.
  std::vector<std::optional<Authority>> claims;
  std::string origin_target = head->target;
  std::optional<std::string> host_override;
  if (const auto absolute = parse_absolute_target(head->target)) {
    claims.emplace_back(absolute->authority);
    origin_target = absolute->origin_form;
    host_override = head->target.substr(7, head->target.find_first_of("/?#", 7) - 7);
  } else if (head->target[0] != '/' && head->target != "*") {
    refuse("an HTTP request target that is neither origin- nor absolute-form", 400);
    return;
  }
  if (host_header) claims.push_back(parse_authority(*host_header));
  if (!raw_address_) {
    if (claims.empty()) {
      refuse("an HTTP request without a Host header", 403);
      return;
    }
    for (const auto& claim : claims) {
      if (!claim || claim->host != host_ || (claim->port && *claim->port != port_)) {
        const std::string said = host_header ? printable(*host_header) : "(none)";
        refuse("HTTP Host " + said + " does not match " + host_, 403);
        return;
      }
    }
  }
  const auto body_length = request_body_length(*head);
  if (!body_length) {
    refuse("an HTTP request whose body length is ambiguous", 400);
    return;
  }
  // TRACE sends the request back as the upstream received it, injected secret included.
  if (!rule_->headers.empty() && (iequals(head->method, "TRACE") || iequals(head->method, "TRACK"))) {
    refuse("HTTP " + head->method + " to a host whose requests carry a secret", 403);
    return;
  }
  std::vector<std::pair<std::string, std::string>> injected;
  for (const policies::InjectedHeader& header : rule_->headers) {
    const auto secret = config_->secrets.find(header.secret);
    if (secret == config_->secrets.end()) {
      // Named, never shown: the value is the service's, and it is missing anyway.
      owner_->refuse(destination(), "the secret " + header.secret + " is not configured");
      respond_and_close(gateway_response(502, http_status_phrase(502),
                                         "airlock egress: " + destination() + " needs the secret " +
                                             header.secret + ", which is not configured"));
      return;
    }
    injected.emplace_back(header.name, secret->second);
  }
  // One request per connection: what the client sends after this request's body is dropped, so
  // that a second request cannot reach the upstream unchecked. A chunked body is forwarded as
  // it comes (the upstream, told Connection: close, reads no request after it).
  std::string rest = head_.substr(size);
  if (*body_length) {
    if (rest.size() > **body_length) rest.resize(**body_length);
    request_body_left_ = **body_length - rest.size();
  }
  head_ = rewrite_request_head(*head, origin_target, host_override, injected) + rest;
  checks_passed();
}

void Connection::checks_passed() {
  if (phase_ == Phase::late_sniffing) {
    start_copying();
  } else {
    resolve();
  }
}

}  // namespace airlock::egress
