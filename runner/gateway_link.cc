#include "runner/gateway_link.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

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

namespace {

// The value of field in /proc/net/snmp's table for protocol ("Tcp", "Udp"): a line of names
// followed by a line of values, both starting with "Tcp:".
std::optional<uint64_t> snmp_value(const std::string& text, const std::string& protocol,
                                   const std::string& field) {
  std::istringstream lines(text);
  std::string names, values;
  while (std::getline(lines, names)) {
    if (names.rfind(protocol + ":", 0) != 0 || !std::getline(lines, values)) continue;
    std::istringstream name_words(names), value_words(values);
    std::string name, value;
    while (name_words >> name && value_words >> value) {
      if (name == field) {
        try {
          return std::stoull(value);
        } catch (const std::exception&) {
          return std::nullopt;
        }
      }
    }
  }
  return std::nullopt;
}

std::string count_text(uint64_t count, const char* one, const char* many) {
  return std::to_string(count) + " " + (count == 1 ? one : many);
}

}  // namespace

std::optional<KernelRefusals> read_kernel_refusals(int netns_fd) {
  std::string text;
  // A thread of its own: setns moves only the calling thread, which then ends.
  std::thread reader([&] {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) return;
    std::ifstream snmp("/proc/thread-self/net/snmp");
    std::ostringstream read;
    read << snmp.rdbuf();
    text = read.str();
  });
  reader.join();
  auto tcp = snmp_value(text, "Tcp", "AttemptFails");
  auto udp = snmp_value(text, "Udp", "NoPorts");
  if (!tcp || !udp) return std::nullopt;
  return KernelRefusals{*tcp, *udp};
}

void GatewayLink::add_kernel_refusals(egress::Report& report) {
  if (!netns_.valid()) return;
  const std::optional<KernelRefusals> now = read_kernel_refusals(netns_.get());
  if (!now) return;
  const uint64_t tcp = now->tcp_connections - kernel_taken_.tcp_connections;
  const uint64_t udp = now->udp_datagrams - kernel_taken_.udp_datagrams;
  kernel_taken_ = *now;
  if (tcp > 0) {
    report.blocked.push_back(
        {"ports no rule names", count_text(tcp, "connection", "connections") +
                                    " refused inside the sandbox: the gateway listens only on "
                                    "the ports the policy's egress rules name"});
    report.usage.refused += static_cast<uint32_t>(tcp);
  }
  if (udp > 0) {
    report.blocked.push_back({"udp", count_text(udp, "datagram", "datagrams") +
                                         " to ports other than DNS (53) dropped inside the "
                                         "sandbox: only DNS leaves it over UDP"});
  }
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
      if (refusals->second.size() < egress::kMaxBlockedReported) refusals->second.push_back(b);
    }
    if (then) then(b);
  };
}

GatewayLink::~GatewayLink() { finish(); }

void GatewayLink::attach(sandbox::GatewaySockets sockets) {
  egress::SandboxSockets given;
  for (sandbox::UniqueFd& listener : sockets.tcp_listeners) {
    sockaddr_in address{};
    socklen_t length = sizeof address;
    if (::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      continue;  // not ours to guess: that port stays closed
    }
    given.tcp.emplace_back(ntohs(address.sin_port), std::move(listener));
  }
  given.dns = std::move(sockets.dns);
  std::lock_guard lock(mutex_);
  if (given.dns.valid() && !netns_.valid()) {
    const int netns = ::ioctl(given.dns.get(), SIOCGSKNS);
    if (netns >= 0) netns_ = sandbox::UniqueFd::adopt(netns);
  }
  if (host_ == nullptr || attachment_) return;
  auto attached = host_->gateway().attach(egress_, std::move(given), on_blocked_);
  if (attached) {
    attachment_ = std::move(attached.value());
  } else {
    attach_error_ = attached.error().message();
  }
}

egress::Report GatewayLink::take() {
  egress::Report report;
  {
    std::lock_guard lock(refusals_->first);
    report.blocked.swap(refusals_->second);
  }
  std::lock_guard lock(mutex_);
  if (attach_error_) {
    report.blocked.push_back({"every destination", "the egress gateway could not serve this "
                                                   "sandbox: " + *attach_error_});
  }
  if (!attachment_) return report;
  const egress::Usage now = attachment_->usage_so_far();
  report.usage.connections = now.connections - taken_.connections;
  report.usage.refused = now.refused - taken_.refused;
  report.usage.bytes_sent = now.bytes_sent - taken_.bytes_sent;
  report.usage.bytes_received = now.bytes_received - taken_.bytes_received;
  report.usage.dns_queries = now.dns_queries - taken_.dns_queries;
  taken_ = now;
  add_kernel_refusals(report);
  return report;
}

egress::Report GatewayLink::finish() {
  std::unique_ptr<egress::Attachment> attachment;
  {
    std::lock_guard lock(mutex_);
    attachment = std::move(attachment_);
  }
  egress::Report report;
  if (attachment) report = attachment->finish();
  std::lock_guard lock(mutex_);
  add_kernel_refusals(report);
  netns_.reset();
  if (attach_error_) {
    report.blocked.push_back({"every destination", "the egress gateway could not serve this run: " +
                                                       *attach_error_});
    attach_error_.reset();
  }
  return report;
}

}  // namespace airlock::runner
