#include "api/transport/connection.h"

#include <boost/asio.hpp>

#include "api/rest/responses.h"
#include "api/transport/connection_impl.h"
#include "api/wire/wire.h"

namespace airlock::api {

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
  parser_->get().body().budget = &shared_->body_budget;
  parser_->header_limit(kMaxHeaderBytes);
  parser_->body_limit(shared_->options.max_body_bytes);
  // Once a request has begun, its header must arrive within the header timeout (slow-loris).
  arm_request_deadline(shared_->options.header_timeout);
  http::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
}

void Connection::on_header(beast::error_code ec) {
  disarm_request_deadline();
  if (ec && timed_out_) {
    return reply_and_close(408, "request_timeout",
                           "the request's header did not arrive within header_timeout (" +
                               std::to_string(shared_->options.header_timeout.count()) + " ms)");
  }
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
    return reply_and_close(413, "body_too_large",
                           body_too_large_message(shared_->options.max_body_bytes));
  }
  if (ec) return reply_and_close(400, "bad_request", "malformed HTTP request: " + ec.message());
  // Host, Origin, API key and body type are checked before a byte of the body is read, so a
  // stranger cannot make the service hold bodies.
  if (auto refused = shared_->api.refuse_head(
          request_head(parser_->get(), peer_, shared_->options.trusted_proxies))) {
    if (!parser_->is_done()) return reply_and_close(*refused);
    // No body follows (a GET of an unknown path): the connection stays usable.
    keep_alive_ = parser_->get().keep_alive();
    set_waiting(false);
    set_busy(true);
    return send(std::move(*refused));
  }
  // The body takes from the body budget as its bytes arrive (BudgetedBody), not as announced:
  // a client that claims a large body and sends none holds nothing.
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
  receiving_body_ = true;
  shared_->mark_receiving_body(waiting_position_);
  arm_request_deadline(shared_->options.idle_timeout);
  http::async_read(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](beast::error_code ec, size_t) { self->on_request(ec); });
}

void Connection::on_request(beast::error_code ec) {
  receiving_body_ = false;
  disarm_request_deadline();
  if (ec && evicted_) {
    return reply_and_close(
        busy("the service is at its connection limit and ended this request to make room; retry"));
  }
  if (ec && timed_out_) {
    return reply_and_close(408, "request_timeout",
                           "the request's body did not arrive within idle_timeout (" +
                               std::to_string(shared_->options.idle_timeout.count()) + " ms)");
  }
  if (ec && parser_->get().body().over_budget) {
    shared_->metrics.rejected("memory_budget");
    return reply_and_close(
        busy("the service holds as many request bodies as it may; retry shortly"));
  }
  if (ec == http::error::buffer_overflow) {
    return reply_and_close(400, "chunk_too_large",
                           "a chunk's size line (with its extensions) or the trailer is longer "
                           "than " +
                               std::to_string(kMaxUnparsedBytes) + " bytes");
  }
  if (ec == http::error::body_limit) {
    return reply_and_close(413, "body_too_large",
                           body_too_large_message(shared_->options.max_body_bytes));
  }
  if (ec == beast::error::timeout || ec == net::error::eof || ec == http::error::end_of_stream ||
      ec == http::error::partial_message) {
    return close();
  }
  if (ec) return reply_and_close(400, "bad_request", "malformed HTTP request: " + ec.message());

  http::request<BudgetedBody> message = parser_->release();
  keep_alive_ = message.keep_alive();
  set_waiting(false);
  HttpRequest request = request_head(message, peer_, shared_->options.trusted_proxies);
  request.body = std::move(message.body().text);
  body_share_ = std::move(message.body().share);
  set_busy(true);
  handle(std::move(request));
}

void Connection::arm_request_deadline(std::chrono::milliseconds timeout) {
  stream_.expires_never();
  timed_out_ = false;
  request_deadline_.expires_after(timeout);
  request_deadline_.async_wait(
      [weak = weak_from_this(), generation = ++deadline_generation_](beast::error_code ec) {
        auto self = weak.lock();
        if (ec || !self || generation != self->deadline_generation_ || self->closed_) return;
        self->timed_out_ = true;
        beast::error_code ignored;
        self->stream_.socket().cancel(ignored);
      });
}

void Connection::disarm_request_deadline() {
  ++deadline_generation_;
  request_deadline_.cancel();
}

void Connection::handle(HttpRequest request) {
  on_sandbox_threads_ = false;
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
  // A request that may wait on a sandbox's agent runs on threads of its own (and so does the
  // stream it may answer with), so that stalled agents cannot take the other requests' threads.
  on_sandbox_threads_ = shared_->api.waits_on_sandbox(request);
  net::post(handler_threads(), [self = shared_from_this(), request = std::move(request),
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
  if (closed_) {
    // The client left while its request was handled: a stream's producer may have begun work
    // already (a code run), which it stops when told.
    auto* stream = std::get_if<StreamingResponse>(&dispatch);
    if (stream && stream->on_client_gone) stream->on_client_gone();
    return set_busy(false);
  }
  if (auto* response = std::get_if<HttpResponse>(&dispatch)) return send(std::move(*response));
  if (auto* stream = std::get_if<StreamingResponse>(&dispatch)) {
    return start_byte_stream(std::move(*stream));
  }
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
  parser_.reset();  // and what a body refused on its way in holds
  set_busy(true);
  send(response);
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
  byte_writer_.reset();
  on_client_gone_ = nullptr;
  stream_serializer_.reset();
  stream_header_.reset();
  wait_for_request();
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
  cancel_byte_stream();
  set_busy(false);
  heartbeat_.cancel();
  disarm_request_deadline();
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.close();
}

ConnectionShared::WaitingList::iterator ConnectionShared::add_waiting(
    std::weak_ptr<WaitingConnection> connection) {
  std::lock_guard lock(waiting_mutex_);
  return waiting_.insert(waiting_.end(), Waiting{std::move(connection)});
}

void ConnectionShared::remove_waiting(WaitingList::iterator position) {
  std::lock_guard lock(waiting_mutex_);
  waiting_.erase(position);
}

void ConnectionShared::mark_receiving_body(WaitingList::iterator position) {
  std::lock_guard lock(waiting_mutex_);
  position->receiving_body = true;
}

bool ConnectionShared::evict_oldest_waiting() {
  std::shared_ptr<WaitingConnection> oldest;
  {
    // Entries leave the list only through remove_waiting, so each connection's iterator stays
    // valid; an evicted one is skipped until it is gone.
    // Idle and header-reading connections go first; one sending a body only when none is left.
    std::lock_guard lock(waiting_mutex_);
    for (const bool receiving_body : {false, true}) {
      for (Waiting& entry : waiting_) {
        if (entry.evicted || entry.receiving_body != receiving_body) continue;
        oldest = entry.connection.lock();
        if (!oldest) continue;
        entry.evicted = true;
        break;
      }
      if (oldest) break;
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
