#include "runner/egress/http_head.h"

#include <algorithm>

namespace airlock::egress {

namespace {

bool is_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), is_tchar);
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool contains_ignoring_case(std::string_view text, std::string_view lower_needle) {
  if (lower_needle.size() > text.size()) return false;
  for (size_t i = 0; i + lower_needle.size() <= text.size(); ++i) {
    if (std::equal(lower_needle.begin(), lower_needle.end(), text.begin() + i,
                   [](char needle, char c) { return needle == lower(c); })) {
      return true;
    }
  }
  return false;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Headers the upstream never sees from the sandbox: they concern the hop, not the request.
constexpr std::string_view kHopByHop[] = {
    "connection",         "keep-alive", "proxy-connection", "proxy-authorization",
    "proxy-authenticate", "te",         "trailer",          "upgrade",
};

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

StreamKind classify_stream(std::string_view stream) {
  // What a server might read as a request goes to the strict parser, which refuses what it
  // cannot parse: the blank lines servers skip before a request line (RFC 9112, 2.2), a method
  // of letters in any case and of any length, and a method of other token characters (nginx
  // takes M-SEARCH, Go and Apache any token) on a line that names an HTTP version. Anything
  // else is another protocol, forwarded as it is: SSH's "SSH-2.0-OpenSSH_9.2p1 Debian" is a
  // token and a space too, but names no HTTP version.
  if (stream.empty()) return StreamKind::need_more;
  if (stream[0] == '\r' || stream[0] == '\n') return StreamKind::http;
  size_t end = 0;
  bool letters = true;
  for (; end < stream.size() && is_tchar(stream[end]); ++end) {
    letters = letters && is_letter(stream[end]);
  }
  // Undecided until the method (or its line) ends, but no further than kMaxUndecidedBytes:
  // what is still undecided there goes to the strict parser (which reads on incrementally), so
  // that a client sending a byte at a time costs this scan little.
  const StreamKind undecided =
      stream.size() >= kMaxUndecidedBytes ? StreamKind::http : StreamKind::need_more;
  if (end == stream.size()) return undecided;
  // Servers that are lenient take more than SP between the request line's parts (RFC 9112, 3).
  if (end == 0 || std::string_view(" \t\v\f").find(stream[end]) == std::string_view::npos) {
    return StreamKind::opaque;
  }
  if (letters) return StreamKind::http;
  // A control byte (git's "0033git-upload-pack /x.git\0host=...") is in no request line: no
  // server reads one as a request, and such clients send no line end before they wait.
  size_t line_end = end;
  for (; line_end < stream.size() && stream[line_end] != '\n'; ++line_end) {
    const auto byte = static_cast<unsigned char>(stream[line_end]);
    if ((byte < 0x20 && byte != '\t' && byte != '\r') || byte == 0x7f) return StreamKind::opaque;
  }
  if (line_end == stream.size()) return undecided;
  return contains_ignoring_case(stream.substr(end, line_end - end), "http/") ? StreamKind::http
                                                                             : StreamKind::opaque;
}

size_t request_head_size(std::string_view stream, size_t searched) {
  const size_t end = stream.find("\r\n\r\n", searched > 3 ? searched - 3 : 0);
  return end == std::string_view::npos ? 0 : end + 4;
}

std::optional<std::string> RequestHead::header(std::string_view name, bool* multiple) const {
  std::optional<std::string> found;
  if (multiple) *multiple = false;
  for (const auto& [key, value] : headers) {
    if (!iequals(key, name)) continue;
    if (found && multiple) *multiple = true;
    if (!found) found = value;
  }
  return found;
}

std::optional<RequestHead> parse_request_head(std::string_view head) {
  if (head.size() < 4 || head.substr(head.size() - 4) != "\r\n\r\n") return std::nullopt;
  head.remove_suffix(2);  // each line below then ends in CRLF
  RequestHead result;
  bool first = true;
  while (!head.empty()) {
    const size_t end = head.find("\r\n");
    if (end == std::string_view::npos) return std::nullopt;
    const std::string_view line = head.substr(0, end);
    head.remove_prefix(end + 2);
    // No bare CR or LF, no NUL or other control bytes but tab: the upstream must read the same
    // lines the gateway checked.
    for (char c : line) {
      const auto byte = static_cast<unsigned char>(c);
      if ((byte < 0x20 && c != '\t') || byte == 0x7f) return std::nullopt;
    }
    if (first) {
      first = false;
      const size_t a = line.find(' ');
      const size_t b = a == std::string_view::npos ? a : line.find(' ', a + 1);
      if (b == std::string_view::npos || line.find(' ', b + 1) != std::string_view::npos) {
        return std::nullopt;
      }
      result.method = line.substr(0, a);
      result.target = line.substr(a + 1, b - a - 1);
      result.version = line.substr(b + 1);
      if (!is_token(result.method) || result.target.empty() ||
          (result.version != "HTTP/1.1" && result.version != "HTTP/1.0")) {
        return std::nullopt;
      }
      continue;
    }
    if (line.empty() || line[0] == ' ' || line[0] == '\t') return std::nullopt;  // obs-fold
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return std::nullopt;
    result.headers.emplace_back(line.substr(0, colon), trim(line.substr(colon + 1)));
  }
  if (first) return std::nullopt;
  return result;
}

std::optional<std::optional<uint64_t>> request_body_length(const RequestHead& head) {
  bool multiple_lengths = false;
  bool multiple_encodings = false;
  const auto length = head.header("content-length", &multiple_lengths);
  const auto encoding = head.header("transfer-encoding", &multiple_encodings);
  if (multiple_lengths || multiple_encodings || (length && encoding)) return std::nullopt;
  if (encoding) {
    if (!iequals(*encoding, "chunked")) return std::nullopt;
    return std::optional<uint64_t>();
  }
  if (!length) return std::optional<uint64_t>(0);
  if (length->empty() || length->size() > 18) return std::nullopt;
  uint64_t value = 0;
  for (char c : *length) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  return std::optional<uint64_t>(value);
}

std::optional<Authority> parse_authority(std::string_view text) {
  Authority authority;
  std::string_view host = text;
  std::string_view port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
    if (host.empty() || host.find_first_not_of("0123456789abcdefABCDEF:.") != std::string::npos) {
      return std::nullopt;
    }
  } else {
    const size_t colon = text.find(':');
    if (colon != std::string_view::npos) {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
      if (port.empty()) return std::nullopt;
    }
    if (host.empty() || host.find_first_of("@/?#[]: \t") != std::string_view::npos) {
      return std::nullopt;
    }
  }
  if (!port.empty()) {
    if (port.size() > 5) return std::nullopt;
    uint32_t value = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + static_cast<uint32_t>(c - '0');
    }
    if (value == 0 || value > 65535) return std::nullopt;
    authority.port = static_cast<uint16_t>(value);
  }
  for (char c : host) authority.host += lower(c);
  if (authority.host.back() == '.') authority.host.pop_back();
  if (authority.host.empty()) return std::nullopt;
  return authority;
}

