// The connection's class, shared by the files that define it (internal to api/transport/):
// connection.cc reads requests and sends responses, connection_stream.cc carries an execution's
// events to the client (the result, or the event stream with its outbox and heartbeat), and
// connection_byte_stream.cc carries a StreamingResponse's body as its producer writes it.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "api/rest/responses.h"
#include "api/transport/budgeted_body.h"
#include "api/transport/connection.h"
#include "api/transport/forwarded.h"

namespace airlock::api {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr size_t kReadChunkBytes = 4096;
// After a response that ends the connection, unread request bytes are drained (so the client sees
// the response instead of a reset) for at most this long and this much.
constexpr std::chrono::seconds kDrainTimeout{2};
constexpr size_t kMaxDrainBytes = 8 * 1024 * 1024;
// What a connection holds of input not yet parsed: a header, a chunk's size line with its
// extensions, a trailer section, or what a client pipelines while its execution runs. Beast
// limits only the header itself, so without this a chunk extension could grow without end.
constexpr size_t kMaxUnparsedBytes = kMaxHeaderBytes + kMaxPipelinedBytes;
static_assert(kMaxUnparsedBytes >= kMaxPipelinedBytes + kReadChunkBytes);

class Connection;

// The producer's side of a StreamingResponse: carries its bytes onto the connection's strand from
// any thread; never keeps a connection alive. Counts what is written and not yet sent, and cuts
// the stream when that passes kMaxPendingStreamBytes.
class ConnectionByteWriter final : public ByteStreamWriter {
 public:
  ConnectionByteWriter(std::weak_ptr<Connection> connection, net::any_io_executor executor)
      : connection_(std::move(connection)), executor_(std::move(executor)) {}
  bool write(std::string bytes) override;
  void end() override;
  bool closed() const override { return closed_; }
  size_t pending_bytes() const override { return pending_bytes_; }
  void when_pending_at_most(size_t bytes, std::function<void()> callback) override;

  // On the strand: the connection is done with the stream (the client went away, or it ended).
  void mark_closed() { close(); }
  // On the strand: `bytes` of what was written reached the socket.
  void sent(size_t bytes);

 private:
  struct Waiter {
    size_t at_most;
    std::function<void()> callback;
  };
  // Refuses writes from now on and calls every waiter; false when it was closed already.
  bool close();

  std::weak_ptr<Connection> connection_;
  net::any_io_executor executor_;
  std::atomic<bool> closed_{false};
  std::atomic<size_t> pending_bytes_{0};
  // Held while a waiter is added or taken, so that one added as the stream drains or closes is
  // either seen by that drain or close, or sees it; never while a waiter is called.
  std::mutex waiters_mutex_;
  std::vector<Waiter> waiters_;
};

// 503 with Retry-After: a limit of the service itself, not of the request, was reached.
inline HttpResponse busy(std::string message) {
  HttpResponse response = error(503, "busy", std::move(message), WireFormat::json);
  response.headers.emplace_back("Retry-After", "1");
  return response;
}

// The method, target, headers and client of a request, without its body: the connection's peer,
// or the client a trusted proxy names (forwarded.h).
template <class Body>
HttpRequest request_head(const http::request<Body>& message, const std::string& peer,
                         const std::vector<policies::Cidr>& trusted_proxies) {
  HttpRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  for (const auto& field : message) {
    request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  request.peer = forwarded_client(peer, request.headers, trusted_proxies);
  return request;
}

// Carries events from a worker thread onto the connection's strand; never keeps a connection alive.
class ConnectionObserver final : public ExecutionObserver {
 public:
  ConnectionObserver(std::weak_ptr<Connection> connection, net::any_io_executor executor,
                     bool streaming)
      : connection_(std::move(connection)), executor_(std::move(executor)), streaming_(streaming) {}
  void on_event(const v1::Event& event) override;

 private:
  std::weak_ptr<Connection> connection_;
  net::any_io_executor executor_;
  // A client waiting for the plain result needs only the final event: the others (a file event
  // may hold megabytes) are not copied onto its strand at all.
  const bool streaming_;
};

class Connection : public WaitingConnection, public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket&& socket, std::shared_ptr<ConnectionShared> shared)
      : stream_(std::move(socket)),
        shared_(std::move(shared)),
        request_deadline_(stream_.get_executor()),
        heartbeat_(stream_.get_executor()) {
    beast::error_code ec;
    auto endpoint = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    ++shared_->connections;
  }

  ~Connection() override {
    set_waiting(false);
    cancel_execution();
    cancel_byte_stream();
    set_busy(false);
    --shared_->connections;
  }

  void start() {
    net::dispatch(stream_.get_executor(),
                  [self = shared_from_this()] { self->wait_for_request(); });
  }

