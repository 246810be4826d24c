// An execution's events on their way to the client: only the final one for a client waiting for
// the result, every one for an event stream, which has an outbox (bounded: what does not fit is
// counted as dropped), heartbeats while nothing is sent, and a watch for the client going away.
#include "api/rest/responses.h"
#include "api/transport/connection_impl.h"
#include "api/wire/wire.h"

namespace airlock::api {

void ConnectionObserver::on_event(const v1::Event& event) {
  if (!streaming_ && !is_final(event)) return;
  auto connection = connection_.lock();
  if (!connection) return;  // the client is gone; the execution was cancelled
  net::post(executor_, [connection, event] { connection->on_event(event); });
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
    heartbeat_bytes_ = std::string(kSseHeartbeat);
    heartbeat_interval_ = shared_->options.heartbeat_interval;
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

void Connection::enqueue(Item item, std::string data, bool from_writer) {
  outbox_bytes_ += data.size();
  outbox_.push_back({item, std::move(data), from_writer});
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
    if (sent.from_writer && self->byte_writer_) self->byte_writer_->sent(sent.data.size());
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
  if (heartbeat_interval_.count() <= 0 || heartbeat_bytes_.empty()) return;
  heartbeat_.expires_after(heartbeat_interval_);
  heartbeat_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->closed_ || self->final_received_) return;
    auto quiet = std::chrono::steady_clock::now() - self->last_write_;
    if (self->outbox_.empty() && quiet >= self->heartbeat_interval_ / 2) {
      self->enqueue(Item::chunk, self->heartbeat_bytes_);
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
          self->shared_->log.info("client disconnected; cancelling what it waited for",
                                  {{"execution_id", self->execution_id_}, {"peer", self->peer_}});
          return self->close();
        }
        self->watch_disconnect();
      });
}

void Connection::cancel_execution() {
  if (execution_id_.empty() || final_received_) return;
  shared_->executions.cancel(execution_id_, owner_);
  final_received_ = true;
}

}  // namespace airlock::api
