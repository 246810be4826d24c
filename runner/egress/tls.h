// Reads the server name (SNI) out of a TLS ClientHello, by hand and defensively: the bytes come
// from the sandbox and may arrive in pieces, across several TLS records.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace airlock::egress {

// The most ClientHello bytes the gateway waits for before deciding (records included).
inline constexpr size_t kMaxClientHelloBytes = 16 * 1024;

struct ClientHelloScan {
  enum class Status { need_more, malformed, complete };
  Status status = Status::need_more;
  std::optional<std::string> server_name;  // the host_name SNI entry, when complete and present
};

// True when stream's first byte makes it a TLS handshake record.
inline bool starts_like_tls(std::string_view stream) {
  return !stream.empty() && static_cast<unsigned char>(stream[0]) == 0x16;
}

// Scans the first bytes of a stream that starts like TLS. need_more: a prefix of a possible
// ClientHello shorter than kMaxClientHelloBytes; malformed: anything else that is not one.
ClientHelloScan scan_client_hello(std::string_view stream);

// A ClientHello record with the given SNI (none when empty), for tests and tools.
std::string make_client_hello(const std::string& server_name);

}  // namespace airlock::egress
