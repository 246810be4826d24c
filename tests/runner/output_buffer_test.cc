#include "runner/output_buffer.h"

#include <catch2/catch.hpp>

namespace airlock::runner {

TEST_CASE("output under the cap is kept whole") {
  OutputBuffer buffer(16);
  buffer.append("hello ");
  buffer.append("world");
  CHECK(buffer.text() == "hello world");
  CHECK(buffer.dropped_bytes() == 0);
  CHECK_FALSE(buffer.overflowed());
}

TEST_CASE("output over the cap keeps head and tail with a marker of what was cut") {
  OutputBuffer buffer(8);
  for (char c = 'a'; c <= 'z'; ++c) buffer.append(std::string(1, c));
  CHECK(buffer.total_bytes() == 26);
  CHECK(buffer.dropped_bytes() == 18);
  CHECK(buffer.overflowed());
  CHECK(buffer.text() ==
        "abcd\n[... 18 bytes dropped: output is capped at 8 bytes; the first and last halves "
        "are kept ...]\nwxyz");
}

TEST_CASE("a large chunk fills the head and leaves its own end in the tail") {
  OutputBuffer buffer(10);
  buffer.append("0123456789ABCDEFGHIJ");
  CHECK(buffer.dropped_bytes() == 10);
  CHECK(buffer.text().substr(0, 5) == "01234");
  CHECK(buffer.text().substr(buffer.text().size() - 5) == "FGHIJ");
}

TEST_CASE("invalid UTF-8 becomes U+FFFD and valid text is untouched") {
  CHECK(to_valid_utf8("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(to_valid_utf8("a\xff" "b") == "a\xef\xbf\xbd" "b");
  CHECK(to_valid_utf8("\xc3") == "\xef\xbf\xbd");           // cut sequence
  CHECK(to_valid_utf8("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  CHECK(is_valid_utf8("\xf0\x9f\x98\x80"));
  CHECK_FALSE(is_valid_utf8("\xc0\xaf"));  // overlong '/'
}

}  // namespace airlock::runner
