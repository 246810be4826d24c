// What a run keeps and streams of its stdout and stderr: head and tail of each (OutputBuffer),
// output events up to half the kept bytes of a stream (or all of it), and the policy's
// kill-on-overflow. One-shot runs (Collector) and interpreters' executions both capture this way.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "runner/output_buffer.h"
#include "runner/runner.h"
#include "sandbox/sandbox.h"

namespace airlock::runner {

class OutputCapture {
 public:
  // kept: bytes kept per stream. kill_on_overflow: the policy's output_overflow is kill.
  // stream_everything: every byte becomes an event, not only the first kept/2 of a stream.
  // sink (may be null or empty) gets the events, numbered by ++sequence.
  OutputCapture(uint64_t kept, bool kill_on_overflow, bool stream_everything, const EventSink* sink,
                uint64_t& sequence);

  // Takes a chunk of stdout or stderr (control_stream is not output: ignored). False once the
  // run should stop: kill_on_overflow and a stream has written more than it keeps.
  bool take(sandbox::Stream stream, std::string_view data);
  // What was kept of a stream so far.
  KeptOutput kept(sandbox::Stream stream) const;

 private:
  std::array<OutputBuffer, 2> buffers_;
  uint64_t stream_limit_;
  bool kill_on_overflow_;
  bool overflowed_ = false;
  const EventSink* sink_;
  uint64_t& sequence_;
};

}  // namespace airlock::runner
