#include "api/transport/connection.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <deque>
#include <optional>

#include "api/rest/responses.h"
#include "api/wire/wire.h"

namespace airlock::api {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr size_t kReadChunkBytes = 4096;
// After a response that ends the connection, unread request bytes are drained (so the client sees
// the response instead of a reset) for at most this long and this much.
constexpr std::chrono::seconds kDrainTimeout{2};
constexpr size_t kMaxDrainBytes = 8 * 1024 * 1024;

class Connection;

// 503 with Retry-After: a limit of the service itself, not of the request, was reached.
HttpResponse busy(std::string message) {
  HttpResponse response = error(503, "busy", std::move(message), WireFormat::json);
  response.headers.emplace_back("Retry-After", "1");
  return response;
}

// The method, target, headers and peer of a request, without its body.
template <class Body>
HttpRequest request_head(const http::request<Body>& message, const std::string& peer) {
  HttpRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  for (const auto& field : message) {
    request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  request.peer = peer;
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
      : stream_(std::move(socket)), shared_(std::move(shared)), heartbeat_(stream_.get_executor()) {
    beast::error_code ec;
    auto endpoint = stream_.socket().remote_endpoint(ec);
    if (!ec) peer_ = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    ++shared_->connections;
  }

  ~Connection() override {
    set_waiting(false);
    cancel_execution();
    set_busy(false);
    --shared_->connections;
  }

  void start() {
    net::dispatch(stream_.get_executor(),
                  [self = shared_from_this()] { self->wait_for_request(); });
  }

  // On the strand: one event of this connection's execution.
  void on_event(const v1::Event& event);

  void evict() override {
    net::post(stream_.get_executor(), [weak = weak_from_this()] {
      auto self = weak.lock();
      if (!self || !self->waiting_) return;
      self->shared_->metrics.rejected("evicted_waiting_connection");
      self->close();
    });
  }

 private:
  enum class Item { header, chunk, last_chunk };
  struct Outgoing {
    Item item;
    std::string data;
  };

  void wait_for_request();
  void read_header();
  void on_header(beast::error_code ec);
  void read_body();
  void on_request(beast::error_code ec);
  void handle(HttpRequest request);
  void on_dispatch(Dispatch dispatch);
  void send(HttpResponse response);
  void reply_and_close(int status, std::string code, std::string message);
  void reply_and_close(const HttpResponse& response);
  void start_execution(PendingExecution pending);
  void enqueue(Item item, std::string data);
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
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string peer_;
  bool keep_alive_ = true;
  bool busy_ = false;
  bool waiting_ = false;
  ConnectionShared::WaitingList::iterator waiting_position_;
  bool closed_ = false;
  size_t drained_bytes_ = 0;
  BudgetShare body_share_;  // the announced size of the body being read, until it is handled

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

  // The event stream.
  std::optional<http::response<http::empty_body>> stream_header_;
  std::optional<http::response_serializer<http::empty_body>> stream_serializer_;
  std::deque<Outgoing> outbox_;
  size_t outbox_bytes_ = 0;
  bool writing_ = false;
  uint64_t stream_dropped_bytes_ = 0;
  std::chrono::steady_clock::time_point last_write_ = std::chrono::steady_clock::now();
  net::steady_timer heartbeat_;
};

void ConnectionObserver::on_event(const v1::Event& event) {
  if (!streaming_ && !is_final(event)) return;
  auto connection = connection_.lock();
  if (!connection) return;  // the client is gone; the execution was cancelled
  net::post(executor_, [connection, event] { connection->on_event(event); });
}

void Connection::set_busy(bool busy) {
  if (busy == busy_) return;
  busy_ = busy;
  busy ? shared_->acquire_busy() : shared_->release_busy();
}

void Connection::set_waiting(bool waiting) {
  if (waiting == waiting_) return;
  waiting_ = waiting;
  if (waiting) {
    waiting_position_ = shared_->add_waiting(weak_from_this());
  } else {
    shared_->remove_waiting(waiting_position_);
  }
}

void Connection::wait_for_request() {
  set_waiting(true);
  if (buffer_.size() > 0) return read_header();  // a pipelined request is already here
  // Idle between requests: the idle timeout applies until the first byte.
  stream_.expires_after(shared_->options.idle_timeout);
  stream_.async_read_some(buffer_.prepare(kReadChunkBytes),
                          [self = shared_from_this()](beast::error_code ec, size_t bytes) {
                            self->buffer_.commit(bytes);
                            if (ec) return self->close();
                            self->read_header();
                          });
}

void Connection::read_header() {
  parser_.emplace();
  parser_->header_limit(kMaxHeaderBytes);
  parser_->body_limit(shared_->options.max_body_bytes);
  // Once a request has begun, its header must arrive within the header timeout (slow-loris).
  stream_.expires_after(shared_->options.header_timeout);
  http::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
}

void Connection::on_header(beast::error_code ec) {
  if (ec == http::error::header_limit) {
    return reply_and_close(
        431, "header_too_large",
        "the request header is larger than " + std::to_string(kMaxHeaderBytes) + " bytes");
  }
  if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::eof) {
    return close();
  }
  // The parser already refuses a Content-Length over the body limit while reading the header.
  boost::optional<uint64_t> length;
  if (!ec) length = parser_->content_length();
  if (ec == http::error::body_limit || (length && *length > shared_->options.max_body_bytes)) {
    return reply_and_close(
        413, "body_too_large",
        "the body is larger than " + std::to_string(shared_->options.max_body_bytes) + " bytes");
  }
  if (ec) return reply_and_close(400, "bad_request", "malformed HTTP request: " + ec.message());
  // Host, Origin, API key and body type are checked before a byte of the body is read, so a
  // stranger cannot make the service hold bodies.
  if (auto refused = shared_->api.refuse_head(request_head(parser_->get(), peer_))) {
    return reply_and_close(*refused);
  }
  const bool chunked = parser_->get().chunked();
  const uint64_t announced = chunked ? shared_->options.max_body_bytes : length.value_or(0);
  if (announced > 0) {
    if (!shared_->body_budget.try_take(announced)) {
      shared_->metrics.rejected("memory_budget");
      return reply_and_close(
          busy("the service holds as many request bodies as it may; retry shortly"));
    }
    body_share_ = BudgetShare(shared_->body_budget, announced);
  }
  auto expect = parser_->get()[http::field::expect];
  if (beast::iequals(expect, "100-continue")) {
    // curl waits for this before sending a large body.
    auto interim = std::make_shared<http::response<http::empty_body>>(http::status::continue_, 11);
    stream_.expires_after(kWriteTimeout);
    return http::async_write(stream_, *interim,
                             [self = shared_from_this(), interim](beast::error_code ec, size_t) {
                               if (ec) return self->close();
                               self->read_body();
                             });
  }
  read_body();
}

void Connection::read_body() {
  stream_.expires_after(shared_->options.idle_timeout);
  http::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_request(ec); });
}

