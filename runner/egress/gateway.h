// The egress gateway (issue 16): one thread of the airlock process that serves the network of
// sandboxes under their policies' egress rules. A sandbox's network namespace holds only
// loopback, on which every IPv4 address is local; the sandbox layer creates listeners inside it
// (TCP on each port the rules name, UDP on 53) and hands them here. The gateway answers DNS with
// synthetic addresses, checks every connection (destination, port, TLS SNI, HTTP Host), injects
// the rules' credentials into plain HTTP, and copies bytes to upstreams it opens on the host.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policies/egress.h"
#include "sandbox/error.h"
#include "sandbox/unique_fd.h"

namespace airlock::egress {

struct GatewayConfig {
  // Names the gateway resolves itself instead of asking the host's resolver: name -> "address"
  // or "address:port" ("[v6]:port"). For pinned upstreams and for tests, whose upstreams listen
  // on 127.0.0.x at ports of their own: the port, when given, replaces the destination's.
  // Addresses from here may be loopback or private; the operator chose them.
  std::vector<std::pair<std::string, std::string>> hosts;
  // Secret name -> value, for the rules' injected headers. Values are never logged, never
  // reported and never written in a response of the gateway's own.
  std::map<std::string, std::string> secrets;
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds idle_timeout{300000};
  // Looks a name up, as values like hosts' ("address" or "address:port"), on a resolver thread.
  // The host's resolver (getaddrinfo) when empty; tests set one that takes its time.
  std::function<std::vector<std::string>(const std::string& name)> lookup;
};

// A GatewayConfig::hosts value: "address", "address:port", "[v6]" or "[v6]:port", the address a
// literal IPv4 or IPv6 one. Nothing when malformed (the config refuses such a value).
struct PinnedAddress {
  std::string address;
  std::optional<uint16_t> port;
};
std::optional<PinnedAddress> parse_pinned_address(std::string_view value);

// The sockets the sandbox layer made inside a sandbox's network namespace.
struct SandboxSockets {
  std::vector<std::pair<uint16_t, sandbox::UniqueFd>> tcp;  // port -> listener on 0.0.0.0 or [::]
  sandbox::UniqueFd dns;                                    // UDP bound to 0.0.0.0:53
  sandbox::UniqueFd refusals;  // the refusal watch (sandbox/gateway_sockets.h), when there is one
};

// One refusal, for the run's report: {"evil.test:443", "not in the policy's egress list"},
// {"8.8.8.8:443", "a raw address no rule allows"}, {"dns evil.test", ...}.
struct Blocked {
  std::string destination;
  std::string reason;
  bool operator==(const Blocked&) const = default;
};

struct Usage {
  uint32_t connections = 0;     // allowed connections (an upstream was, or was to be, opened)
  uint32_t refused = 0;         // refused connections, each one (DNS refusals are in blocked only)
  uint64_t bytes_sent = 0;      // sandbox -> upstream
  uint64_t bytes_received = 0;  // upstream -> sandbox
  uint32_t dns_queries = 0;     // well-formed queries answered
  uint64_t unlisted = 0;        // refusals the list's cap left out of Report::blocked
};

// What the gateway did for one sandbox. blocked holds each distinct refusal once (at most
// kMaxBlockedReported of them, DNS names at most half, then one "refusals not listed" entry
// counting the rest, and the limits' notices); usage counts every refused connection.
struct Report {
  std::vector<Blocked> blocked;
  Usage usage;
};

inline constexpr size_t kMaxBlockedReported = 1024;
// The entry that stands for `count` refusals the list's cap left out.
Blocked unlisted_refusals(uint64_t count);
// Connections of one attachment open at once; more are accepted and closed at once (refused), so
// one sandbox cannot hold the gateway's descriptors.
inline constexpr size_t kMaxOpenConnections = 256;

// One sandbox being served. Destroying it finishes it.
class Attachment {
 public:
  virtual ~Attachment();
  // Stops serving this sandbox: closes its listeners, its DNS socket and every connection, and
  // returns what happened. No on_blocked call starts after it returns. Thread-safe, idempotent
  // (later calls return the same report); not to be called from on_blocked.
  virtual Report finish() = 0;
  // The counts so far, from any thread but the gateway's; the refusals the sandbox's kernel made
  // until now are read (and reported through on_blocked) first.
  virtual Usage usage_so_far() = 0;
};

class Gateway {
 public:
  // Starts the gateway's I/O thread.
  static std::unique_ptr<Gateway> start(GatewayConfig config);
  // Finishes every attachment still served, then stops and joins the thread.
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Serves a sandbox's sockets under egress until the attachment is finished. on_blocked (may be
  // empty) runs on the gateway's thread as each distinct refusal happens, and must not block.
  // A setup error when a socket cannot be adopted (the sockets are closed then).
  sandbox::Expected<std::unique_ptr<Attachment>> attach(
      const policies::Egress& egress, SandboxSockets sockets,
      std::function<void(const Blocked&)> on_blocked);

  // Replaces hosts, secrets and timeouts for connections accepted from now on.
  void set_config(GatewayConfig config);

  // The I/O thread and what attachments share; defined in attachment_state.h, for the
  // gateway's own files only.
  struct Core;

 private:
  explicit Gateway(std::shared_ptr<Core> core);
  std::shared_ptr<Core> core_;
};

}  // namespace airlock::egress
