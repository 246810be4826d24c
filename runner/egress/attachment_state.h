// Inside the gateway: the I/O core every attachment shares, and one attachment's state (its
// listeners, DNS socket, names, connections and counts). Everything here but the marked
// functions runs on the gateway's I/O thread.
#pragma once

#include <boost/asio.hpp>

#include <chrono>
#include <deque>
#include <future>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "runner/egress/dns.h"
#include "runner/egress/gateway.h"
#include "runner/egress/host_addresses.h"

namespace airlock::egress {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using udp = net::ip::udp;

// Threads that run the host's resolver (getaddrinfo blocks and cannot be interrupted), and how
// many lookups one attachment may run at once. More threads start while every one is busy, up
// to the most: a sandbox asking for names that never answer (10-30 s each) waits for its own
// answers, and others' lookups get threads of their own.
inline constexpr size_t kResolverThreads = 4;
inline constexpr size_t kMaxResolverThreads = 64;
inline constexpr size_t kMaxResolvingPerAttachment = 2;
// Concurrent closes share one grace period, so a few threads keep up with many runs.
inline constexpr size_t kCloserThreads = 2;
// DNS queries answered (refusal packets read) per wake-up of one attachment's socket before
// others get a turn.
inline constexpr size_t kDnsQueriesPerWakeup = 16;
inline constexpr size_t kRefusalsPerWakeup = 64;
// After a wake-up that found the most it reads, the watch rests this long: a sandbox flooding
// refusals (they cost it one syscall each) gets at most ~1300 a second of the gateway's thread;
// the kernel drops the rest, and finish() counts them.
inline constexpr std::chrono::milliseconds kRefusalFloodPause{50};
inline constexpr size_t kRefusalsPerDrain = 4096;  // read_waiting_refusals: more than fit a buffer
// After a failed accept (e.g. out of descriptors), wait this long before the next try.
inline constexpr std::chrono::milliseconds kAcceptRetryDelay{100};

class Connection;
class AttachmentState;

struct Gateway::Core {
  net::io_context io;
  std::thread thread;
  net::thread_pool resolvers{kResolverThreads};
  std::vector<std::thread> more_resolvers;  // attached to resolvers; started on the I/O thread
  size_t lookups_running = 0;               // I/O thread only
  // Closes the refusal watches: closing a packet socket waits for an RCU grace period (about
  // 10 ms here), which must not lengthen every run under egress.
  net::thread_pool closers{kCloserThreads};
  // The host's own addresses, which a broad rule does not open (read off the I/O thread).
  HostAddresses host_addresses;
  std::mutex mutex;  // guards config, running and attachments
  std::shared_ptr<const GatewayConfig> config;
  bool running = true;
  std::vector<std::weak_ptr<AttachmentState>> attachments;  // for the destructor to finish

  // Runs fn on the I/O thread and waits for it; inline on the I/O thread itself, or once the
  // thread has stopped. Any thread.
  void run_and_wait(const std::function<void()>& fn);
  // A lookup is about to be posted to resolvers (I/O thread): starts another resolver thread
  // when every one is busy. lookup_done when it has ended.
  void lookup_starting();
  void lookup_done() { --lookups_running; }
  std::shared_ptr<const GatewayConfig> current_config();  // any thread
};

class AttachmentState : public std::enable_shared_from_this<AttachmentState> {
 public:
  AttachmentState(std::shared_ptr<Gateway::Core> core, policies::Egress egress,
                  std::function<void(const Blocked&)> on_blocked);
  // Adopts the sandbox's sockets and starts accepting and answering.
  sandbox::Status start(SandboxSockets sockets);
  // Closes every socket of this attachment; idempotent. Returns the report.
  Report finish();
  bool finished() const { return finished_; }
  Usage usage() const;  // any thread
  // Reads the refusal watch's waiting packets now (kernel_refusals.h), reporting each.
  void read_waiting_refusals();

  net::io_context& io() { return core_->io; }
  net::thread_pool& resolver_threads() { return core_->resolvers; }
  // Runs start (which resolves a name, then calls resolution_done on the I/O thread) now, or
  // once fewer than kMaxResolvingPerAttachment resolutions of this attachment are running.
  void resolve_later(std::function<void()> start);
  void resolution_done();
  const policies::Egress& egress() const { return egress_; }
  std::shared_ptr<const GatewayConfig> config() { return core_->current_config(); }
  bool is_host_address(const policies::Cidr& address) {
    return core_->host_addresses.contains(address);
  }
  std::optional<std::string> synthetic_name(const Ipv4& address) const {
    return names_.name_of(address);
  }

  // A refused connection: counted, and reported when it is new.
  void refuse(const std::string& destination, const std::string& reason);
  // Admits an allowed connection to destination under max_connections; false (refused and
  // reported) beyond it.
  bool admit(const std::string& destination);
  // Counts bytes about to be forwarded; false when they would pass max_bytes, after which every
  // connection of the attachment is closed.
  bool transfer(uint64_t bytes, bool to_upstream, const std::string& destination);
  void forget(Connection* connection) { connections_.erase(connection); }

 private:
  void accept(size_t listener);
  void receive_dns();
  bool answer_one_dns();  // false when no query was waiting
  void watch_refusals();
  bool read_one_refusal();  // false when no packet was waiting
  void report_unread_refusals();
  enum class Listing { name, destination, notice };
  void report(Blocked blocked, Listing listing = Listing::destination);

  std::shared_ptr<Gateway::Core> core_;  // first: the io_context outlives the sockets below
  const policies::Egress egress_;
  const std::function<void(const Blocked&)> on_blocked_;
  struct Listener {
    uint16_t port;
    tcp::acceptor acceptor;
    net::steady_timer retry;
  };
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::optional<udp::socket> dns_;
  std::array<uint8_t, 4096> dns_in_{};
  std::optional<net::posix::stream_descriptor> refusals_;
  std::optional<net::steady_timer> refusals_pause_;
  SyntheticNames names_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;
  size_t resolving_ = 0;
  std::deque<std::function<void()>> waiting_to_resolve_;
  bool finished_ = false;
  bool connection_limit_reported_ = false;
  bool byte_limit_reached_ = false;

  mutable std::mutex counts_mutex_;  // usage_ and report_ are read from other threads
  Usage usage_;
  std::vector<Blocked> blocked_;
  std::set<std::pair<std::string, std::string>> reported_;
  size_t names_reported_ = 0;  // of reported_, DNS names
};

}  // namespace airlock::egress
