// One HTTP connection of the execution API (internal to the transport; includes Beast). A
// connection reads requests, hands them to the pure Api, and writes what comes back: a response, or
// a run's result or event stream as the execution service produces it on a worker thread.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>

#include "api/execution_service.h"
#include "api/handler.h"
#include "api/log.h"
#include "api/memory_budget.h"
#include "api/metrics.h"
#include "api/transport/server.h"

namespace airlock::api {

// A connection that has no request being handled: waiting for one, or for the rest of one.
// Evicted, one that is reading a request's body answers 503 with Retry-After; others just close.
class WaitingConnection {
 public:
  virtual ~WaitingConnection() = default;
  // Closes the connection (on its own strand) if it is still waiting; any thread.
  virtual void evict() = 0;
};

// What all connections share with the server.
struct ConnectionShared {
  ConnectionShared(const Api& api, ExecutionService& executions, Metrics& metrics, Logger& log,
                   ServerOptions options, boost::asio::thread_pool::executor_type blocking,
                   boost::asio::thread_pool::executor_type sandbox_traffic)
      : api(api),
        executions(executions),
        metrics(metrics),
        log(log),
        options(std::move(options)),
        body_budget(this->options.body_budget_bytes),
        blocking(std::move(blocking)),
        sandbox_traffic(std::move(sandbox_traffic)) {}

  const Api& api;
  ExecutionService& executions;
  Metrics& metrics;
  Logger& log;
  const ServerOptions options;
  std::atomic<size_t> connections{0};
  // Request bodies being read or handled count against this; past it, 503 with Retry-After.
  MemoryBudget body_budget;
  // Where requests are handled: anything that may block (files, sandboxes, cgroup reads, parsing
  // a large body) stays off the I/O threads. At most kMaxHandledRequests wait or run there.
  boost::asio::thread_pool::executor_type blocking;
  // The same for requests that wait on a sandbox's agent (Api::waits_on_sandbox), apart.
  boost::asio::thread_pool::executor_type sandbox_traffic;
  std::atomic<size_t> handled_requests{0};

  // Connections without a request being handled, oldest first. At the connection limit the
  // oldest is closed to make room, so idle or trickling connections cannot lock clients out.
  struct Waiting {
    std::weak_ptr<WaitingConnection> connection;
    bool evicted = false;         // asked to close; not asked again
    bool receiving_body = false;  // evicted only when no other is left: it answers 503
  };
  using WaitingList = std::list<Waiting>;
  WaitingList::iterator add_waiting(std::weak_ptr<WaitingConnection> connection);
  void remove_waiting(WaitingList::iterator position);
  // The connection at `position` has begun to read a request's body.
  void mark_receiving_body(WaitingList::iterator position);
  // Evicts the oldest waiting connection, one that is not reading a body if there is any; false
  // when there is none.
  bool evict_oldest_waiting();

  // Requests being answered: shutdown waits for these to be sent.
  void acquire_busy();
  void release_busy();
  // Waits until no request is being answered, or the timeout passes; true when none is.
  bool wait_idle(std::chrono::milliseconds timeout);

 private:
  std::mutex waiting_mutex_;
  WaitingList waiting_;
  std::mutex busy_mutex_;
  std::condition_variable busy_done_;
  size_t busy_ = 0;
};

// Starts serving an accepted connection; the connection keeps itself alive while it has work.
void start_connection(boost::asio::ip::tcp::socket socket,
                      std::shared_ptr<ConnectionShared> shared);

}  // namespace airlock::api
