// What the runner keeps of one output stream: the first and the last bytes, with a count of what
// was dropped in between. Memory stays bounded however much the program writes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace airlock::runner {

class OutputBuffer {
 public:
  // Keeps at most kept_bytes: half from the start, half from the end.
  explicit OutputBuffer(uint64_t kept_bytes);

  void append(std::string_view data);
  uint64_t total_bytes() const { return total_; }
  uint64_t dropped_bytes() const;
  bool overflowed() const { return total_ > kept_; }

  // head + "\n[... N bytes dropped ...]\n" + tail (or everything), as valid UTF-8. The cuts fall
  // between characters, at a line break when one is near; bytes that are not UTF-8 (binary
  // output) become U+FFFD. dropped_bytes() counts what the text does not show.
  std::string text() const;

 private:
  // The head and tail as shown, after moving the cuts to character or line boundaries.
  std::pair<std::string_view, std::string> shown() const;

  uint64_t kept_;
  uint64_t head_capacity_;
  uint64_t tail_capacity_;
  std::string head_;
  std::string tail_;      // a ring of tail_capacity_ bytes once full
  size_t tail_start_ = 0;  // oldest byte of the ring
  uint64_t total_ = 0;
};

// Where a kept head ends / a kept tail starts so that no UTF-8 character is split and, when a line
// break is near the cut, whole lines are kept.
size_t head_cut(std::string_view head);
size_t tail_start(std::string_view tail);

// text itself when it fits budget bytes; else its head and tail (cut as above) around a marker
// "[... N bytes dropped: WHY ...]".
std::string keep_head_and_tail(std::string_view text, uint64_t budget, std::string_view why);

// Replaces every byte that is not part of a valid UTF-8 sequence with U+FFFD.
std::string to_valid_utf8(std::string_view bytes);
bool is_valid_utf8(std::string_view bytes);

}  // namespace airlock::runner
