// HTTP/1.x request heads as the gateway sees them: recognise one at the start of a stream, parse
// it strictly, check its Host, and rewrite it for the upstream (one request per connection,
// no hop-by-hop or proxy headers, origin-form, the rule's injected headers).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace airlock::egress {

// The longest request head the gateway reads before refusing it (431).
inline constexpr size_t kMaxRequestHeadBytes = 64 * 1024;
// How much of a stream classify_stream reads before it takes what is still undecided as HTTP.
inline constexpr size_t kMaxUndecidedBytes = 2048;

enum class StreamKind { need_more, http, opaque };

// What the first bytes of a (non-TLS) stream are: an HTTP/1.x request once a server might read
// them as one (a method of letters and a space, or any token on a line naming an HTTP version);
// opaque once no server would; need_more while they might become either.
StreamKind classify_stream(std::string_view stream);

// The size of the head (through the blank line), or 0 while it has not all arrived. searched:
// how much of stream an earlier call already searched, so that a head arriving a byte at a time
// costs linear, not quadratic, time.
size_t request_head_size(std::string_view stream, size_t searched = 0);

struct RequestHead {
  std::string method;
  std::string target;
  std::string version;                                       // "HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> headers;  // in order, values trimmed
  // The value of the only header named name (case-insensitive); nothing when absent; "multiple"
  // set when there is more than one.
  std::optional<std::string> header(std::string_view name, bool* multiple = nullptr) const;
};

// Parses a complete head (request line, header lines, blank line); nothing when it is not a
// well-formed HTTP/1.0 or 1.1 request (bare LF, obsolete line folding, bad tokens, ...).
std::optional<RequestHead> parse_request_head(std::string_view head);

struct Authority {
  std::string host;  // lower-case; an IPv6 literal without brackets
  std::optional<uint16_t> port;
};

// How the request's body is framed: its length (0 without Content-Length or Transfer-Encoding),
// or nothing inside for "Transfer-Encoding: chunked". Nothing at all when the framing is
// ambiguous (both headers, several Content-Lengths, an encoding other than chunked): such
// requests are how smuggling starts, and are refused.
std::optional<std::optional<uint64_t>> request_body_length(const RequestHead& head);

// "host", "host:port", "[v6]:port"; nothing when malformed.
std::optional<Authority> parse_authority(std::string_view text);

struct AbsoluteTarget {
  Authority authority;
  std::string origin_form;  // "/path?query", "/" when the path is empty
};

// "http://host[:port]/path"; nothing for any other form or scheme.
std::optional<AbsoluteTarget> parse_absolute_target(std::string_view target);

// The head the upstream gets: origin-form target, hop-by-hop and proxy headers dropped (with
// those Connection lists), headers named in set replaced by set's values, Host set to host when
// given, and "Connection: close".
std::string rewrite_request_head(const RequestHead& head, std::string_view origin_target,
                                 const std::optional<std::string>& host,
                                 const std::vector<std::pair<std::string, std::string>>& set);

// A complete response the gateway itself writes (403, 502, ...): a short text body, closed after.
std::string gateway_response(int status, std::string_view reason_phrase, std::string_view body);

// "Forbidden" for 403 and the like, for the statuses the gateway writes.
const char* http_status_phrase(int status);

bool iequals(std::string_view a, std::string_view b);

}  // namespace airlock::egress