void Connection::on_request(beast::error_code ec) {
  if (ec == http::error::body_limit) {
    return reply_and_close(
        413, "body_too_large",
        "the body is larger than " + std::to_string(shared_->options.max_body_bytes) + " bytes");
  }
  if (ec == beast::error::timeout || ec == net::error::eof || ec == http::error::end_of_stream ||
      ec == http::error::partial_message) {
    return close();
  }
  if (ec) return reply_and_close(400, "bad_request", "malformed HTTP request: " + ec.message());

  http::request<http::string_body> message = parser_->release();
  keep_alive_ = message.keep_alive();
  set_waiting(false);
  HttpRequest request = request_head(message, peer_);
  request.body = std::move(message.body());
  set_busy(true);
  handle(std::move(request));
}

void Connection::handle(HttpRequest request) {
  const std::string_view path = request.path();
  if (path == "/healthz" || path == "/readyz") {
    // Cheap and answered here, so that health checks pass while every handler thread is busy.
    body_share_.reset();
    return on_dispatch(shared_->api.handle(request));
  }
  if (shared_->handled_requests.fetch_add(1) >= kMaxHandledRequests) {
    --shared_->handled_requests;
    body_share_.reset();
    return send(busy("too many requests are being handled; retry shortly"));
  }
  // Nothing runs on this connection until the handler is done: no read deadline meanwhile.
  stream_.expires_never();
  net::post(shared_->blocking, [self = shared_from_this(), request = std::move(request),
                                share = std::move(body_share_)]() mutable {
    auto dispatch = std::make_shared<Dispatch>(self->shared_->api.handle(request));
    share.reset();
    --self->shared_->handled_requests;
    auto executor = self->stream_.get_executor();
    net::post(executor,
              [self = std::move(self), dispatch] { self->on_dispatch(std::move(*dispatch)); });
  });
}

void Connection::on_dispatch(Dispatch dispatch) {
  if (closed_) return set_busy(false);
  if (auto* response = std::get_if<HttpResponse>(&dispatch)) return send(std::move(*response));
  start_execution(std::move(std::get<PendingExecution>(dispatch)));
}

