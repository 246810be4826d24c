// Byte-level text helpers for the wire: base64 for binary files, and utf-8 repair, because proto3
// strings must be valid utf-8 while programs may write any bytes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace airlock::api {

std::string base64_encode(std::string_view bytes);

// Standard alphabet with '=' padding; whitespace (line breaks of wrapped base64) is skipped.
// nullopt when anything else is wrong.
std::optional<std::string> base64_decode(std::string_view text);

bool is_valid_utf8(std::string_view bytes);

// Copies bytes, replacing each invalid utf-8 sequence with U+FFFD.
std::string to_valid_utf8(std::string_view bytes);

// Repairs a stream that arrives in chunks without breaking characters split across two chunks:
// an incomplete sequence at the end of a chunk is held back until the next one.
class Utf8Stream {
 public:
  // The repaired text of everything that can be decided so far.
  std::string feed(std::string_view chunk);
  // What is still held back, repaired; call once at the end of the stream.
  std::string finish();

 private:
  std::string pending_;
};

}  // namespace airlock::api
