#include "runner/egress/attachment_state.h"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "runner/egress/connection.h"
#include "runner/egress/kernel_refusals.h"
#include "runner/egress/rules.h"

namespace airlock::egress {

namespace {

constexpr const char* kUdpRefused = "only DNS to airlock's resolver leaves the sandbox over UDP";

std::string local_destination(const tcp::socket& socket) {
  ErrorCode ec;
  const tcp::endpoint local = socket.local_endpoint(ec);
  if (ec) return "?";
  return destination_text(local.address().to_string(), local.port());
}

}  // namespace

AttachmentState::AttachmentState(std::shared_ptr<Gateway::Core> core, policies::Egress egress,
                                 std::function<void(const Blocked&)> on_blocked)
    : core_(std::move(core)), egress_(std::move(egress)), on_blocked_(std::move(on_blocked)) {}

sandbox::Status AttachmentState::start(SandboxSockets sockets) {
  for (auto& [port, fd] : sockets.tcp) {
    auto listener =
        std::unique_ptr<Listener>(new Listener{port, tcp::acceptor(io()), net::steady_timer(io())});
    ErrorCode ec;
    int family = AF_INET;
    socklen_t length = sizeof family;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_DOMAIN, &family, &length);
    listener->acceptor.assign(family == AF_INET6 ? tcp::v6() : tcp::v4(), fd.get(), ec);
    if (ec) {
      return sandbox::SetupError{"egress: adopt the listener of port " + std::to_string(port),
                                 ec.value()};
    }
    fd.release();  // the acceptor owns it now
    listeners_.push_back(std::move(listener));
  }
  if (sockets.dns.valid()) {
    dns_.emplace(io());
    ErrorCode ec;
    dns_->assign(udp::v4(), sockets.dns.get(), ec);
    if (ec) return sandbox::SetupError{"egress: adopt the DNS socket", ec.value()};
    sockets.dns.release();
    const int on = 1;
    if (::setsockopt(dns_->native_handle(), IPPROTO_IP, IP_PKTINFO, &on, sizeof on) != 0) {
      return sandbox::errno_error("egress: setsockopt(IP_PKTINFO) on the DNS socket");
    }
  }
  if (sockets.refusals.valid()) {
    refusals_.emplace(io());
    refusals_pause_.emplace(io());
    ErrorCode ec;
    refusals_->assign(sockets.refusals.get(), ec);
    if (ec) return sandbox::SetupError{"egress: adopt the refusal watch", ec.value()};
    sockets.refusals.release();
  }
  for (size_t i = 0; i < listeners_.size(); ++i) accept(i);
  if (dns_) receive_dns();
  if (refusals_) watch_refusals();
  return {};
}

void AttachmentState::accept(size_t index) {
  Listener& listener = *listeners_[index];
  listener.acceptor.async_accept([self = shared_from_this(), index](ErrorCode ec,
                                                                    tcp::socket socket) {
    if (self->finished_ || ec == net::error::operation_aborted) return;
    if (ec) {  // e.g. out of descriptors: try again later instead of spinning
      Listener& failed = *self->listeners_[index];
      failed.retry.expires_after(kAcceptRetryDelay);
      failed.retry.async_wait([self, index](ErrorCode wait_ec) {
        if (!wait_ec && !self->finished_) self->accept(index);
      });
      return;
    }
    if (self->connections_.size() >= kMaxOpenConnections) {
      self->refuse(local_destination(socket), "more than " + std::to_string(kMaxOpenConnections) +
                                                  " connections open at once");
      ErrorCode ignored;
      socket.close(ignored);
    } else {
      auto connection = std::make_shared<Connection>(self, std::move(socket));
      self->connections_.emplace(connection.get(), connection);
      connection->start();
    }
    self->accept(index);
  });
}

void AttachmentState::receive_dns() {
  dns_->async_wait(udp::socket::wait_read, [self = shared_from_this()](ErrorCode ec) {
    if (self->finished_ || ec == net::error::operation_aborted) return;
    // A few datagrams per wake-up, then the other attachments' turn.
    for (size_t i = 0; i < kDnsQueriesPerWakeup && self->answer_one_dns(); ++i) {
    }
    self->receive_dns();
  });
}

