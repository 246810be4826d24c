#include "runner/gateway_link.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>

namespace airlock::runner {

void GatewayHost::configure(egress::GatewayConfig config) {
  std::lock_guard lock(mutex_);
  config_ = config;
  if (gateway_) gateway_->set_config(std::move(config));
}

egress::Gateway& GatewayHost::gateway() {
  std::lock_guard lock(mutex_);
  if (!gateway_) gateway_ = egress::Gateway::start(config_);
  return *gateway_;
}

std::vector<uint16_t> gateway_ports(const policies::Egress& egress) {
  std::vector<uint16_t> ports;
  for (const policies::EgressRule& rule : egress.allow) {
    ports.insert(ports.end(), rule.ports.begin(), rule.ports.end());
  }
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  return ports;
}

std::unique_ptr<GatewayLink> link_for(GatewayHost* host, const policies::Egress& egress,
                                      std::function<void(const egress::Blocked&)> on_blocked) {
  if (!egress.enabled()) return nullptr;
  return std::make_unique<GatewayLink>(host, egress, std::move(on_blocked));
}

GatewayLink::GatewayLink(GatewayHost* host, const policies::Egress& egress,
                         std::function<void(const egress::Blocked&)> on_blocked)
    : host_(host),
      egress_(egress),
      refusals_(std::make_shared<std::pair<std::mutex, std::vector<egress::Blocked>>>()) {
  // Called on the gateway's thread; the shared list outlives a link destroyed meanwhile.
  on_blocked_ = [refusals = refusals_, then = std::move(on_blocked)](const egress::Blocked& b) {
    {
      std::lock_guard lock(refusals->first);
      // Room for the attachment's notices (limits reached, refusals not listed) past its cap.
      if (refusals->second.size() < 2 * egress::kMaxBlockedReported) {
        refusals->second.push_back(b);
      }
    }
    if (then) then(b);
  };
}

GatewayLink::~GatewayLink() { finish(); }

void GatewayLink::attach(sandbox::GatewaySockets sockets) {
  egress::SandboxSockets given;
  for (sandbox::UniqueFd& listener : sockets.tcp_listeners) {
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    if (::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0 ||
        (address.ss_family != AF_INET && address.ss_family != AF_INET6)) {
      continue;  // not ours to guess: that port stays closed
    }
    const uint16_t port = address.ss_family == AF_INET
                              ? reinterpret_cast<const sockaddr_in&>(address).sin_port
                              : reinterpret_cast<const sockaddr_in6&>(address).sin6_port;
    given.tcp.emplace_back(ntohs(port), std::move(listener));
  }
  given.dns = std::move(sockets.dns);
  given.refusals = std::move(sockets.refusals);
  std::lock_guard lock(mutex_);
  if (host_ == nullptr || attachment_) return;
  auto attached = host_->gateway().attach(egress_, std::move(given), on_blocked_);
  if (attached) {
    attachment_ = std::move(attached.value());
  } else {
    attach_error_ = attached.error().message();
  }
}

egress::Blocked GatewayLink::attach_failure() const {
  return {"every destination",
          "the egress gateway could not serve this sandbox: " + *attach_error_};
}

egress::Report GatewayLink::take() {
  egress::Report report;
  std::lock_guard lock(mutex_);
  // First the counts: reading them reports the refusals the kernel made until now.
  const egress::Usage now = attachment_ ? attachment_->usage_so_far() : taken_;
  {
    std::lock_guard refusals_lock(refusals_->first);
    report.blocked.swap(refusals_->second);
  }
  if (attach_error_) report.blocked.push_back(attach_failure());
  report.usage.connections = now.connections - taken_.connections;
  report.usage.refused = now.refused - taken_.refused;
  report.usage.bytes_sent = now.bytes_sent - taken_.bytes_sent;
  report.usage.bytes_received = now.bytes_received - taken_.bytes_received;
  report.usage.dns_queries = now.dns_queries - taken_.dns_queries;
  report.usage.unlisted = now.unlisted - taken_.unlisted;
  // The attachment lists the count when it ends; an execution in a long-lived sandbox gets
  // its own part of it now.
  if (report.usage.unlisted > 0) {
    report.blocked.push_back(egress::unlisted_refusals(report.usage.unlisted));
  }
  taken_ = now;
  return report;
}

egress::Report GatewayLink::finish() {
  std::unique_ptr<egress::Attachment> attachment;
  {
    std::lock_guard lock(mutex_);
    attachment = std::move(attachment_);
  }
  egress::Report report;
  if (attachment) {
    report = attachment->finish();
    if (on_finished_) on_finished_(report);
  }
  std::lock_guard lock(mutex_);
  if (attach_error_) {
    report.blocked.push_back(attach_failure());
    attach_error_.reset();
  }
  return report;
}

}  // namespace airlock::runner
