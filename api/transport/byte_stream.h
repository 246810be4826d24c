// A response whose body is made over time, as what it reports happens: E2B's Connect server
// streams and the code interpreter's NDJSON. The transport sends the head at once (chunked), then
// each piece the producer writes, until the producer ends it or the client goes away.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "api/transport/http_types.h"

namespace airlock::api {

// What the producer writes to. Every method may be called from any thread.
class ByteStreamWriter {
 public:
  virtual ~ByteStreamWriter() = default;
  // Queues bytes for the client. False once the stream is closed: the client went away, end()
  // was called, or the client fell more than kMaxPendingStreamBytes behind (the stream is then
  // cut, never silently thinned: the client sees the body end without its last message).
  virtual bool write(std::string bytes) = 0;
  // Sends what is queued, then ends the body. Later writes are refused.
  virtual void end() = 0;
  // True once write() would refuse.
  virtual bool closed() const = 0;
  // Bytes written and not yet sent to the client: a producer that can wait (a file download)
  // keeps this low instead of running into the cut.
  virtual size_t pending_bytes() const = 0;
  // Calls `callback` once, when pending_bytes() drops to `bytes` or below, or when the stream
  // closes (so a producer waiting to write more learns that it can stop): at once, on this
  // thread, when either is already so; else on the thread that drains or closes the stream,
  // mostly an I/O thread, so it must not block (it may write, or send a request that answers
  // later). Nothing is kept once the stream has closed.
  virtual void when_pending_at_most(size_t bytes, std::function<void()> callback) = 0;
};

struct StreamingResponse {
  HttpResponse head;  // status, content type and headers; its body is sent first, when not empty
  // Runs once the head is queued, on a worker thread, which it should not hold long: it keeps the
  // writer and writes to it from wherever its events arrive.
  std::function<void(std::shared_ptr<ByteStreamWriter>)> start;
  // Runs once if the client goes away before end(), or the stream is cut because it fell too far
  // behind (on an I/O thread: it must not block), so the producer can stop what it started.
  std::function<void()> on_client_gone;
  // Written whenever nothing else was for keepalive_interval (a zero interval: never).
  std::string keepalive;
  std::chrono::milliseconds keepalive_interval{0};
};

}  // namespace airlock::api
