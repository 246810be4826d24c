#include "runner/output_capture.h"

#include <algorithm>
#include <string>

namespace airlock::runner {

OutputCapture::OutputCapture(uint64_t kept, bool kill_on_overflow, bool stream_everything,
                             const EventSink* sink, uint64_t& sequence)
    : buffers_{OutputBuffer(kept), OutputBuffer(kept)},
      stream_limit_(stream_everything ? UINT64_MAX : kept / 2),
      kill_on_overflow_(kill_on_overflow),
      sink_(sink),
      sequence_(sequence) {}

bool OutputCapture::take(sandbox::Stream stream, std::string_view data) {
  if (stream == sandbox::Stream::control_stream || data.empty()) return !overflowed_;
  const bool is_stdout = stream == sandbox::Stream::stdout_stream;
  OutputBuffer& buffer = buffers_[is_stdout ? 0 : 1];
  const uint64_t streamed = buffer.total_bytes();
  buffer.append(data);
  if (kill_on_overflow_ && buffer.overflowed()) overflowed_ = true;
  if (sink_ && *sink_ && streamed < stream_limit_) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(data.size(), stream_limit_ - streamed));
    (*sink_)(Event{is_stdout ? EventKind::stdout_data : EventKind::stderr_data, ++sequence_,
                   std::string(data.substr(0, take))});
  }
  return !overflowed_;
}

KeptOutput OutputCapture::kept(sandbox::Stream stream) const {
  const OutputBuffer& buffer = buffers_[stream == sandbox::Stream::stdout_stream ? 0 : 1];
  return {buffer.text(), buffer.total_bytes(), buffer.dropped_bytes()};
}

}  // namespace airlock::runner