  // On the strand: one event of this connection's execution.
  void on_event(const v1::Event& event);
  // On the strand: bytes of the StreamingResponse being sent; its end (cut: the client fell
  // too far behind).
  // `from` is the writer, so that a stale writer's bytes never reach a later stream.
  void on_stream_bytes(const ConnectionByteWriter* from, std::string bytes);
  void on_stream_end(const ConnectionByteWriter* from, bool cut);

  void evict() override {
    net::post(stream_.get_executor(), [weak = weak_from_this()] {
      auto self = weak.lock();
      if (!self || !self->waiting_ || self->closed_) return;
      self->shared_->metrics.rejected("evicted_waiting_connection");
      if (self->receiving_body_) {
        // The client is sending a body: it hears why the request ends (503 with Retry-After)
        // once the read, cancelled here, returns to on_request.
        self->evicted_ = true;
        beast::error_code ec;
        self->stream_.socket().cancel(ec);
        return;
      }
      self->close();
    });
  }

 private:
  enum class Item { header, chunk, last_chunk };
  struct Outgoing {
    Item item;
    std::string data;
    bool from_writer = false;  // counted by byte_writer_ until sent
  };

  void wait_for_request();
  void read_header();
  void on_header(beast::error_code ec);
  void read_body();
  void on_request(beast::error_code ec);
  // A request's header or body must arrive within `timeout`; past it the read is cancelled and
  // the client hears 408 (Beast's own stream timeout would close the socket before an answer).
  void arm_request_deadline(std::chrono::milliseconds timeout);
  void disarm_request_deadline();
  void handle(HttpRequest request);
  // Where the request being handled runs: the sandbox traffic's threads or the others.
  boost::asio::thread_pool::executor_type handler_threads() const {
    return on_sandbox_threads_ ? shared_->sandbox_traffic : shared_->blocking;
  }
  void on_dispatch(Dispatch dispatch);
  void send(HttpResponse response);
  void reply_and_close(int status, std::string code, std::string message);
  void reply_and_close(const HttpResponse& response);
  void start_execution(PendingExecution pending);
  void start_byte_stream(StreamingResponse response);
  void cancel_byte_stream();
  void enqueue(Item item, std::string data, bool from_writer = false);
  void write_next();
  void schedule_heartbeat();
  void watch_disconnect();
  void exchange_done();
  void next_request();
  void cancel_execution();
  void linger_close();
  void drain_some();
  void close();
  void set_busy(bool busy);
  void set_waiting(bool waiting);

  beast::tcp_stream stream_;
  std::shared_ptr<ConnectionShared> shared_;
  beast::flat_buffer buffer_{kMaxUnparsedBytes};
  std::optional<http::request_parser<BudgetedBody>> parser_;
  std::string peer_;
  bool keep_alive_ = true;
  bool busy_ = false;
  bool waiting_ = false;
  bool receiving_body_ = false;  // its header was admitted; its body is being read
  bool evicted_ = false;         // the body's read was cancelled to make room: answer 503
  net::steady_timer request_deadline_;
  uint64_t deadline_generation_ = 0;  // a deadline armed before the last disarm is stale
  bool timed_out_ = false;            // the read was cancelled at the deadline: answer 408
  ConnectionShared::WaitingList::iterator waiting_position_;
  bool closed_ = false;
  size_t drained_bytes_ = 0;
  BudgetShare body_share_;  // what the body that was read holds of the budget, until handled

  // The execution this connection waits for, if any.
  std::string execution_id_;
  std::string owner_;
  bool final_received_ = false;
  bool streaming_ = false;
  WireFormat format_ = WireFormat::json;
  std::function<HttpResponse(const v1::Event&)> respond_;
  bool watching_ = false;
  bool exchange_done_ = false;
  // Keeps this connection alive while its execution runs, also when nothing is being read (the
  // client pipelined as much as it may): the observer holds it only weakly. Let go when the
  // exchange ends or the connection closes.
  std::shared_ptr<Connection> running_hold_;

  bool on_sandbox_threads_ = false;  // the request being handled: Api::waits_on_sandbox

  // A StreamingResponse being sent: its writer, and what to call if the client goes first.
  std::shared_ptr<ConnectionByteWriter> byte_writer_;
  std::function<void()> on_client_gone_;

  // The event stream, or a StreamingResponse's body. The heartbeat is written after
  // heartbeat_interval_ of quiet until the producer is done (final_received_).
  std::string heartbeat_bytes_;
  std::chrono::milliseconds heartbeat_interval_{0};
  std::optional<http::response<http::empty_body>> stream_header_;
  std::optional<http::response_serializer<http::empty_body>> stream_serializer_;
  std::deque<Outgoing> outbox_;
  size_t outbox_bytes_ = 0;
  bool writing_ = false;
  uint64_t stream_dropped_bytes_ = 0;
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
  net::steady_timer heartbeat_;
};

}  // namespace airlock::api
