#include "api/transport/server.h"

#include <boost/asio.hpp>

#include <csignal>
#include <deque>
#include <future>
#include <optional>
#include <thread>

#include "api/transport/connection.h"

namespace airlock::api {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// After a failed accept (e.g. out of file descriptors), wait this long before the next try
// instead of spinning.
constexpr std::chrono::milliseconds kAcceptRetryDelay{100};
// A stop signal this soon after the first is the same request delivered twice.
constexpr std::chrono::seconds kRepeatedStopSignal{1};

struct Server::Impl {
  Impl(const Api& api, ExecutionService& executions, Metrics& metrics, Logger& log,
       ServerOptions options)
      : executions(executions),
        log(log),
        metrics(metrics),
        shared(std::make_shared<ConnectionShared>(api, executions, metrics, log, std::move(options),
                                                  handlers.get_executor(),
                                                  sandbox_traffic.get_executor())) {}

  void accept() {
    acceptor.async_accept(
        net::make_strand(ioc), [this](boost::system::error_code ec, tcp::socket socket) {
          if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
          if (ec) {
            log.warning("accept failed", {{"error", ec.message()}});
            // Out of descriptors: a waiting connection gives its up.
            if (ec == net::error::no_descriptors) shared->evict_oldest_waiting();
            retry_timer.expires_after(kAcceptRetryDelay);
            retry_timer.async_wait([this](boost::system::error_code wait_ec) {
              if (!wait_ec && acceptor.is_open()) accept();
            });
            return;
          }
          // At the limit, a connection with no request being handled
          // makes room; only when every one is busy is the new one refused.
          if (shared->connections.load() >= kMaxConnections && !shared->evict_oldest_waiting()) {
            metrics.rejected("too_many_connections");
            boost::system::error_code ignored;
            socket.close(ignored);
          } else {
            start_connection(std::move(socket), shared);
          }
          accept();
        });
  }

  // SIGHUP reloads; the first SIGTERM or SIGINT starts the drain, and a second one, a second or
  // more later, ends its grace period at once (an operator who pressed ^C twice wants the service
  // gone, not in shutdown_grace). Sooner, it is taken for the same one: ^C under sudo reaches
  // both sudo, which forwards it, and the service.
  void wait_for_signal() {
    signals.async_wait([this](boost::system::error_code ec, int signal_number) {
      if (ec) return;
      enum { queued, ignored, repeated, ends_grace } verdict = queued;
      const auto now = std::chrono::steady_clock::now();
      {
        std::lock_guard lock(mutex);
        if (!stopped_at) {
          if (signal_number != SIGHUP) stopped_at = now;
          received.push_back(signal_number);
        } else if (signal_number == SIGHUP) {
          verdict = ignored;
        } else {
          verdict = now - *stopped_at < kRepeatedStopSignal ? repeated : ends_grace;
        }
      }
      if (verdict == queued) signalled.notify_one();
      if (verdict == ignored) log.info("SIGHUP ignored: the service is stopping");
      if (verdict == repeated) log.info("stop signal repeated within a second: taken as the first");
      if (verdict == ends_grace) {
        log.warning("second stop signal: the grace period ends now");
        executions.end_grace();
      }
      wait_for_signal();
    });
  }

  ExecutionService& executions;
  Logger& log;
  Metrics& metrics;
  net::io_context ioc{static_cast<int>(kIoThreads)};
  // The acceptor's handlers and its closing at the end of a drain run one at a time.
  net::strand<net::io_context::executor_type> accept_strand = net::make_strand(ioc);
  tcp::acceptor acceptor{accept_strand};
  net::steady_timer retry_timer{accept_strand};
  net::signal_set signals{ioc, SIGTERM, SIGINT, SIGHUP};
  net::thread_pool handlers{kHandlerThreads};
  net::thread_pool sandbox_traffic{kSandboxTrafficThreads};
  std::shared_ptr<ConnectionShared> shared;

