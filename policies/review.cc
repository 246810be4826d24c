#include "policies/review.h"

namespace airlock::policies {
namespace {

// True when `inner` is `outer` or lies below it ("/etc" holds "/etc/shadow"; "/" holds all).
bool holds(const std::string& outer, const std::string& inner) {
  if (outer == "/" || outer == inner) return true;
  return inner.size() > outer.size() && inner.starts_with(outer) && inner[outer.size()] == '/';
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
  return notes;
}

}  // namespace airlock::policies