// Reads one query and answers it from the address it was sent to (IP_PKTINFO): every address is
// the gateway's in the sandbox, and libc takes an answer only from the server it asked. Never
// blocks: an answer that does not fit the socket's buffer is dropped, and the client asks again.
bool AttachmentState::answer_one_dns() {
  sockaddr_in peer{};
  iovec in{dns_in_.data(), dns_in_.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in_pktinfo))] = {};
  msghdr query{};
  query.msg_name = &peer;
  query.msg_namelen = sizeof peer;
  query.msg_iov = &in;
  query.msg_iovlen = 1;
  query.msg_control = control;
  query.msg_controllen = sizeof control;
  const ssize_t n = ::recvmsg(dns_->native_handle(), &query, MSG_DONTWAIT);
  if (n < 0) return false;  // nothing more now (or an ICMP error for an earlier answer)
  std::optional<in_addr> asked;
  for (cmsghdr* c = CMSG_FIRSTHDR(&query); c; c = CMSG_NXTHDR(&query, c)) {
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(c), sizeof info);
      asked = info.ipi_addr;
    }
  }
  DnsAnswer answer = answer_dns_query(
      std::span<const uint8_t>(dns_in_.data(), static_cast<size_t>(n)), egress_, names_);
  if (answer.counted) {
    std::lock_guard lock(counts_mutex_);
    ++usage_.dns_queries;
  }
  if (answer.refused_name) {
    report({"dns " + *answer.refused_name, "not in the policy's egress list"}, Listing::name);
  }
  if (answer.over_limit_name) {
    report({"dns " + *answer.over_limit_name,
            "the run's limit of " + std::to_string(kMaxSyntheticNames) + " names is reached"},
           Listing::name);
  }
  if (answer.packet.empty()) return true;
  iovec out{answer.packet.data(), answer.packet.size()};
  alignas(cmsghdr) char reply_control[CMSG_SPACE(sizeof(in_pktinfo))] = {};
  msghdr reply{};
  reply.msg_name = &peer;
  reply.msg_namelen = query.msg_namelen;
  reply.msg_iov = &out;
  reply.msg_iovlen = 1;
  if (asked) {
    reply.msg_control = reply_control;
    reply.msg_controllen = sizeof reply_control;
    cmsghdr* c = CMSG_FIRSTHDR(&reply);
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
    in_pktinfo info{};
    info.ipi_spec_dst = *asked;
    std::memcpy(CMSG_DATA(c), &info, sizeof info);
  }
  (void)::sendmsg(dns_->native_handle(), &reply, MSG_DONTWAIT | MSG_NOSIGNAL);
  return true;
}

void AttachmentState::watch_refusals() {
  refusals_->async_wait(
      net::posix::stream_descriptor::wait_read, [self = shared_from_this()](ErrorCode ec) {
        if (self->finished_ || ec) return;
        size_t read = 0;
        while (read < kRefusalsPerWakeup && self->read_one_refusal()) ++read;
        if (read < kRefusalsPerWakeup) {
          self->watch_refusals();
          return;
        }
        self->refusals_pause_->expires_after(kRefusalFloodPause);
        self->refusals_pause_->async_wait([self](ErrorCode wait_ec) {
          if (!wait_ec && !self->finished_) self->watch_refusals();
        });
      });
}

// One packet of the sandbox's own kernel refusing what the gateway never saw (kernel_refusals.h).
bool AttachmentState::read_one_refusal() {
  std::array<uint8_t, 256> packet;
  const ssize_t n = ::recv(refusals_->native_handle(), packet.data(), packet.size(), MSG_DONTWAIT);
  if (n < 0) return false;
  const std::optional<KernelRefusal> refusal =
      parse_kernel_refusal(std::span<const uint8_t>(packet.data(), static_cast<size_t>(n)));
  if (!refusal) return true;
  const bool tcp = refusal->protocol == KernelRefusal::Protocol::tcp;
  if (reported_.size() >= kMaxBlockedReported) {  // only counted from now on
    std::lock_guard lock(counts_mutex_);
    if (tcp) ++usage_.refused;
    ++usage_.unlisted;
    return true;
  }
  std::string host = refusal->address;
  Ipv4 address{};
  if (!refusal->ipv6 && ::inet_pton(AF_INET, host.c_str(), address.data()) == 1) {
    if (auto name = names_.name_of(address)) host = *name;
  }
  const std::string destination = destination_text(host, refusal->port);
  if (!tcp) {
    // Datagrams are reported, not counted as refused connections.
    report({"udp " + destination, kUdpRefused});
  } else {
    refuse(destination, "port " + std::to_string(refusal->port) +
                            " is named by no egress rule: the gateway does not listen on it");
  }
  return true;
}

void AttachmentState::read_waiting_refusals() {
  if (finished_ || !refusals_) return;
  // Bounded: a sandbox still sending cannot keep the gateway's thread here.
  for (size_t i = 0; i < kRefusalsPerDrain && read_one_refusal(); ++i) {
  }
  report_unread_refusals();
}

