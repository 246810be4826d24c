// One envd server stream being answered (Process.Start, Process.Connect, Filesystem.WatchDir):
// the transport's writer, the subscription to the agent's events that feeds it, and the Connect
// framing. Messages go out as envelopes; the stream always ends with the end-of-stream envelope.
#pragma once

#include <google/protobuf/message.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "api/e2b/connect.h"
#include "api/e2b/envd_internal.h"
#include "api/e2b/sandbox_slots.h"
#include "api/transport/byte_stream.h"
#include "runner/workspaces.h"

namespace airlock::api::e2b::envd {

// Thread-safe: messages come from the workspace's reader thread, the writer from a worker, the
// client's departure from an I/O thread.
class ServerStream : public std::enable_shared_from_this<ServerStream> {
 public:
  ServerStream(connect::Encoding encoding,
               std::optional<std::chrono::steady_clock::time_point> deadline);
  ~ServerStream();

  // Sends one message. False when the stream is over (ended, client gone, writer refused); past
  // the deadline it ends the stream with deadline_exceeded instead.
  bool send(const google::protobuf::Message& message);
  // Ends the stream: the end-of-stream envelope (with the error, if any), then the body's end.
  // Later calls do nothing.
  void finish(const std::optional<connect::Error>& error);
  // True until the stream ended or its client went away.
  bool open() const;

  // Keeps the subscription that feeds the stream until the client goes away or the stream is
  // destroyed (not when it finishes: finish() may run inside the subscription's own callback).
  // When the client has gone already, it is dropped at once.
  void hold(std::unique_ptr<runner::Workspace::Subscription> subscription);
  // Runs once when the stream is over, whether it ended or its client went away (e.g. to stop
  // an agent watch); at once when it is over already. It may run on the reader thread.
  void on_client_gone(std::function<void()> cleanup);

  // The transport's response for this stream: on start, the writer is attached and `begin` runs
  // (it makes the agent call whose reply subscribes); keepalive_message is sent when idle. The
  // stream holds one of the sandbox's stream slots (sandbox_slots.h) until it is over; when none
  // is free the answer is resource_exhausted instead.
  static Dispatch response(std::shared_ptr<ServerStream> stream, const Rpc& rpc,
                           const google::protobuf::Message& keepalive_message,
                           std::function<void(std::shared_ptr<ServerStream>)> begin);

 private:
  void attach(std::shared_ptr<ByteStreamWriter> writer);
  void client_gone();

  const connect::Encoding encoding_;
  const std::optional<std::chrono::steady_clock::time_point> deadline_;
  mutable std::mutex mutex_;
  std::shared_ptr<ByteStreamWriter> writer_;
  std::unique_ptr<runner::Workspace::Subscription> subscription_;
  std::function<void()> cleanup_;
  SlotTable::Slot slot_;  // given back when the stream is over
  bool finished_ = false;
  bool gone_ = false;
};

// A subscription callback that reaches the stream while it lives, without keeping it alive
// (the stream holds the subscription: a strong reference back would be a cycle).
template <class F>
auto weakly(const std::shared_ptr<ServerStream>& stream, F f) {
  return [weak = std::weak_ptr<ServerStream>(stream), f = std::move(f)](auto&&... args) {
    if (auto stream = weak.lock()) f(*stream, std::forward<decltype(args)>(args)...);
  };
}

}  // namespace airlock::api::e2b::envd
