// A StreamingResponse on its way to the client: the head at once (chunked), then each piece its
// producer writes from any thread, through the connection's bounded outbox; keepalive bytes while
// nothing else is sent; the body's end, or the producer told when the client goes away first.
#include "api/transport/connection_impl.h"

#include <algorithm>
#include <iterator>

namespace airlock::api {

bool ConnectionByteWriter::write(std::string bytes) {
  if (closed_) return false;
  auto connection = connection_.lock();
  if (!connection) {
    close();
    return false;
  }
  if (bytes.empty()) return true;  // an empty chunk would end the body
  const size_t pending = pending_bytes_ += bytes.size();
  if (pending > kMaxPendingStreamBytes) {
    // The client reads more slowly than the producer writes: cut, never silently thin.
    if (!close()) return false;
    net::post(executor_, [connection, self = this] { connection->on_stream_end(self, true); });
    return false;
  }
  net::post(executor_, [connection, self = this, bytes = std::move(bytes)]() mutable {
    connection->on_stream_bytes(self, std::move(bytes));
  });
  return true;
}

void ConnectionByteWriter::end() {
  if (!close()) return;
  auto connection = connection_.lock();
  if (!connection) return;
  net::post(executor_, [connection, self = this] { connection->on_stream_end(self, false); });
}

void ConnectionByteWriter::when_pending_at_most(size_t bytes, std::function<void()> callback) {
  {
    std::lock_guard lock(waiters_mutex_);
    if (!closed_ && pending_bytes_ > bytes) {
      waiters_.push_back({bytes, std::move(callback)});
      return;
    }
  }
  callback();
}

void ConnectionByteWriter::sent(size_t bytes) {
  std::vector<Waiter> ready;
  {
    std::lock_guard lock(waiters_mutex_);
    const size_t pending = pending_bytes_ -= bytes;
    auto satisfied = std::stable_partition(waiters_.begin(), waiters_.end(),
                                           [&](const Waiter& w) { return w.at_most < pending; });
    std::move(satisfied, waiters_.end(), std::back_inserter(ready));
    waiters_.erase(satisfied, waiters_.end());
  }
  for (Waiter& waiter : ready) waiter.callback();
}

bool ConnectionByteWriter::close() {
  if (closed_.exchange(true)) return false;
  std::vector<Waiter> waiting;
  {
    std::lock_guard lock(waiters_mutex_);
    waiting.swap(waiters_);
  }
  // The producers learn that nothing more will be taken; none of their callbacks is kept.
  for (Waiter& waiter : waiting) waiter.callback();
  return true;
}

void Connection::start_byte_stream(StreamingResponse response) {
  streaming_ = true;
  final_received_ = false;
  stream_header_.emplace(static_cast<http::status>(response.head.status), 11);
  stream_header_->set(http::field::server, "airlock");
  stream_header_->set(http::field::content_type, response.head.content_type);
  for (const auto& [name, value] : response.head.headers) stream_header_->set(name, value);
  stream_header_->keep_alive(keep_alive_);
  stream_header_->chunked(true);
  stream_serializer_.emplace(*stream_header_);
  shared_->metrics.http_response(response.head.status);
  // The writer holds this connection only weakly: the hold keeps it while the producer works.
  running_hold_ = shared_from_this();
  stream_.expires_never();
  enqueue(Item::header, "");
  if (!response.head.body.empty()) enqueue(Item::chunk, std::move(response.head.body));

  byte_writer_ = std::make_shared<ConnectionByteWriter>(weak_from_this(), stream_.get_executor());
  on_client_gone_ = std::move(response.on_client_gone);
  heartbeat_bytes_ = std::move(response.keepalive);
  heartbeat_interval_ = response.keepalive_interval;
  schedule_heartbeat();
  watch_disconnect();
  if (!response.start) return on_stream_end(byte_writer_.get(), false);
  // The producer may block briefly (it asks a workspace for something): not on an I/O thread.
  net::post(handler_threads(), [start = std::move(response.start), writer = byte_writer_,
                                weak = weak_from_this()]() mutable {
    try {
      start(writer);
    } catch (const std::exception& exception) {
      if (auto self = weak.lock()) {
        self->shared_->log.error("a streaming response's producer failed",
                                 {{"error", exception.what()}});
      }
      writer->end();
    }
  });
}

void Connection::on_stream_bytes(const ConnectionByteWriter* from, std::string bytes) {
  // A writer of an earlier stream on this connection may still have bytes on their way.
  if (closed_ || final_received_ || byte_writer_.get() != from) return;
  enqueue(Item::chunk, std::move(bytes), true);
}

void Connection::on_stream_end(const ConnectionByteWriter* from, bool cut) {
  if (closed_ || final_received_ || byte_writer_.get() != from) return;
  final_received_ = true;
  heartbeat_.cancel();
  byte_writer_->mark_closed();
  if (cut) {
    shared_->metrics.rejected("stream_cut_slow_client");
    shared_->log.warning("a slow client fell too far behind its stream; the stream was cut",
                         {{"peer", peer_}});
    // Whatever made the stream stops too: nobody reads the rest of it.
    if (auto gone = std::move(on_client_gone_)) gone();
    on_client_gone_ = nullptr;
  }
  enqueue(Item::last_chunk, "");
}

void Connection::cancel_byte_stream() {
  if (!byte_writer_) return;
  byte_writer_->mark_closed();
  if (final_received_) return;
  final_received_ = true;
  auto gone = std::move(on_client_gone_);
  on_client_gone_ = nullptr;
  if (gone) gone();
}

}  // namespace airlock::api
