#include "api/e2b/envd_stream.h"

#include <utility>

namespace airlock::api::e2b::envd {

ServerStream::ServerStream(connect::Encoding encoding,
                           std::optional<std::chrono::steady_clock::time_point> deadline)
    : encoding_(encoding), deadline_(deadline) {}

ServerStream::~ServerStream() = default;

bool ServerStream::send(const google::protobuf::Message& message) {
  if (deadline_ && std::chrono::steady_clock::now() >= *deadline_) {
    finish(connect::Error{"deadline_exceeded", "the call's Connect-Timeout-Ms passed"});
    return false;
  }
  std::shared_ptr<ByteStreamWriter> writer;
  {
    std::lock_guard lock(mutex_);
    if (finished_ || gone_ || !writer_) return false;
    writer = writer_;
  }
  return writer->write(connect::stream_message(message, encoding_));
}

void ServerStream::finish(const std::optional<connect::Error>& error) {
  std::shared_ptr<ByteStreamWriter> writer;
  std::function<void()> cleanup;
  SlotTable::Slot slot;
  {
    std::lock_guard lock(mutex_);
    if (finished_ || gone_) return;
    finished_ = true;
    writer = std::move(writer_);
    cleanup = std::move(cleanup_);
    slot = std::move(slot_);
  }
  if (writer) {
    writer->write(connect::end_of_stream(error));
    writer->end();
  }
  if (cleanup) cleanup();
}

bool ServerStream::open() const {
  std::lock_guard lock(mutex_);
  return !finished_ && !gone_;
}

void ServerStream::hold(std::unique_ptr<runner::Workspace::Subscription> subscription) {
  {
    std::lock_guard lock(mutex_);
    if (!gone_) {
      subscription_ = std::move(subscription);
      return;
    }
  }
  subscription.reset();  // outside the lock: dropping it may wait for a running callback
}

void ServerStream::on_client_gone(std::function<void()> cleanup) {
  bool run_now = false;
  {
    std::lock_guard lock(mutex_);
    if (gone_ || finished_) {
      run_now = true;
    } else {
      cleanup_ = std::move(cleanup);
    }
  }
  if (run_now && cleanup) cleanup();
}

void ServerStream::attach(std::shared_ptr<ByteStreamWriter> writer) {
  std::lock_guard lock(mutex_);
  if (!finished_ && !gone_) writer_ = std::move(writer);
}

void ServerStream::client_gone() {
  std::unique_ptr<runner::Workspace::Subscription> subscription;
  std::function<void()> cleanup;
  SlotTable::Slot slot;
  {
    std::lock_guard lock(mutex_);
    if (gone_) return;
    gone_ = true;
    slot = std::move(slot_);
    subscription = std::move(subscription_);
    writer_.reset();
    cleanup = std::move(cleanup_);
  }
  subscription.reset();
  if (cleanup) cleanup();
}

Dispatch ServerStream::response(std::shared_ptr<ServerStream> stream, const Rpc& rpc,
                                const google::protobuf::Message& keepalive_message,
                                std::function<void(std::shared_ptr<ServerStream>)> begin) {
  auto taken = server_streams().take(*rpc.workspace);
  if (auto* refusal = std::get_if<SlotTable::Refusal>(&taken)) {
    return fail(rpc, {"resource_exhausted",
                      "this " + refusal->scope + " has " + std::to_string(refusal->cap) +
                          " process and watch streams open already, its most; close some first"});
  }
  stream->slot_ = std::move(std::get<SlotTable::Slot>(taken));
  StreamingResponse response;
  response.head.status = 200;
  response.head.content_type = std::string(connect::streaming_content_type(rpc.encoding));
  response.keepalive = connect::stream_message(keepalive_message, rpc.encoding);
  response.keepalive_interval = rpc.keepalive_interval;
  response.start = [stream, begin = std::move(begin)](std::shared_ptr<ByteStreamWriter> writer) {
    stream->attach(std::move(writer));
    begin(stream);
  };
  // The transport holds this until the stream ends, and with it the stream and its subscription.
  response.on_client_gone = [stream] { stream->client_gone(); };
  return response;
}

}  // namespace airlock::api::e2b::envd
