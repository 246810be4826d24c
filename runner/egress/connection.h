// One connection a sandbox opened through the gateway: where it goes, whether the policy allows
// it, what its first bytes say (TLS SNI, HTTP Host), then the upstream and the copying both ways.
#pragma once

#include "runner/egress/attachment_state.h"

namespace airlock::egress {

// How long the gateway waits for a client's first bytes before taking the stream as opaque (a
// protocol in which the server speaks first).
inline constexpr std::chrono::milliseconds kFirstBytesWait{250};
// The whole request head (or ClientHello, or proxy request) must arrive within this.
inline constexpr std::chrono::milliseconds kHeadTimeout{10000};
// After the gateway's own response, how long it lets the client read it before closing.
inline constexpr std::chrono::milliseconds kLingerAfterResponse{1000};
inline constexpr size_t kCopyBufferBytes = 16 * 1024;
// What a plain-HTTP client may send after its one request before it is no longer read.
inline constexpr uint64_t kMaxDroppedAfterBody = 64 * 1024;

using Clock = std::chrono::steady_clock;
using ErrorCode = boost::system::error_code;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(std::shared_ptr<AttachmentState> owner, tcp::socket client);
  ~Connection();
  void start();
  // Closes both sides at once; idempotent.
  void close();

 private:
  // late_sniffing: the upstream was opened after kFirstBytesWait of silence, and the client's
  // first bytes, if they come before the server's, are checked before they are forwarded.
  enum class Phase { proxy_request, sniffing, connecting, late_sniffing, copying, closing };

  void read_client();
  void on_client_bytes();
  void on_proxy_request();
  bool set_destination(const std::string& host, uint16_t port);
  void start_sniffing();
  void on_sniffed();
  void check_tls();
  void check_http();
  void resolve();
  void on_resolved(const std::vector<tcp::endpoint>& found);
  void connect(std::vector<tcp::endpoint> endpoints);
  void checks_passed();  // resolve and connect, or forward when already connected
  void after_connect();
  void start_copying();
  void start_downstream();
  void copy(tcp::socket& from, tcp::socket& to, std::array<char, kCopyBufferBytes>& buffer,
            bool to_upstream);
  void watch_idle();
  // Reports a refusal; answers an HTTP client with status and the reason, closes the rest.
  // An upstream that cannot be reached: 502 to an HTTP client, else just closed. Not a refusal.
  void fail(const std::string& text);
  void respond_and_close(std::string response);
  void drain();
  // The upstream is done with a client no longer read: once the client has read the response
  // (or the linger ends), close; closing at once, with its bytes unread, would reset it.
  void linger_then_close();
  void refuse(const std::string& reason, int status);
  void arm(std::chrono::steady_clock::duration after, std::function<void()> on_expiry);
  std::string destination() const;

  std::shared_ptr<AttachmentState> owner_;
  std::shared_ptr<const GatewayConfig> config_;
  tcp::socket client_;
  tcp::socket upstream_;
  net::steady_timer timer_;
  uint64_t timer_generation_ = 0;
  Phase phase_ = Phase::sniffing;
  bool closed_ = false;
  bool read_pending_ = false;
  bool http_ = false;  // the client speaks HTTP: refusals are answered with a response
  bool client_done_ = false;
  bool upstream_done_ = false;
  bool connected_ = false;
  bool sniff_after_connect_ = false;
  bool upstream_spoke_ = false;
  bool downstream_started_ = false;
  bool connect_timed_out_ = false;
  std::chrono::steady_clock::time_point head_deadline_;
  std::chrono::steady_clock::time_point last_activity_;

  std::string host_;                           // a name, or an address's text
  std::optional<policies::Cidr> raw_address_;  // set when host_ is an address
  uint16_t port_ = 0;
  const policies::EgressRule* rule_ = nullptr;  // the allowing rule, in owner_->egress()
  std::string head_;  // client bytes read before copying starts (rewritten when HTTP)
  // Set for a plain HTTP request with a known body length: the body bytes still to forward.
  std::optional<uint64_t> request_body_left_;
  uint64_t dropped_after_body_ = 0;  // what the client sent after its request
  bool client_ignored_ = false;      // it sent too much of it: no longer read
  size_t head_searched_ = 0;  // how much of head_ was searched for a head's end
  std::string response_;      // what the gateway itself writes to the client
  std::array<char, kCopyBufferBytes> up_buffer_{};
  std::array<char, kCopyBufferBytes> down_buffer_{};
};

}  // namespace airlock::egress
