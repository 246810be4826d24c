// Who sent a request when it came through a proxy: a balancer (deploy/balancer/) connects to each
// replica itself, so the connection's peer is the balancer's address and the client's is in the
// X-Forwarded-For it adds. That header is the sender's word, so it is believed only when the peer
// is a proxy the operator listed (the config's trusted_proxies), and only for the hops such
// proxies added.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "policies/egress.h"

namespace airlock::api {

// The client for logs and the audit log: `peer` ("address:port" of the connection) when it is not
// a trusted proxy or the request has no usable X-Forwarded-For; else the address the chain names
// just before the trusted hops, as "203.0.113.5 (via 10.0.0.7:51234)". A malformed entry ends the
// walk at the hop before it (nothing a client wrote is shown as the client unless a trusted proxy
// vouched for it). All X-Forwarded-For headers count, in order, as one list.
std::string forwarded_client(const std::string& peer,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             const std::vector<policies::Cidr>& trusted_proxies);

}  // namespace airlock::api