// Refusals the watch could not keep (its receive buffer was full) since the last call (reading
// the kernel's counts resets them): counted, not itemised.
void AttachmentState::report_unread_refusals() {
  tpacket_stats stats{};
  socklen_t length = sizeof stats;
  if (::getsockopt(refusals_->native_handle(), SOL_PACKET, PACKET_STATISTICS, &stats, &length) !=
          0 ||
      stats.tp_drops == 0) {
    return;
  }
  // Not through report(): the same count may recur, and drops come when its cap is likely hit.
  const Blocked dropped{"refusals not itemised", std::to_string(stats.tp_drops) +
                                                     " more refused attempts: too many at once "
                                                     "to list"};
  {
    std::lock_guard lock(counts_mutex_);
    usage_.refused += stats.tp_drops;
    blocked_.push_back(dropped);
  }
  if (on_blocked_) on_blocked_(dropped);
}

void AttachmentState::resolve_later(std::function<void()> start) {
  if (resolving_ >= kMaxResolvingPerAttachment) {
    waiting_to_resolve_.push_back(std::move(start));  // at most one per open connection
    return;
  }
  ++resolving_;
  core_->lookup_starting();
  start();
}

void AttachmentState::resolution_done() {
  --resolving_;
  core_->lookup_done();
  if (waiting_to_resolve_.empty() || finished_) return;
  auto next = std::move(waiting_to_resolve_.front());
  waiting_to_resolve_.pop_front();
  ++resolving_;
  core_->lookup_starting();
  next();
}

// Each distinct refusal once, up to the cap; names (which cost a sandbox one datagram each) take
// at most half of it, so that a flood of them cannot hide the connections refused after it. The
// limits' notices come once each and are always listed. What the cap leaves out is counted, and
// finish() lists the count.
void AttachmentState::report(Blocked blocked, Listing listing) {
  if (finished_) return;
  const bool full = listing != Listing::notice &&
                    (reported_.size() >= kMaxBlockedReported ||
                     (listing == Listing::name && names_reported_ >= kMaxBlockedReported / 2));
  if (full) {
    if (!reported_.contains({blocked.destination, blocked.reason})) {
      std::lock_guard lock(counts_mutex_);
      ++usage_.unlisted;
    }
    return;
  }
  if (!reported_.emplace(blocked.destination, blocked.reason).second) return;
  if (listing == Listing::name) ++names_reported_;
  {
    std::lock_guard lock(counts_mutex_);
    blocked_.push_back(blocked);
  }
  if (on_blocked_) on_blocked_(blocked);
}

void AttachmentState::refuse(const std::string& destination, const std::string& reason) {
  {
    std::lock_guard lock(counts_mutex_);
    ++usage_.refused;
  }
  report({destination, reason});
}

bool AttachmentState::admit(const std::string& destination) {
  std::unique_lock lock(counts_mutex_);
  if (byte_limit_reached_) {
    ++usage_.refused;
    return false;
  }
  if (usage_.connections >= egress_.max_connections) {
    ++usage_.refused;
    lock.unlock();
    if (!connection_limit_reported_) {
      connection_limit_reported_ = true;
      report({destination, "the run's limit of " + std::to_string(egress_.max_connections) +
                               " connections is reached"},
             Listing::notice);
    }
    return false;
  }
  ++usage_.connections;
  return true;
}

bool AttachmentState::transfer(uint64_t bytes, bool to_upstream, const std::string& destination) {
  if (byte_limit_reached_) return false;
  {
    std::lock_guard lock(counts_mutex_);
    if (usage_.bytes_sent + usage_.bytes_received + bytes <= egress_.max_bytes) {
      (to_upstream ? usage_.bytes_sent : usage_.bytes_received) += bytes;
      return true;
    }
  }
  byte_limit_reached_ = true;
  report({destination,
          "the run's limit of " + std::to_string(egress_.max_bytes) + " bytes is reached"},
         Listing::notice);
  const auto open = connections_;
  for (const auto& [raw, weak] : open) {
    if (auto connection = weak.lock()) connection->close();
  }
  return false;
}

Report AttachmentState::finish() {
  if (!finished_) {
    read_waiting_refusals();  // what the sandbox was refused in its last moments
    uint64_t unlisted = 0;
    {
      std::lock_guard lock(counts_mutex_);
      unlisted = usage_.unlisted;
    }
    if (unlisted > 0) report(unlisted_refusals(unlisted), Listing::notice);
    finished_ = true;
    ErrorCode ignored;
    for (auto& listener : listeners_) {
      listener->acceptor.close(ignored);
      listener->retry.cancel();
    }
    if (dns_) dns_->close(ignored);
    if (refusals_) {
      refusals_pause_->cancel();
      net::post(core_->closers, [fd = refusals_->release()] { ::close(fd); });
    }
    const auto open = connections_;
    for (const auto& [raw, weak] : open) {
      if (auto connection = weak.lock()) connection->close();
    }
    connections_.clear();
    waiting_to_resolve_.clear();
  }
  std::lock_guard lock(counts_mutex_);
  return Report{blocked_, usage_};
}

Usage AttachmentState::usage() const {
  std::lock_guard lock(counts_mutex_);
  return usage_;
}

}  // namespace airlock::egress
