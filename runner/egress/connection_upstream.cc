// The upstream half of a connection: where an allowed destination leads (a pinned address, the
// host's resolver, or the address itself), whether the policy lets it reach that address, and the
// connect. Kept apart from connection.cc, which reads, copies and closes.
#include "runner/egress/connection.h"

#include <netdb.h>

#include <cstring>

#include "runner/egress/http_head.h"
#include "runner/egress/rules.h"

namespace airlock::egress {

namespace {

policies::Cidr to_cidr(const net::ip::address& address) {
  policies::Cidr cidr;
  if (address.is_v4()) {
    const auto bytes = address.to_v4().to_bytes();
    std::copy(bytes.begin(), bytes.end(), cidr.address.begin());
    cidr.prefix_length = 32;
  } else {
    const auto bytes = address.to_v6().to_bytes();
    std::copy(bytes.begin(), bytes.end(), cidr.address.begin());
    cidr.v6 = true;
    cidr.prefix_length = 128;
  }
  return cidr;
}

// A GatewayConfig::hosts value as the endpoint to connect to; its port, when given, replaces
// the destination's.
std::optional<tcp::endpoint> pinned_endpoint(const std::string& value, uint16_t port) {
  const std::optional<PinnedAddress> pinned = parse_pinned_address(value);
  if (!pinned) return std::nullopt;
  ErrorCode ec;
  const auto address = net::ip::make_address(pinned->address, ec);
  if (ec) return std::nullopt;
  return tcp::endpoint(address, pinned->port.value_or(port));
}

// The host's resolver, blocking: run on the resolver threads only. Nothing when the name does
// not resolve.
std::vector<tcp::endpoint> lookup(const GatewayConfig& config, const std::string& host,
                                  uint16_t port) {
  if (config.lookup) {
    std::vector<tcp::endpoint> endpoints;
    for (const std::string& value : config.lookup(host)) {
      if (const auto endpoint = pinned_endpoint(value, port)) endpoints.push_back(*endpoint);
    }
    return endpoints;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* results = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &results) != 0) return {};
  std::vector<tcp::endpoint> endpoints;
  for (const addrinfo* entry = results; entry; entry = entry->ai_next) {
    if (entry->ai_family != AF_INET && entry->ai_family != AF_INET6) continue;
    tcp::endpoint endpoint;
    if (entry->ai_addrlen > endpoint.capacity()) continue;
    std::memcpy(endpoint.data(), entry->ai_addr, entry->ai_addrlen);
    endpoint.resize(entry->ai_addrlen);
    endpoints.push_back(endpoint);
  }
  ::freeaddrinfo(results);
  return endpoints;
}

}  // namespace

void Connection::resolve() {
  phase_ = Phase::connecting;
  // Resolving and connecting together get connect_timeout (connect() re-arms it for its part).
  arm(config_->connect_timeout, [this] { fail("timed out resolving " + host_); });
  for (const auto& [name, value] : config_->hosts) {
    if (!iequals(name, host_)) continue;
    if (const auto endpoint = pinned_endpoint(value, port_)) {
      connect({*endpoint});
    } else {
      fail("the pinned address of " + host_ + " is malformed");
    }
    return;
  }
  if (raw_address_) {
    const net::ip::address address = net::ip::make_address(host_);
    const policies::Cidr cidr = to_cidr(address);
    if (const auto kind =
            upstream_refusal(owner_->egress(), cidr, port_, owner_->is_host_address(cidr))) {
      refuse(address_of_kind(*kind) + (*kind == kHostLocal
                                           ? ": only a rule naming it exactly, with this port, may"
                                           : ": only a rule within its range may name it"),
             403);
      return;
    }
    connect({tcp::endpoint(address, port_)});
    return;
  }
  // On the gateway's resolver threads, a few at a time per attachment: getaddrinfo blocks, and
  // one sandbox's slow names must not hold up another's.
  owner_->resolve_later([self = shared_from_this()] {
    if (self->closed_) {
      net::post(self->owner_->io(), [self] { self->owner_->resolution_done(); });
      return;
    }
    net::post(self->owner_->resolver_threads(),
              [self, host = self->host_, port = self->port_, config = self->config_]() mutable {
                std::vector<tcp::endpoint> found = lookup(*config, host, port);
                // self moves on: the last reference must never be dropped on this thread, where
                // the connection's destructor would touch the I/O thread's state.
                auto& io = self->owner_->io();
                net::post(io, [self = std::move(self), found = std::move(found)] {
                  self->owner_->resolution_done();
                  if (!self->closed_) self->on_resolved(found);
                });
              });
  });
}

void Connection::on_resolved(const std::vector<tcp::endpoint>& found) {
  std::vector<tcp::endpoint> endpoints;
  std::string refused;
  for (const tcp::endpoint& endpoint : found) {
    const policies::Cidr address = to_cidr(endpoint.address());
    if (const auto kind =
            upstream_refusal(owner_->egress(), address, port_, owner_->is_host_address(address))) {
      refused = address_of_kind(*kind);  // which one is the host's business, not the sandbox's
      continue;
    }
    endpoints.push_back(endpoint);
  }
  if (endpoints.empty()) {
    if (refused.empty()) {
      fail("cannot resolve " + host_);
    } else {
      refuse("resolves to " + refused, 403);
    }
    return;
  }
  connect(std::move(endpoints));
}

void Connection::connect(std::vector<tcp::endpoint> endpoints) {
  if (!owner_->admit(destination())) {
    // Refused and reported by admit already.
    if (http_) {
      respond_and_close(gateway_response(
          403, http_status_phrase(403),
          "airlock egress: " + destination() + " is blocked: the run's connection limit"));
    } else {
      close();
    }
    return;
  }
  arm(config_->connect_timeout, [this] {
    connect_timed_out_ = true;
    ErrorCode ignored;
    upstream_.close(ignored);
  });
  net::async_connect(upstream_, endpoints,
                     [self = shared_from_this()](ErrorCode ec, const tcp::endpoint&) {
                       if (self->closed_) return;
                       if (ec || self->connect_timed_out_) {
                         self->fail("cannot connect to " + self->destination());
                         return;
                       }
                       self->connected_ = true;
                       if (!self->read_pending_) self->after_connect();
                     });
}

}  // namespace airlock::egress
