#include "api/egress_config.h"

#include <cstdlib>
#include <string>

#include "api/config_yaml.h"
#include "policies/egress.h"
#include "sandbox/regular_file.h"

namespace airlock::api {
namespace {

using config_yaml::duration;
using config_yaml::fail;
using config_yaml::scalar;
using config_yaml::unknown;

// A secret's value goes into an HTTP header: at most this long, no control characters.
constexpr size_t kMaxSecretBytes = 8192;

// The contents of a secret file, one trailing newline dropped. Only a regular file of at most
// kMaxSecretBytes is read, a symlink to one followed (Kubernetes mounts Secrets that way); each
// refusal names the file and why.
std::string secret_file(const YAML::Node& node, const std::string& key, const std::string& path) {
  // A FIFO put there must not hang the service: refused unread, as a directory or device is.
  auto contents = sandbox::read_regular_file(path, kMaxSecretBytes);
  if (!contents) fail(node, key + ": " + contents.error().message());
  std::string value = std::move(contents.value());
  if (!value.empty() && value.back() == '\n') value.pop_back();
  if (!value.empty() && value.back() == '\r') value.pop_back();
  if (value.empty()) fail(node, key + ": \"" + path + "\" is empty");
  return value;
}

// A secret's value: a file's contents (one trailing newline dropped) or an environment variable.
std::string secret_value(const YAML::Node& node, const std::string& key) {
  if (!node.IsMap() || node.size() != 1) {
    fail(node, key +
                   ": expected {file: PATH} or {env: NAME}; a secret's value never goes in the "
                   "config itself");
  }
  const std::string source = node.begin()->first.as<std::string>();
  const std::string where = scalar(node.begin()->second, key + "." + source);
  std::string value;
  if (source == "file") {
    value = secret_file(node, key, where);
  } else if (source == "env") {
    const char* found = std::getenv(where.c_str());
    if (found == nullptr) fail(node, key + ": the environment has no " + where);
    value = found;
    if (value.empty() || value.size() > kMaxSecretBytes) {
      fail(node, key + ": the environment's " + where + " is empty or longer than 8 KiB");
    }
  } else {
    fail(node.begin()->first, key + ": " + unknown("source", source, {"file", "env"}));
  }
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      fail(node, key + ": holds a control character, which a header value cannot");
    }
  }
  return value;
}

}  // namespace

egress::GatewayConfig parse_egress_config(const YAML::Node& node) {
  if (!node.IsMap()) fail(node, "egress: expected a map (hosts, secrets, ...)");
  egress::GatewayConfig egress;
  for (const auto& field : node) {
    const std::string name = field.first.as<std::string>();
    const YAML::Node& value = field.second;
    const std::string key = "egress." + name;
    if (name == "hosts") {
      if (!value.IsMap()) fail(value, key + ": expected a map of name: address[:port]");
      for (const auto& host : value) {
        const std::string host_name = policies::normalize_domain(host.first.as<std::string>());
        if (std::string problem = policies::domain_problem(host_name); !problem.empty()) {
          fail(host.first, key + ": " + problem);
        }
        if (host_name.rfind("*.", 0) == 0) {
          fail(host.first, key + ": '" + host_name + "': a pin names one host, not a wildcard");
        }
        const std::string address = scalar(host.second, key + "." + host_name);
        if (!egress::parse_pinned_address(address)) {
          fail(host.second, key + "." + host_name + ": '" + address +
                                "' is not an address: expected an IPv4 or IPv6 address, "
                                "optionally with :port ([v6]:port)");
        }
        for (const auto& [known, ignored] : egress.hosts) {
          if (known == host_name) fail(host.first, key + ": '" + host_name + "' is given twice");
        }
        egress.hosts.emplace_back(host_name, address);
      }
    } else if (name == "secrets") {
      if (!value.IsMap())
        fail(value, key + ": expected a map of name: {file: PATH} or {env: NAME}");
      for (const auto& secret : value) {
        const std::string secret_name = secret.first.as<std::string>();
        if (egress.secrets.count(secret_name) != 0) {
          fail(secret.first, key + ": '" + secret_name + "' is given twice");
        }
        egress.secrets[secret_name] = secret_value(secret.second, key + "." + secret_name);
      }
    } else if (name == "connect_timeout") {
      egress.connect_timeout = duration(value, key);
    } else if (name == "idle_timeout") {
      egress.idle_timeout = duration(value, key);
    } else {
      fail(field.first,
           "egress: " +
               unknown("field", name, {"hosts", "secrets", "connect_timeout", "idle_timeout"}));
    }
  }
  if (egress.connect_timeout.count() <= 0 || egress.idle_timeout.count() <= 0) {
    fail(node, "egress: timeouts must be more than 0");
  }
  return egress;
}

}  // namespace airlock::api