void Connection::send(HttpResponse response) {
  auto message = std::make_shared<http::response<http::string_body>>(
      static_cast<http::status>(response.status), 11);
  message->set(http::field::server, "airlock");
  message->set(http::field::content_type, response.content_type);
  for (const auto& [name, value] : response.headers) message->set(name, value);
  message->body() = std::move(response.body);
  message->keep_alive(keep_alive_);
  message->prepare_payload();
  shared_->metrics.http_response(response.status);
  stream_.expires_after(kWriteTimeout);
  http::async_write(stream_, *message,
                    [self = shared_from_this(), message](beast::error_code ec, size_t) {
                      if (ec) return self->close();
                      self->exchange_done();
                    });
}

void Connection::reply_and_close(int status, std::string code, std::string message) {
  reply_and_close(
      error_response(status, make_error(std::move(code), std::move(message)), WireFormat::json));
}

void Connection::reply_and_close(const HttpResponse& response) {
  keep_alive_ = false;
  body_share_.reset();
  set_busy(true);
  send(response);
}

void Connection::start_execution(PendingExecution pending) {
  streaming_ = pending.stream;
  format_ = pending.format;
  respond_ = std::move(pending.respond);
  owner_ = pending.job.owner;
  final_received_ = false;
  stream_dropped_bytes_ = 0;
  auto observer =
      std::make_shared<ConnectionObserver>(weak_from_this(), stream_.get_executor(), streaming_);
  auto started = shared_->api.start(std::move(pending), observer);
  if (auto* refusal = std::get_if<HttpResponse>(&started)) return send(*refusal);
  execution_id_ = std::get<std::string>(started);
  running_hold_ = shared_from_this();
  // Until the result is ready, writes set their own deadline; nothing is read but the watch.
  stream_.expires_never();
  if (streaming_) {
    stream_header_.emplace(http::status::ok, 11);
    stream_header_->set(http::field::server, "airlock");
    stream_header_->set(http::field::content_type, kEventStreamType);
    for (const auto& [name, value] : sse_headers(execution_id_)) stream_header_->set(name, value);
    stream_header_->keep_alive(keep_alive_);
    stream_header_->chunked(true);
    stream_serializer_.emplace(*stream_header_);
    shared_->metrics.http_response(200);
    enqueue(Item::header, "");
    schedule_heartbeat();
  }
  watch_disconnect();
}

void Connection::on_event(const v1::Event& event) {
  if (closed_ || final_received_ || event.execution_id() != execution_id_) return;
  const bool final_event = is_final(event);
  if (final_event) final_received_ = true;
  if (!streaming_) {
    if (final_event) send(respond_ ? respond_(event) : final_event_response(event, format_));
    return;
  }
  if (final_event) {
    heartbeat_.cancel();
    if (event.has_exit() && stream_dropped_bytes_ > 0) {
      v1::Event with_count = event;
      with_count.mutable_exit()->set_stream_dropped_bytes(stream_dropped_bytes_);
      enqueue(Item::chunk, sse_frame(with_count));
    } else {
      enqueue(Item::chunk, sse_frame(event));
    }
    return enqueue(Item::last_chunk, "");
  }
  if ((event.has_stdout() || event.has_stderr() || event.has_file()) &&
      outbox_bytes_ > kMaxPendingStreamBytes) {
    // The client reads more slowly than the program writes; the result keeps what matters.
    stream_dropped_bytes_ += event.has_stdout()   ? event.stdout().data().size()
                             : event.has_stderr() ? event.stderr().data().size()
                                                  : event.file().content().size();
    return;
  }
  enqueue(Item::chunk, sse_frame(event));
}

void Connection::enqueue(Item item, std::string data) {
  outbox_bytes_ += data.size();
  outbox_.push_back({item, std::move(data)});
  if (!writing_) write_next();
}

void Connection::write_next() {
  if (closed_ || outbox_.empty()) {
    writing_ = false;
    return;
  }
  writing_ = true;
  Outgoing& next = outbox_.front();
  auto done = [self = shared_from_this()](beast::error_code ec, size_t) {
    if (ec) return self->close();
    Outgoing sent = std::move(self->outbox_.front());
    self->outbox_.pop_front();
    self->outbox_bytes_ -= sent.data.size();
    self->last_write_ = std::chrono::steady_clock::now();
    if (sent.item == Item::last_chunk) {
      self->writing_ = false;
      return self->exchange_done();
    }
    self->write_next();
  };
  stream_.expires_after(kWriteTimeout);
  switch (next.item) {
    case Item::header:
      return http::async_write_header(stream_, *stream_serializer_, std::move(done));
    case Item::chunk:
      return net::async_write(stream_, http::make_chunk(net::buffer(next.data)), std::move(done));
    case Item::last_chunk:
      return net::async_write(stream_, http::make_chunk_last(), std::move(done));
  }
}

