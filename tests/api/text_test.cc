#include "api/wire/text.h"

#include <catch2/catch.hpp>

using namespace airlock::api;

TEST_CASE("base64 round-trips every byte value") {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
  for (size_t length : {0, 1, 2, 3, 4, 255, 256}) {
    std::string part = bytes.substr(0, length);
    auto decoded = base64_decode(base64_encode(part));
    REQUIRE(decoded);
    CHECK(*decoded == part);
  }
  CHECK(base64_encode("hi") == "aGk=");
  CHECK(base64_encode("airlock") == "YWlybG9jaw==");
}

TEST_CASE("base64 decoding skips line breaks and rejects junk") {
  CHECK(base64_decode("YWly\nbG9j\r\naw==") == std::optional<std::string>("airlock"));
  CHECK(base64_decode("YWlybG9jaw") == std::optional<std::string>("airlock"));  // no padding
  CHECK_FALSE(base64_decode("YW*y"));
  CHECK_FALSE(base64_decode("Y"));         // one symbol cannot hold a byte
  CHECK_FALSE(base64_decode("aGk=aGk="));  // data after padding
  CHECK_FALSE(base64_decode("aA="));       // padding that does not complete the group
  CHECK(base64_decode("aA==") == std::optional<std::string>("h"));
}

TEST_CASE("invalid utf-8 is replaced, valid text is kept") {
  CHECK(to_valid_utf8("plain") == "plain");
  CHECK(to_valid_utf8("h\xC3\xA9") == "h\xC3\xA9");
  CHECK(to_valid_utf8("a\xFF"
                      "b") ==
        "a\xEF\xBF\xBD"
        "b");
  CHECK(to_valid_utf8("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
  CHECK(to_valid_utf8("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");  // an overlong '/'
  CHECK(is_valid_utf8("\xF0\x9F\x98\x80"));
  CHECK_FALSE(is_valid_utf8("\xF0\x9F\x98"));
}

TEST_CASE("a character split across two chunks comes out whole") {
  Utf8Stream stream;
  std::string smile = "\xF0\x9F\x98\x80";
  CHECK(stream.feed("a" + smile.substr(0, 2)) == "a");
  CHECK(stream.feed(smile.substr(2) + "b") == smile + "b");
  CHECK(stream.finish().empty());
}

TEST_CASE("an incomplete character at the end of a stream becomes a replacement") {
  Utf8Stream stream;
  CHECK(stream.feed("x\xE2\x82") == "x");
  CHECK(stream.finish() == "\xEF\xBF\xBD\xEF\xBF\xBD");
}
