// What the runner keeps of one output stream: the first and the last bytes, with a count of what
// was dropped in between. Memory stays bounded however much the program writes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace airlock::runner {

class OutputBuffer {
 public:
  // Keeps at most kept_bytes: half from the start, half from the end.
  explicit OutputBuffer(uint64_t kept_bytes);

  void append(std::string_view data);
  uint64_t total_bytes() const { return total_; }
  uint64_t dropped_bytes() const;
  bool overflowed() const { return total_ > kept_; }

  // head + "\n[... N bytes dropped ...]\n" + tail (or everything), as valid UTF-8: bytes that are
  // not (a cut sequence at an edge, binary output) become U+FFFD.
  std::string text() const;

 private:
  uint64_t kept_;
  uint64_t head_capacity_;
  uint64_t tail_capacity_;
  std::string head_;
  std::string tail_;      // a ring of tail_capacity_ bytes once full
  size_t tail_start_ = 0;  // oldest byte of the ring
  uint64_t total_ = 0;
};

// Replaces every byte that is not part of a valid UTF-8 sequence with U+FFFD.
std::string to_valid_utf8(std::string_view bytes);
bool is_valid_utf8(std::string_view bytes);

}  // namespace airlock::runner
