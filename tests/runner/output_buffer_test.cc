#include "runner/output_buffer.h"

#include <vector>

#include <catch2/catch.hpp>

#include "runner/output_capture.h"

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

TEST_CASE("a cut never splits a UTF-8 character") {
  // "é" is two bytes: a 7-byte head would end inside the fourth one.
  OutputBuffer buffer(14);
  buffer.append("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" + std::string(40, '-') +
                "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
  const std::string text = buffer.text();
  CHECK(is_valid_utf8(text));
  CHECK(text.find("\xef\xbf\xbd") == std::string::npos);  // no U+FFFD from a cut character
  CHECK(text.starts_with("\xc3\xa9\xc3\xa9\xc3\xa9\n[... "));
  CHECK(text.ends_with("...]\n\xc3\xa9\xc3\xa9\xc3\xa9"));
  CHECK(buffer.dropped_bytes() == buffer.total_bytes() - 12);
}

TEST_CASE("a cut near a line break keeps whole lines") {
  OutputBuffer buffer(400);
  for (int i = 0; i < 100; ++i) buffer.append("line " + std::to_string(i) + "\n");
  const std::string text = buffer.text();
  // The head's cap falls inside "line 26"; the tail's cap inside or at the start of a line.
  CHECK(text.starts_with("line 0\nline 1\n"));
  CHECK(text.find("line 25\n[... ") != std::string::npos);
  CHECK(text.find("...]\nline ") != std::string::npos);
  CHECK(text.ends_with("line 98\nline 99\n"));
}

TEST_CASE("keep_head_and_tail fits a text into a budget at line and character boundaries") {
  CHECK(keep_head_and_tail("short", 100, "why") == "short");
  std::string lines;
  for (int i = 0; i < 1000; ++i) lines += "row " + std::to_string(i) + " \xe2\x9c\x93\n";
  const std::string kept = keep_head_and_tail(lines, 200, "over the budget");
  CHECK(kept.size() < 300);
  CHECK(is_valid_utf8(kept));
  CHECK(kept.starts_with("row 0 \xe2\x9c\x93\n"));
  CHECK(kept.find("\n\n[... ") == std::string::npos);  // no blank line before the marker
  CHECK(kept.find(" bytes dropped: over the budget ...]\nrow ") != std::string::npos);
  CHECK(kept.ends_with("row 999 \xe2\x9c\x93\n"));
}

TEST_CASE("invalid UTF-8 becomes U+FFFD and valid text is untouched") {
  CHECK(to_valid_utf8("caf\xc3\xa9") == "caf\xc3\xa9");
  CHECK(to_valid_utf8("a\xff" "b") == "a\xef\xbf\xbd" "b");
  CHECK(to_valid_utf8("\xc3") == "\xef\xbf\xbd");           // cut sequence
  CHECK(to_valid_utf8("\xed\xa0\x80") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  CHECK(is_valid_utf8("\xf0\x9f\x98\x80"));
  CHECK_FALSE(is_valid_utf8("\xc0\xaf"));  // overlong '/'
}

// The output events a capture sent, in order.
struct Recorded {
  std::vector<Event> events;
  EventSink sink = [this](const Event& event) { events.push_back(event); };
};

TEST_CASE("streaming stops at half the kept bytes of a stream unless everything is streamed") {
  using sandbox::Stream;
  Recorded recorded;
  uint64_t sequence = 0;
  SECTION("capped") {
    OutputCapture capture(8, false, false, &recorded.sink, sequence);
    CHECK(capture.take(Stream::stdout_stream, "abc"));
    CHECK(capture.take(Stream::stdout_stream, "defg"));  // only "d" is still under 8 / 2
    CHECK(capture.take(Stream::stdout_stream, "hij"));   // nothing more streams
    CHECK(capture.take(Stream::stderr_stream, "xyz"));   // stderr counts on its own
    REQUIRE(recorded.events.size() == 3);
    CHECK(recorded.events[0].kind == EventKind::stdout_data);
    CHECK(recorded.events[0].data == "abc");
    CHECK(recorded.events[1].data == "d");
    CHECK(recorded.events[2].kind == EventKind::stderr_data);
    CHECK(recorded.events[2].data == "xyz");
    CHECK(recorded.events[2].sequence == 3);
    CHECK(sequence == 3);
    // What is kept is the head and tail all the same, not what streamed.
    KeptOutput out = capture.kept(Stream::stdout_stream);
    CHECK(out.total_bytes == 10);
    CHECK(out.dropped_bytes == 2);
    CHECK(capture.kept(Stream::stderr_stream).text == "xyz");
  }
  SECTION("everything") {
    OutputCapture capture(8, false, true, &recorded.sink, sequence);
    CHECK(capture.take(Stream::stdout_stream, "abcdefghij"));
    CHECK(capture.take(Stream::stdout_stream, "klm"));
    REQUIRE(recorded.events.size() == 2);
    CHECK(recorded.events[0].data == "abcdefghij");
    CHECK(recorded.events[1].data == "klm");
    CHECK(capture.kept(Stream::stdout_stream).dropped_bytes == 5);
  }
}

TEST_CASE("with kill on overflow the capture says stop once a stream overflows") {
  using sandbox::Stream;
  uint64_t sequence = 0;
  SECTION("kill") {
    OutputCapture capture(8, true, false, nullptr, sequence);
    CHECK(capture.take(Stream::stdout_stream, "12345678"));  // exactly what is kept
    CHECK(capture.take(Stream::stderr_stream, "1234"));
    CHECK_FALSE(capture.take(Stream::stderr_stream, "56789"));
    // The run is over: whatever comes after, on either stream, is still a stop.
    CHECK_FALSE(capture.take(Stream::stdout_stream, "z"));
    CHECK(capture.kept(Stream::stderr_stream).total_bytes == 9);
    CHECK(sequence == 0);  // no sink, no events
  }
  SECTION("keep") {
    OutputCapture capture(8, false, false, nullptr, sequence);
    CHECK(capture.take(Stream::stdout_stream, std::string(100, 'x')));
    CHECK(capture.take(Stream::stdout_stream, "more"));
  }
}

}  // namespace airlock::runner
