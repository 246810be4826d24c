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

uint64_t OutputBuffer::dropped_bytes() const {
  return total_ - head_.size() - tail_.size();
}

std::string OutputBuffer::text() const {
  std::string tail = tail_.substr(tail_start_) + tail_.substr(0, tail_start_);
  uint64_t dropped = dropped_bytes();
  if (dropped == 0) return to_valid_utf8(head_ + tail);
  return to_valid_utf8(head_) + "\n[... " + std::to_string(dropped) +
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
