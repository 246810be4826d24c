// The HTTP/1.1 transport of the execution API on Boost.Beast: it accepts connections and moves
// bytes between sockets and the pure Api; shutdown and reload come through a signal set.
// Beast stays out of this header so that only the transport's own files pay for it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "api/execution_service.h"
#include "api/handler.h"
#include "api/log.h"
#include "api/metrics.h"
#include "policies/egress.h"

namespace airlock::api {

// Limits of the transport that are not settings: fixed, named, and documented in docs/api.md.
inline constexpr size_t kMaxHeaderBytes = 16 * 1024;
inline constexpr size_t kMaxConnections = 1024;
inline constexpr size_t kIoThreads = 2;
// A stream keeps at most this much unsent output for a slow reader; beyond it, output events are
// dropped (and counted in the exit event), because the result holds what was kept anyway.
inline constexpr size_t kMaxPendingStreamBytes = 4 * 1024 * 1024;
// A client that takes longer than this to take one write is gone.
inline constexpr std::chrono::seconds kWriteTimeout{30};
// After shutdown, how long connections may take to send the last results before the loop stops.
inline constexpr std::chrono::seconds kShutdownFlushTimeout{5};
// Bytes a connection may pipeline while its execution runs, before the server stops reading it.
inline constexpr size_t kMaxPipelinedBytes = 64 * 1024;
// Threads that handle requests off the I/O threads, and how many requests may wait for them or
// run on them at once before more are answered 503.
inline constexpr size_t kHandlerThreads = 8;
inline constexpr size_t kMaxHandledRequests = 512;
// Threads of their own for the requests that wait on a sandbox's agent (Api::waits_on_sandbox:
// E2B's sandbox traffic), so that agents that do not answer hold none of the threads that answer
// the REST API, MCP and E2B's control plane.
inline constexpr size_t kSandboxTrafficThreads = 8;

struct ServerOptions {
  std::string address;
  uint16_t port = 0;
  uint64_t max_body_bytes = 0;
  std::chrono::milliseconds header_timeout{0};
  std::chrono::milliseconds idle_timeout{0};
  std::chrono::milliseconds heartbeat_interval{0};
  std::chrono::milliseconds shutdown_grace{0};
  // What the bodies of requests being read or handled may hold in all.
  uint64_t body_budget_bytes = 256ULL * 1024 * 1024;
  // Peers whose X-Forwarded-For names the client for logs and the audit log (forwarded.h).
  std::vector<policies::Cidr> trusted_proxies;
};

class Server {
 public:
  Server(const Api& api, ExecutionService& executions, Metrics& metrics, Logger& log,
         ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens; logs "listening" with the bound port (the one chosen when port is 0).
  // Returns false, after logging why, when the address cannot be bound.
  bool listen();

  // Serves until SIGTERM or SIGINT, calling on_reload for each SIGHUP (on this thread, not an I/O
  // thread). Then drains: calls on_drain, takes no new executions (503 shutting_down; /readyz
  // not ready) but still accepts connections, lets running executions finish within the grace
  // period (cancelling them after it); then stops accepting, sends their results, and returns.
  void run(const std::function<void()>& on_reload, const std::function<void()>& on_drain = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace airlock::api
