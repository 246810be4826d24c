#include "runner/egress/tls.h"

#include <cstdint>

namespace airlock::egress {

namespace {

constexpr uint8_t kRecordHandshake = 0x16;
constexpr uint8_t kHandshakeClientHello = 0x01;
constexpr uint16_t kExtensionServerName = 0x0000;
constexpr uint8_t kNameTypeHostName = 0x00;
constexpr size_t kRecordHeaderSize = 5;
constexpr size_t kMaxRecordPayload = 16384 + 2048;

// A bounds-checked reader over a byte string: every read fails instead of running past the end.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool u8(size_t& out) {
    if (data_.size() < 1) return false;
    out = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return true;
  }
  bool u16(size_t& out) {
    if (data_.size() < 2) return false;
    out = static_cast<size_t>(static_cast<uint8_t>(data_[0]) << 8 | static_cast<uint8_t>(data_[1]));
    data_.remove_prefix(2);
    return true;
  }
  bool bytes(size_t n, std::string_view& out) {
    if (data_.size() < n) return false;
    out = data_.substr(0, n);
    data_.remove_prefix(n);
    return true;
  }
  bool skip(size_t n) {
    std::string_view ignored;
    return bytes(n, ignored);
  }
  // A vector with a 1- or 2-byte length prefix.
  bool vector(int length_size, std::string_view& out) {
    size_t n = 0;
    if (!(length_size == 1 ? u8(n) : u16(n))) return false;
    return bytes(n, out);
  }
  bool empty() const { return data_.empty(); }

 private:
  std::string_view data_;
};

// The SNI host name of a complete ClientHello body (after the 4-byte handshake header).
ClientHelloScan parse_hello_body(std::string_view body) {
  ClientHelloScan malformed{ClientHelloScan::Status::malformed, std::nullopt};
  Reader reader(body);
  std::string_view session_id, cipher_suites, compression, extensions;
  if (!reader.skip(2 + 32) || !reader.vector(1, session_id) || session_id.size() > 32 ||
      !reader.vector(2, cipher_suites) || cipher_suites.size() % 2 != 0 ||
      !reader.vector(1, compression) || compression.empty()) {
    return malformed;
  }
  ClientHelloScan result{ClientHelloScan::Status::complete, std::nullopt};
  if (reader.empty()) return result;  // no extensions at all
  if (!reader.vector(2, extensions) || !reader.empty()) return malformed;
  Reader ext(extensions);
  bool seen_server_name = false;
  while (!ext.empty()) {
    size_t type = 0;
    std::string_view value;
    if (!ext.u16(type) || !ext.vector(2, value)) return malformed;
    if (type != kExtensionServerName) continue;
    if (seen_server_name) return malformed;  // a second SNI extension: ambiguous on purpose
    seen_server_name = true;
    Reader names(value);
    std::string_view list;
    if (!names.vector(2, list) || !names.empty()) return malformed;
    Reader entries(list);
    while (!entries.empty()) {
      size_t name_type = 0;
      std::string_view name;
      if (!entries.u8(name_type) || !entries.vector(2, name)) return malformed;
      if (name_type != kNameTypeHostName) continue;
      if (result.server_name || name.empty()) return malformed;  // one host_name, not empty
      result.server_name = std::string(name);
    }
  }
  return result;
}

}  // namespace

ClientHelloScan scan_client_hello(std::string_view stream) {
  const ClientHelloScan need_more{ClientHelloScan::Status::need_more, std::nullopt};
  const ClientHelloScan malformed{ClientHelloScan::Status::malformed, std::nullopt};
  // Joins the handshake bytes of consecutive records until the ClientHello message is whole.
  std::string handshake;
  size_t at = 0;
  while (true) {
    if (handshake.size() >= 4) {
      if (static_cast<uint8_t>(handshake[0]) != kHandshakeClientHello) return malformed;
      const size_t length = static_cast<size_t>(static_cast<uint8_t>(handshake[1]) << 16 |
                                                static_cast<uint8_t>(handshake[2]) << 8 |
                                                static_cast<uint8_t>(handshake[3]));
      if (length + 4 > kMaxClientHelloBytes) return malformed;
      if (handshake.size() >= length + 4) {
        return parse_hello_body(std::string_view(handshake).substr(4, length));
      }
    }
    if (at >= kMaxClientHelloBytes) return malformed;
    if (stream.size() - at < kRecordHeaderSize) {
      // A record header still arriving: its type byte, when there, must be a handshake's.
      if (stream.size() > at && static_cast<uint8_t>(stream[at]) != kRecordHandshake) {
        return malformed;
      }
      return need_more;
    }
    const auto byte = [&](size_t i) { return static_cast<uint8_t>(stream[at + i]); };
    const size_t record_length = static_cast<size_t>(byte(3) << 8 | byte(4));
    if (byte(0) != kRecordHandshake || byte(1) != 3 || record_length == 0 ||
        record_length > kMaxRecordPayload) {
      return malformed;
    }
    const size_t available = stream.size() - at - kRecordHeaderSize;
    if (available < record_length) {
      if (at + kRecordHeaderSize + record_length > kMaxClientHelloBytes) return malformed;
      // Only a partial record: enough, maybe, to finish the message already.
      handshake.append(stream.substr(at + kRecordHeaderSize, available));
      if (handshake.size() >= 4) {
        const size_t length = static_cast<size_t>(static_cast<uint8_t>(handshake[1]) << 16 |
                                                  static_cast<uint8_t>(handshake[2]) << 8 |
                                                  static_cast<uint8_t>(handshake[3]));
        if (static_cast<uint8_t>(handshake[0]) != kHandshakeClientHello ||
            length + 4 > kMaxClientHelloBytes) {
          return malformed;
        }
      }
      return need_more;
    }
    handshake.append(stream.substr(at + kRecordHeaderSize, record_length));
    at += kRecordHeaderSize + record_length;
  }
}

std::string make_client_hello(const std::string& server_name) {
  const auto u16 = [](size_t value) {
    return std::string{static_cast<char>(value >> 8), static_cast<char>(value & 0xff)};
  };
  std::string body = "\x03\x03" + std::string(32, '\x11');  // version, random
  body += '\0';                                             // no session id
  body += u16(2) + std::string("\x13\x01", 2);              // one cipher suite
  body += std::string("\x01\x00", 2);                       // null compression only
  std::string extensions;
  if (!server_name.empty()) {
    const std::string entry = std::string(1, '\0') + u16(server_name.size()) + server_name;
    const std::string list = u16(entry.size()) + entry;
    extensions += u16(kExtensionServerName) + u16(list.size()) + list;
  }
  extensions += u16(0x002b) + u16(3) + std::string("\x02\x03\x04", 3);  // supported_versions
  body += u16(extensions.size()) + extensions;
  const std::string handshake =
      std::string(1, '\x01') + std::string(1, '\0') + u16(body.size()) + body;
  return std::string("\x16\x03\x01", 3) + u16(handshake.size()) + handshake;
}

}  // namespace airlock::egress
