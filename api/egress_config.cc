#include "api/egress_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "api/config_yaml.h"
#include "policies/egress.h"

namespace airlock::api {
namespace {

using config_yaml::duration;
using config_yaml::fail;
using config_yaml::scalar;
using config_yaml::unknown;

// A secret's value: a file's contents (one trailing newline dropped) or an environment variable.
// It goes into an HTTP header: no control characters, at most 8 KiB.
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
    // O_NONBLOCK: a FIFO put there must not hang the service; only a regular file is read.
    const int fd = ::open(where.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat status {};
    if (fd < 0 || ::fstat(fd, &status) != 0 || !S_ISREG(status.st_mode) || status.st_size > 8192) {
      if (fd >= 0) ::close(fd);
      fail(node, key + ": cannot read \"" + where + "\" as a regular file of at most 8 KiB");
    }
    char buffer[8193];
    const ssize_t length = ::read(fd, buffer, sizeof buffer);
    ::close(fd);
    if (length < 0) fail(node, key + ": cannot read \"" + where + "\"");
    value.assign(buffer, static_cast<size_t>(length));
    if (!value.empty() && value.back() == '\n') value.pop_back();
    if (!value.empty() && value.back() == '\r') value.pop_back();
  } else if (source == "env") {
    const char* found = std::getenv(where.c_str());
    if (found == nullptr) fail(node, key + ": the environment has no " + where);
    value = found;
  } else {
    fail(node.begin()->first, key + ": " + unknown("source", source, {"file", "env"}));
  }
  if (value.empty() || value.size() > 8192) fail(node, key + ": empty or longer than 8 KiB");
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
        egress.hosts.emplace_back(host_name, scalar(host.second, key + "." + host_name));
      }
    } else if (name == "secrets") {
      if (!value.IsMap())
        fail(value, key + ": expected a map of name: {file: PATH} or {env: NAME}");
      for (const auto& secret : value) {
        const std::string secret_name = secret.first.as<std::string>();
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