std::optional<AbsoluteTarget> parse_absolute_target(std::string_view target) {
  constexpr std::string_view kScheme = "http://";
  if (target.size() < kScheme.size() || !iequals(target.substr(0, kScheme.size()), kScheme)) {
    return std::nullopt;
  }
  target.remove_prefix(kScheme.size());
  const size_t path = target.find_first_of("/?#");
  auto authority = parse_authority(target.substr(0, path));
  if (!authority) return std::nullopt;
  AbsoluteTarget result{*authority, "/"};
  if (path != std::string_view::npos) {
    std::string_view rest = target.substr(path);
    rest = rest.substr(0, rest.find('#'));  // fragments are not sent
    result.origin_form = rest.empty() || rest[0] != '/' ? "/" + std::string(rest) : rest;
  }
  return result;
}

std::string rewrite_request_head(const RequestHead& head, std::string_view origin_target,
                                 const std::optional<std::string>& host,
                                 const std::vector<std::pair<std::string, std::string>>& set) {
  // Names the sandbox's Connection header lists are hop-by-hop too.
  std::vector<std::string> dropped(std::begin(kHopByHop), std::end(kHopByHop));
  for (const auto& [name, value] : head.headers) {
    if (!iequals(name, "connection")) continue;
    std::string_view list = value;
    while (!list.empty()) {
      const size_t comma = list.find(',');
      const std::string_view item = trim(list.substr(0, comma));
      // Never the framing: the gateway and the upstream must agree where the body ends.
      if (!item.empty() && !iequals(item, "host") && !iequals(item, "content-length") &&
          !iequals(item, "transfer-encoding")) {
        dropped.emplace_back(item);
      }
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    }
  }
  for (const auto& entry : set) dropped.push_back(entry.first);
  if (host) dropped.emplace_back("host");
  std::string out = head.method + " " + std::string(origin_target) + " " + head.version + "\r\n";
  if (host) out += "Host: " + *host + "\r\n";
  for (const auto& header : head.headers) {  // not a structured binding: clang's lambdas
    const bool drop = std::any_of(dropped.begin(), dropped.end(), [&](const std::string& d) {
      return iequals(d, header.first);
    });
    if (!drop) out += header.first + ": " + header.second + "\r\n";
  }
  for (const auto& [name, value] : set) out += name + ": " + value + "\r\n";
  out += "Connection: close\r\n\r\n";
  return out;
}

const char* http_status_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 403:
      return "Forbidden";
    case 431:
      return "Request Header Fields Too Large";
    case 502:
      return "Bad Gateway";
    default:
      return "Error";
  }
}

std::string gateway_response(int status, std::string_view reason_phrase, std::string_view body) {
  std::string text(body);
  text += "\n";
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase) +
         "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
         std::to_string(text.size()) + "\r\nConnection: close\r\n\r\n" + text;
}

}  // namespace airlock::egress
