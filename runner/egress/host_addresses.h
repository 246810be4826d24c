// This host's own addresses, which the gateway does not connect to for a sandbox unless a rule
// names the address exactly: they reach the host's own services (airlock's API among them), which
// a broad rule such as 0.0.0.0/0 or 2000::/3 was never meant to open.
#pragma once

#include "policies/egress.h"

namespace airlock::egress {

// Whether address is on one of this host's interfaces (in the gateway's network namespace). Read
// with getifaddrs at most once every two seconds; any thread.
bool is_host_address(const policies::Cidr& address);

}  // namespace airlock::egress
