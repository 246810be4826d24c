// A run's link to the egress gateway: the ports its sandbox listens on for the gateway, the
// attachment made when the sandbox hands over its sockets, and the report when the run ends.
// Every kind of sandbox the runner starts under an egress policy goes through one of these.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "policies/egress.h"
#include "runner/egress/gateway.h"
#include "sandbox/sandbox.h"

namespace airlock::runner {

// The gateway, started on first use: one per process, shared by every run. Thread-safe.
class GatewayHost {
 public:
  explicit GatewayHost(egress::GatewayConfig config = {}) : config_(std::move(config)) {}
  // Replaces hosts, secrets and timeouts (a config reload); new connections use them.
  void configure(egress::GatewayConfig config);
  egress::Gateway& gateway();

 private:
  std::mutex mutex_;
  egress::GatewayConfig config_;
  std::unique_ptr<egress::Gateway> gateway_;
};

// The TCP ports the sandbox listens on for the gateway: every rule's, each once, ascending.
std::vector<uint16_t> gateway_ports(const policies::Egress& egress);

class GatewayLink;
// A link for a sandbox under egress (its spec's gateway_ports are gateway_ports(egress)); null
// when egress is off.
std::unique_ptr<GatewayLink> link_for(
    GatewayHost* host, const policies::Egress& egress,
    std::function<void(const egress::Blocked&)> on_blocked = nullptr);

class GatewayLink {
 public:
  // host may be null only when egress is off (the link then does nothing).
  GatewayLink(GatewayHost* host, const policies::Egress& egress,
              std::function<void(const egress::Blocked&)> on_blocked = nullptr);
  ~GatewayLink();

  // From OutputHandler::on_gateway_sockets, on the sandbox's monitor thread.
  void attach(sandbox::GatewaySockets sockets);
  // Once the sandbox has ended: what the gateway refused and counted. Empty when nothing was
  // attached. A failure to attach is reported in blocked (the run had no network).
  egress::Report finish();
  // Called once, by the finish() that ends an attachment, with its report: for a sandbox whose
  // network no result reports (an E2B workspace's). Set before the sandbox starts.
  void on_finished(std::function<void(const egress::Report&)> then) {
    on_finished_ = std::move(then);
  }
  // While the sandbox lives (a session's executions): what the gateway refused and counted since
  // the last call (the first: since attach). Thread-safe.
  egress::Report take();

 private:
  GatewayHost* host_;
  policies::Egress egress_;
  std::function<void(const egress::Blocked&)> on_blocked_;
  std::function<void(const egress::Report&)> on_finished_;
  std::mutex mutex_;
  std::unique_ptr<egress::Attachment> attachment_;
  std::optional<std::string> attach_error_;
  // For take(): refusals as they happen (the gateway reports each distinct one once), and the
  // usage the last take() returned up to.
  std::shared_ptr<std::pair<std::mutex, std::vector<egress::Blocked>>> refusals_;
  egress::Usage taken_;
  egress::Blocked attach_failure() const;  // attach_error_ as a refusal of everything
};

}  // namespace airlock::runner