void Connection::schedule_heartbeat() {
  heartbeat_.expires_after(shared_->options.heartbeat_interval);
  heartbeat_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->closed_ || self->final_received_) return;
    auto quiet = std::chrono::steady_clock::now() - self->last_write_;
    if (self->outbox_.empty() && quiet >= self->shared_->options.heartbeat_interval / 2) {
      self->enqueue(Item::chunk, std::string(kSseHeartbeat));
    }
    self->schedule_heartbeat();
  });
}

void Connection::watch_disconnect() {
  // Reading is how a server learns that the client went away; bytes that arrive meanwhile are a
  // pipelined next request and are kept for it, up to a bound.
  if (watching_ || closed_ || buffer_.size() >= kMaxPipelinedBytes) return;
  watching_ = true;
  stream_.socket().async_read_some(
      buffer_.prepare(kReadChunkBytes),
      [self = shared_from_this()](beast::error_code ec, size_t n) {
        self->watching_ = false;
        self->buffer_.commit(n);
        if (self->exchange_done_) {
          // The client went away as its answer was sent: this read met the end and nothing
          // will wake the next one (epoll is edge-triggered), so close now, not at idle timeout.
          if (ec && ec != net::error::operation_aborted && self->buffer_.size() == 0) {
            return self->close();
          }
          return self->next_request();
        }
        if (self->closed_ || ec == net::error::operation_aborted) return;
        if (ec) {
          self->shared_->log.info("client disconnected; cancelling its execution",
                                  {{"execution_id", self->execution_id_}, {"peer", self->peer_}});
          return self->close();
        }
        self->watch_disconnect();
      });
}

void Connection::exchange_done() {
  running_hold_.reset();
  set_busy(false);
  if (!keep_alive_) return linger_close();
  exchange_done_ = true;
  // The disconnect watch must end before the next request is read; its handler continues.
  if (watching_) {
    beast::error_code ec;
    stream_.socket().cancel(ec);
    return;
  }
  next_request();
}

void Connection::next_request() {
  exchange_done_ = false;
  execution_id_.clear();
  streaming_ = false;
  respond_ = nullptr;
  stream_serializer_.reset();
  stream_header_.reset();
  wait_for_request();
}

void Connection::cancel_execution() {
  if (execution_id_.empty() || final_received_) return;
  shared_->executions.cancel(execution_id_, owner_);
  final_received_ = true;
}

void Connection::linger_close() {
  // Half-close, then read what the client still sends, so it reads our answer, not a reset.
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream_.expires_after(kDrainTimeout);
  drained_bytes_ = 0;
  drain_some();
}

void Connection::drain_some() {
  buffer_.clear();
  stream_.async_read_some(buffer_.prepare(kReadChunkBytes),
                          [self = shared_from_this()](beast::error_code ec, size_t bytes) {
                            self->drained_bytes_ += bytes;
                            if (ec || self->drained_bytes_ > kMaxDrainBytes) return self->close();
                            self->drain_some();
                          });
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  set_waiting(false);
  // The hold may be what keeps this connection alive: release it once this handler is done.
  net::post(stream_.get_executor(), [hold = std::move(running_hold_)] {});
  cancel_execution();
  set_busy(false);
  heartbeat_.cancel();
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();
}

}  // namespace

ConnectionShared::WaitingList::iterator ConnectionShared::add_waiting(
    std::weak_ptr<WaitingConnection> connection) {
  std::lock_guard lock(waiting_mutex_);
  return waiting_.insert(waiting_.end(), Waiting{std::move(connection)});
}

void ConnectionShared::remove_waiting(WaitingList::iterator position) {
  std::lock_guard lock(waiting_mutex_);
  waiting_.erase(position);
}

bool ConnectionShared::evict_oldest_waiting() {
  std::shared_ptr<WaitingConnection> oldest;
  {
    // Entries leave the list only through remove_waiting, so each connection's iterator stays
    // valid; an evicted one is skipped until it is gone.
    std::lock_guard lock(waiting_mutex_);
    for (Waiting& entry : waiting_) {
      if (entry.evicted) continue;
      oldest = entry.connection.lock();
      if (!oldest) continue;
      entry.evicted = true;
      break;
    }
  }
  if (!oldest) return false;
  oldest->evict();
  return true;
}

void ConnectionShared::acquire_busy() {
  std::lock_guard lock(busy_mutex_);
  ++busy_;
}

void ConnectionShared::release_busy() {
  std::lock_guard lock(busy_mutex_);
  if (--busy_ == 0) busy_done_.notify_all();
}

bool ConnectionShared::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(busy_mutex_);
  return busy_done_.wait_for(lock, timeout, [this] { return busy_ == 0; });
}

void start_connection(tcp::socket socket, std::shared_ptr<ConnectionShared> shared) {
  std::make_shared<Connection>(std::move(socket), std::move(shared))->start();
}

}  // namespace airlock::api
