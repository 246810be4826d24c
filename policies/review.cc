#include "policies/review.h"

namespace airlock::policies {
namespace {

// True when `inner` is `outer` or lies below it ("/etc" holds "/etc/shadow"; "/" holds all).
bool holds(const std::string& outer, const std::string& inner) {
  if (outer == "/" || outer == inner) return true;
  return inner.size() > outer.size() && inner.starts_with(outer) && inner[outer.size()] == '/';
}

// Networks an egress rule should name only on purpose: the gateway connects from the host, so
// these are the host's own neighbours, not the internet's. The gateway lets a rule reach into a
// special range only when the rule lies within it ("0.0.0.0/0" is the internet, not loopback:
// runner/egress/rules.cc), and the review judges the same way.
struct SensitiveNetwork {
  const char* network;
  const char* range;  // the special range the gateway judges it by
  const char* why;
};
constexpr SensitiveNetwork kSensitiveNetworks[] = {
    {"169.254.169.254/32", "169.254.0.0/16",
     "cloud instance metadata: the host's cloud credentials"},
    {"fd00:ec2::254/128", "fc00::/7", "cloud instance metadata: the host's cloud credentials"},
    {"127.0.0.0/8", "127.0.0.0/8", "the host's own services, airlock's API among them"},
    {"169.254.0.0/16", "169.254.0.0/16", "link-local: the host's own link"},
    {"10.0.0.0/8", "10.0.0.0/8", "a private network: the host's neighbours"},
    {"172.16.0.0/12", "172.16.0.0/12", "a private network: the host's neighbours"},
    {"192.168.0.0/16", "192.168.0.0/16", "a private network: the host's neighbours"},
    {"100.64.0.0/10", "100.64.0.0/10", "shared address space: the provider's network"},
    {"fc00::/7", "fc00::/7", "a private network: the host's neighbours"},
};

// True when a rule for `rule` lets connections reach some address of `sensitive`.
bool reaches(const Cidr& rule, const SensitiveNetwork& sensitive) {
  const Cidr network = *Cidr::parse(sensitive.network);
  const Cidr range = *Cidr::parse(sensitive.range);
  const bool within_range = range.contains(rule) && rule.prefix_length >= range.prefix_length;
  const bool overlap = rule.contains(network) || network.contains(rule);
  return rule.v6 == network.v6 && within_range && overlap;
}

}  // namespace

const std::vector<SensitivePath>& sensitive_host_paths() {
  static const std::vector<SensitivePath> paths = {
      {"/etc/shadow", "password hashes"},
      {"/etc/gshadow", "group password hashes"},
      {"/etc/sudoers", "who may become root"},
      {"/etc/sudoers.d", "who may become root"},
      {"/etc/ssh", "the host's SSH keys"},
      {"/etc/airlock", "airlock's own config and API key digests"},
      {"/root", "root's home"},
      {"/home", "users' homes"},
      {"/run/docker.sock", "the Docker daemon: root on the host"},
      {"/var/run/docker.sock", "the Docker daemon: root on the host"},
      {"/run/containerd", "the container runtime: root on the host"},
      {"/var/run/containerd", "the container runtime: root on the host"},
      {"/run/crio", "the container runtime: root on the host"},
      {"/run/systemd", "systemd's control sockets: root on the host"},
      {"/run/dbus", "the system bus: services that act as root"},
      {"/var/run/dbus", "the system bus: services that act as root"},
      {"/run/airlock", "other sandboxes' working directories"},
      {"/var/run/airlock", "other sandboxes' working directories"},
      {"/var/lib/airlock", "airlock's state: sessions' workspaces"},
      {"/var/lib/kubelet", "the node's pods and their secrets"},
      {"/etc/kubernetes", "the cluster's credentials"},
      {"/var/lib/docker", "containers' files"},
      {"/var/log", "the host's logs, airlock's audit log among them"},
      {"/boot", "the kernel and boot loader"},
      {"/proc", "the host's processes"},
      {"/sys", "the host's kernel settings and devices"},
      {"/dev", "the host's devices"},
  };
  return paths;
}

std::vector<ReviewNote> review_policy(const Policy& policy,
                                      const std::function<bool(const std::string&)>& exists) {
  using Severity = ReviewNote::Severity;
  std::vector<ReviewNote> notes;
  for (const sandbox::BindMount& bind : policy.filesystem.binds) {
    const std::string& host = bind.host_path;
    const std::string inside = bind.sandbox_path.empty() ? host : bind.sandbox_path;
    const std::string name = "bind " + inside + (inside == host ? "" : " (host " + host + ")");
    if (!bind.optional && !exists(host)) {
      notes.push_back({Severity::error, name + ": the host path does not exist here, so every run "
                                               "under this policy would fail to start; mark it "
                                               "optional: true or remove it"});
    }
    for (const SensitivePath& sensitive : sensitive_host_paths()) {
      if (holds(host, sensitive.path) || holds(sensitive.path, host)) {
        notes.push_back({Severity::warning, name + ": exposes " + sensitive.path + " (" +
                                                sensitive.why + ")"});
        break;
      }
    }
    if (bind.writable) {
      notes.push_back({Severity::warning, name + ": writable: programs in the sandbox can change "
                                                 "and create host files under " + host});
    }
  }
  for (const EgressRule& rule : policy.egress.allow) {
    if (!rule.cidr) continue;
    for (const SensitiveNetwork& sensitive : kSensitiveNetworks) {
      if (reaches(*rule.cidr, sensitive)) {
        notes.push_back({Severity::warning, "egress " + rule.cidr->text() + ": reaches " +
                                                sensitive.network + " (" + sensitive.why + ")"});
        break;
      }
    }
  }
  return notes;
}

}  // namespace airlock::policies