  std::mutex mutex;
  std::condition_variable signalled;
  std::deque<int> received;
  std::optional<std::chrono::steady_clock::time_point> stopped_at;  // the first SIGTERM or SIGINT
};

Server::Server(const Api& api, ExecutionService& executions, Metrics& metrics, Logger& log,
               ServerOptions options)
    : impl_(std::make_unique<Impl>(api, executions, metrics, log, std::move(options))) {}

Server::~Server() = default;

bool Server::listen() {
  const ServerOptions& options = impl_->shared->options;
  boost::system::error_code ec;
  auto address = net::ip::make_address(options.address, ec);
  if (ec) {
    impl_->log.error("invalid listen address", {{"address", options.address}});
    return false;
  }
  tcp::endpoint endpoint(address, options.port);
  auto& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    impl_->log.error("cannot listen", {{"address", options.address},
                                       {"port", static_cast<uint64_t>(options.port)},
                                       {"error", ec.message()}});
    return false;
  }
  auto bound = acceptor.local_endpoint(ec);
  impl_->log.info("listening", {{"address", bound.address().to_string()},
                                {"port", static_cast<uint64_t>(bound.port())}});
  return true;
}

void Server::run(const std::function<void()>& on_reload, const std::function<void()>& on_drain) {
  Impl& impl = *impl_;
  // Keeps the I/O threads alive when nothing is pending, until shutdown has sent every result.
  auto work = net::make_work_guard(impl.ioc);
  impl.accept();
  impl.wait_for_signal();
  std::vector<std::thread> threads;
  for (size_t i = 0; i < kIoThreads; ++i) threads.emplace_back([&impl] { impl.ioc.run(); });

  // A reload reads files and may be slow; it runs on a thread of its own so that this loop still
  // hears SIGTERM. A SIGHUP during a reload makes one more reload after it, not a second one
  // beside.
  std::thread reloader;
  bool reloading = false;  // both guarded by impl.mutex
  bool reload_again = false;
  auto reload_loop = [&impl, &on_reload, &reloading, &reload_again] {
    for (;;) {
      try {
        on_reload();
      } catch (const std::exception& e) {
        impl.log.error("policy reload failed; what was in force stays", {{"error", e.what()}});
      } catch (...) {
        impl.log.error("policy reload failed; what was in force stays", {});
      }
      std::lock_guard lock(impl.mutex);
      if (!reload_again) {
        reloading = false;
        return;
      }
      reload_again = false;
    }
  };
  for (;;) {
    std::unique_lock lock(impl.mutex);
    impl.signalled.wait(lock, [&impl] { return !impl.received.empty(); });
    int signal_number = impl.received.front();
    impl.received.pop_front();
    if (signal_number == SIGHUP) {
      if (reloading) {
        reload_again = true;
        lock.unlock();
        impl.log.info("SIGHUP: a reload is running; another follows it");
        continue;
      }
      reloading = true;
      lock.unlock();
      impl.log.info("SIGHUP: reloading policies");
      if (reloader.joinable()) reloader.join();  // finished: `reloading` was false
      reloader = std::thread(reload_loop);
      continue;
    }
    // No reload starts after this one; one running goes on beside the drain, and is waited for
    // at the end: what it uses (registry, warm pool, audit log) outlives run().
    reload_again = false;
    break;
  }

  // The drain: connections are still accepted, so a balancer sees /readyz fail and clients get
  // clear answers (shutting_down, session_lost) instead of refused connections.
  const auto grace = impl.shared->options.shutdown_grace;
  impl.log.info("shutting down: draining; no new work; running executions may finish",
                {{"grace_ms", static_cast<int64_t>(grace.count())},
                 {"running", static_cast<uint64_t>(impl.executions.in_flight())},
                 {"queued", static_cast<uint64_t>(impl.executions.queued())}});
  impl.executions.stop_accepting();  // /readyz fails and new work is refused from here
  if (on_drain) on_drain();
  impl.executions.shutdown(grace);
  std::promise<void> closed;
  net::post(impl.accept_strand, [&impl, &closed] {
    boost::system::error_code ignored;
    impl.acceptor.close(ignored);
    impl.retry_timer.cancel();
    closed.set_value();
  });
  closed.get_future().wait();
  if (!impl.shared->wait_idle(kShutdownFlushTimeout)) {
    impl.log.warning("some responses were not sent before the flush timeout");
  }
  work.reset();
  impl.ioc.stop();
  for (auto& thread : threads) thread.join();
  // Requests still waiting for a handler are dropped with their connections.
  impl.handlers.stop();
  impl.sandbox_traffic.stop();
  impl.handlers.join();
  impl.sandbox_traffic.join();
  if (reloader.joinable()) reloader.join();
  impl.log.info("stopped");
}

}  // namespace airlock::api
