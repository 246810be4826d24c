#include "runner/output_buffer.h"

#include <algorithm>

namespace airlock::runner {

OutputBuffer::OutputBuffer(uint64_t kept_bytes)
    : kept_(kept_bytes), head_capacity_(kept_bytes / 2), tail_capacity_(kept_bytes - kept_bytes / 2) {}

void OutputBuffer::append(std::string_view data) {
  total_ += data.size();
  if (head_.size() < head_capacity_) {
    size_t take = std::min<size_t>(data.size(), head_capacity_ - head_.size());
    head_.append(data.substr(0, take));
    data.remove_prefix(take);
  }
  if (tail_capacity_ == 0 || data.empty()) return;
  if (data.size() >= tail_capacity_) {
    tail_.assign(data.substr(data.size() - tail_capacity_));
    tail_start_ = 0;
    return;
  }
  if (tail_.size() < tail_capacity_) {
    size_t take = std::min<size_t>(data.size(), tail_capacity_ - tail_.size());
    tail_.append(data.substr(0, take));
    data.remove_prefix(take);
  }
  for (char byte : data) {  // the ring is full: overwrite the oldest bytes
    tail_[tail_start_] = byte;
    tail_start_ = (tail_start_ + 1) % tail_capacity_;
  }
}

namespace {

// How far back from a cut we look for a line break: a line boundary is worth dropping up to a
// quarter of the kept text, never more than 1 KiB.
size_t line_window(size_t size) {
  return std::min<size_t>(size / 4, 1024);
}

bool is_continuation(char byte) {
  return (static_cast<unsigned char>(byte) & 0xC0) == 0x80;
}

}  // namespace

size_t head_cut(std::string_view head) {
  if (size_t newline = head.rfind('\n');
      newline != std::string_view::npos && head.size() - (newline + 1) <= line_window(head.size())) {
    return newline + 1;
  }
  // Back over the continuation bytes of the last character; keep it only when it is complete.
  size_t i = head.size();
  size_t back = 0;
  while (i > 0 && back < 3 && is_continuation(head[i - 1])) {
    --i;
    ++back;
  }
  if (i == 0) return head.size();  // no lead byte at all: binary, repaired to U+FFFD later
  const unsigned char lead = static_cast<unsigned char>(head[i - 1]);
  const size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return back + 1 >= length ? head.size() : i - 1;
}

size_t tail_start(std::string_view tail) {
  if (size_t newline = tail.find('\n');
      newline != std::string_view::npos && newline < line_window(tail.size())) {
    return newline + 1;
  }
  size_t start = 0;
  while (start < tail.size() && start < 3 && is_continuation(tail[start])) ++start;
  return start;
}

std::string keep_head_and_tail(std::string_view text, uint64_t budget, std::string_view why) {
  if (text.size() <= budget) return std::string(text);
  std::string_view head = text.substr(0, budget / 2);
  std::string_view tail = text.substr(text.size() - (budget - budget / 2));
  head = head.substr(0, head_cut(head));
  tail = tail.substr(tail_start(tail));
  const uint64_t dropped = text.size() - head.size() - tail.size();
  return std::string(head) + (head.ends_with('\n') ? "" : "\n") + "[... " +
         std::to_string(dropped) + " bytes dropped: " +
         std::string(why) + " ...]\n" + std::string(tail);
}

std::pair<std::string_view, std::string> OutputBuffer::shown() const {
  std::string tail = tail_.substr(tail_start_) + tail_.substr(0, tail_start_);
  if (total_ == head_.size() + tail_.size()) return {head_, std::move(tail)};  // nothing cut
  std::string_view head(head_);
  head = head.substr(0, head_cut(head));
  return {head, tail.substr(tail_start(tail))};
}

uint64_t OutputBuffer::dropped_bytes() const {
  auto [head, tail] = shown();
  return total_ - head.size() - tail.size();
}

std::string OutputBuffer::text() const {
  auto [head, tail] = shown();
  uint64_t dropped = total_ - head.size() - tail.size();
  if (dropped == 0) return to_valid_utf8(std::string(head) + tail);
  return to_valid_utf8(head) + (head.ends_with('\n') ? "" : "\n") + "[... " +
         std::to_string(dropped) +
         " bytes dropped: output is capped at " + std::to_string(kept_) +
         " bytes; the first and last halves are kept ...]\n" + to_valid_utf8(tail);
}

namespace {

// Length of the valid UTF-8 sequence at the start of bytes, or 0.
size_t sequence_length(std::string_view bytes) {
  auto byte = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
  unsigned char lead = byte(0);
  size_t length;
  uint32_t min;
  if (lead < 0x80) return 1;
  if ((lead & 0xe0) == 0xc0) { length = 2; min = 0x80; }
  else if ((lead & 0xf0) == 0xe0) { length = 3; min = 0x800; }
  else if ((lead & 0xf8) == 0xf0) { length = 4; min = 0x10000; }
  else return 0;
  if (bytes.size() < length) return 0;
  uint32_t code = lead & (0x7f >> length);
  for (size_t i = 1; i < length; ++i) {
    if ((byte(i) & 0xc0) != 0x80) return 0;
    code = (code << 6) | (byte(i) & 0x3f);
  }
  if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return 0;
  return length;
}

}  // namespace

std::string to_valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  while (!bytes.empty()) {
    size_t length = sequence_length(bytes);
    if (length == 0) {
      out += "\xef\xbf\xbd";
      bytes.remove_prefix(1);
    } else {
      out.append(bytes.substr(0, length));
      bytes.remove_prefix(length);
    }
  }
  return out;
}

bool is_valid_utf8(std::string_view bytes) {
  while (!bytes.empty()) {
    size_t length = sequence_length(bytes);
    if (length == 0) return false;
    bytes.remove_prefix(length);
  }
  return true;
}

}  // namespace airlock::runner
