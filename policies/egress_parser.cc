// Parses the `egress:` section: the destinations a run may reach through the egress gateway, each
// with its ports and the reason a reviewer reads, and the run's connection and byte caps.
#include <algorithm>
#include <map>
#include <set>

#include "policies/layer.h"
#include "policies/syscall_rules.h"
#include "policies/units.h"
#include "policies/yaml_fields.h"

namespace airlock::policies {
namespace {

const std::vector<std::string> kEgressKeys{"allow", "max_connections", "max_bytes"};
const std::vector<std::string> kRuleKeys{"domain", "cidr", "ports", "reason", "headers"};
const std::vector<std::string> kHeaderValueKeys{"secret"};
// The gateway frames every request itself; a policy that set these could smuggle a second one.
const std::vector<std::string> kGatewayHeaders{"host", "connection", "content-length",
                                               "transfer-encoding"};
constexpr uint64_t kMaxConnections = 10'000;

std::string lower(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return text;
}

// RFC 9110's token: what a header name may be.
bool is_http_token(const std::string& name) {
  if (name.empty()) return false;
  const std::string_view punctuation = "!#$%&'*+-.^_`|~";
  return std::all_of(name.begin(), name.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           punctuation.find(c) != std::string_view::npos;
  });
}

// A destination rule's network; an address with host bits set is answered with its network.
std::optional<Cidr> parse_cidr(const std::string& text, const YAML::Mark& mark, ErrorList& errors) {
  if (auto cidr = Cidr::parse(text)) {
    if (!cidr->v6) return cidr;
    // A sandbox's namespace makes only these IPv6 ranges local (sandbox/gateway_sockets.h): an
    // address elsewhere never reaches the gateway, and an IPv4-mapped one is an IPv4 address.
    for (const char* reachable : {"2000::/3", "fc00::/7"}) {
      const Cidr range = *Cidr::parse(reachable);
      if (range.contains(*cidr) && cidr->prefix_length >= range.prefix_length) return cidr;
    }
    errors.add(mark, "cidr '" + text +
                         "': only global (2000::/3) and unique-local (fc00::/7) IPv6 networks "
                         "can be reached from a sandbox; write an IPv4 address as IPv4");
    return std::nullopt;
  }
  const size_t slash = text.find('/');
  auto host = Cidr::parse(text.substr(0, slash));
  const int bits = host && host->v6 ? 128 : 32;
  auto with_prefix = [&](uint8_t length) {
    Cidr network = *host;
    network.prefix_length = length;
    for (int bit = length; bit < bits; ++bit) {
      network.address[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
    }
    return network;
  };
  if (host && slash != std::string::npos) {
    const std::string length = text.substr(slash + 1);
    const bool digits =
        !length.empty() && length.size() <= 3 &&
        std::all_of(length.begin(), length.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (digits && std::stoi(length) <= bits) {
      errors.add(mark, "cidr '" + text + "' has host bits set: did you mean '" +
                           with_prefix(static_cast<uint8_t>(std::stoi(length))).text() + "'?");
      return std::nullopt;
    }
  }
  errors.add(mark, "cidr '" + text +
                       "': expected a network such as '10.1.2.0/24' or '2001:db8::/32'");
  return std::nullopt;
}

std::optional<std::vector<uint16_t>> parse_ports(const YAML::Node& node, ErrorList& errors) {
  auto items = scalar_list(node, "ports", "port numbers", errors);
  if (!items) return std::nullopt;
  if (items->empty()) {
    errors.add(node.Mark(), "ports: list at least one port, e.g. [443]");
    return std::nullopt;
  }
  std::vector<uint16_t> ports;
  std::set<uint16_t> seen;
  bool ok = true;
  for (const auto& [text, mark] : *items) {
    auto parsed = parse_count(text, 65'535);
    if (std::holds_alternative<std::string>(parsed)) {
      errors.add(mark, "port '" + text + "': expected a whole number from 1 to 65535");
      ok = false;
      continue;
    }
    const auto port = static_cast<uint16_t>(std::get<uint64_t>(parsed));
    if (!seen.insert(port).second) {
      errors.add(mark, "port " + text + " is listed twice");
      ok = false;
      continue;
    }
    ports.push_back(port);
  }
  if (!ok) return std::nullopt;
  std::sort(ports.begin(), ports.end());
  return ports;
}

std::optional<std::vector<InjectedHeader>> parse_headers(const YAML::Node& node,
                                                         ErrorList& errors) {
  if (!expect_map(node, "headers", errors)) return std::nullopt;
  std::vector<InjectedHeader> headers;
  std::map<std::string, int> seen;  // lower-case name, line
  const size_t errors_before = errors.count();
  for (const auto& [key_node, value] : free_entries(node, errors)) {
    const std::string name = key_node.Scalar();
    const YAML::Mark mark = key_node.Mark();
    if (!is_http_token(name)) {
      errors.add(mark, "header name '" + name +
                           "' is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)");
      continue;
    }
    if (std::find(kGatewayHeaders.begin(), kGatewayHeaders.end(), lower(name)) !=
        kGatewayHeaders.end()) {
      errors.add(mark, "header '" + name + "' is set by the egress gateway itself");
      continue;
    }
    const auto [same, inserted] = seen.emplace(lower(name), mark.line + 1);
    if (!inserted) {
      errors.add(mark, "header '" + name + "' is listed twice (first at line " +
                           std::to_string(same->second) + ")");
      continue;
    }
    if (!value.IsMap()) {
      errors.add(value.Mark(), "header '" + name + "': expected {secret: NAME}, got " +
                                   kind_name(value) +
                                   "; secrets never go in policies, name one the service holds");
      continue;
    }
    const auto entries = checked_entries(value, kHeaderValueKeys, errors);
    if (entries.empty()) {
      if (value.size() == 0) errors.add(value.Mark(), "header '" + name + "' needs 'secret'");
      continue;
    }
    auto secret = scalar_text(entries[0].second, "secret", "a secret's name", errors);
    if (!secret) continue;
    if (!is_valid_name(*secret)) {
      errors.add(entries[0].second.Mark(),
                 "invalid secret name '" + *secret + "': use letters, digits, '-', '_' and '.'");
      continue;
    }
    headers.push_back({name, *secret});
  }
  if (errors.count() != errors_before) return std::nullopt;
  return headers;
}

// One entry of `allow`; nullopt when anything in it is wrong (all of it reported).
std::optional<EgressRule> parse_rule(const YAML::Node& item, size_t index, const std::string& layer,
                                     YAML::Mark& destination_mark, ErrorList& errors) {
  if (!item.IsMap()) {
    errors.add(item.Mark(),
               "expected a map with domain or cidr, ports and reason for an egress "
               "rule, got " +
                   kind_name(item));
    return std::nullopt;
  }
  EgressRule rule;
  rule.origin = origin_text(layer, "egress.allow[" + std::to_string(index) + "]");
  bool ok = true;
  bool has_destination = false;
  bool has_ports = false;
  bool has_reason = false;
  for (const auto& [key_node, value] : checked_entries(item, kRuleKeys, errors)) {
    const std::string key = key_node.Scalar();
    if (key == "domain" || key == "cidr") {
      if (has_destination) {
        errors.add(key_node.Mark(),
                   "an egress rule names one destination: domain or cidr, not both");
        ok = false;
        continue;
      }
      has_destination = true;
      destination_mark = value.Mark();
      auto text = scalar_text(value, key, key == "domain" ? "a domain name" : "a network", errors);
      if (!text) {
        ok = false;
      } else if (key == "domain") {
        rule.domain = normalize_domain(*text);
        if (const std::string problem = domain_problem(rule.domain); !problem.empty()) {
          errors.add(value.Mark(), "domain '" + *text + "' " + problem);
          ok = false;
        }
      } else {
        rule.cidr = parse_cidr(*text, value.Mark(), errors);
        ok = ok && rule.cidr.has_value();
      }
    } else if (key == "ports") {
      has_ports = true;
      auto ports = parse_ports(value, errors);
      if (ports) rule.ports = std::move(*ports);
      ok = ok && ports.has_value();
    } else if (key == "reason") {
      has_reason = true;
      const auto text = scalar_text(value, key, "a sentence", errors);
      if (!text) {
        ok = false;
      } else if (text->find_first_not_of(" \t\n") == std::string::npos) {
        errors.add(value.Mark(), "reason must not be empty: say why the program may reach it");
        ok = false;
      } else {
        rule.reason = *text;
      }
    } else if (key == "headers") {
      auto headers = parse_headers(value, errors);
      if (headers) rule.headers = std::move(*headers);
      ok = ok && headers.has_value();
    }
  }
  auto missing = [&](const std::string& what) {
    errors.add(item.Mark(), "an egress rule needs " + what);
    ok = false;
  };
  if (!has_destination) missing("a destination: domain or cidr");
  if (!has_ports) missing("'ports', e.g. [443]");
  if (!has_reason) missing("'reason': why the program may reach it, for reviewers");
  if (!ok) return std::nullopt;
  return rule;
}

void parse_allow(const YAML::Node& node, Egress& egress, const std::string& layer,
                 ErrorList& errors) {
  if (!node.IsSequence()) {
    errors.add(node.Mark(), "expected a list of destinations for 'allow', got " + kind_name(node));
    return;
  }
  if (node.size() == 0) {
    errors.add(node.Mark(),
               "egress.allow is empty: list a destination, or leave egress out for "
               "no network");
    return;
  }
  std::map<std::string, int> seen;  // destination, line: a file may list many
  for (size_t i = 0; i < node.size(); ++i) {
    YAML::Mark mark = node[i].Mark();
    auto rule = parse_rule(node[i], i, layer, mark, errors);
    if (!rule) continue;
    const std::string destination = destination_text(*rule);
    const auto [same, inserted] = seen.emplace(destination, mark.line + 1);
    if (!inserted) {
      errors.add(mark, "egress destination '" + destination + "' is listed twice (first at line " +
                           std::to_string(same->second) + "); give it one rule with all its ports");
      continue;
    }
    egress.allow.push_back(std::move(*rule));
  }
}

}  // namespace

void parse_egress_section(const YAML::Node& node, PolicyLayer& layer, ErrorList& errors) {
  if (!expect_map(node, "egress", errors)) return;
  Egress egress;
  bool has_allow = false;
  const size_t errors_before = errors.count();
  for (const auto& [key_node, value] : checked_entries(node, kEgressKeys, errors)) {
    const std::string key = key_node.Scalar();
    if (key == "allow") {
      has_allow = true;
      parse_allow(value, egress, layer.name, errors);
    } else if (key == "max_connections") {
      const auto text = scalar_text(value, key, "a whole number", errors);
      if (!text) continue;
      auto parsed = parse_count(*text, kMaxConnections);
      if (const auto* message = std::get_if<std::string>(&parsed)) {
        errors.add(value.Mark(), key + ": " + *message);
      } else {
        egress.max_connections = static_cast<uint32_t>(std::get<uint64_t>(parsed));
      }
    } else if (key == "max_bytes") {
      const auto text = scalar_text(value, key, "a size such as '256MiB'", errors);
      if (!text) continue;
      auto parsed = parse_bytes(*text);
      if (const auto* message = std::get_if<std::string>(&parsed)) {
        errors.add(value.Mark(), key + ": " + *message);
      } else {
        egress.max_bytes = std::get<uint64_t>(parsed);
      }
    }
  }
  if (!has_allow) {
    errors.add(node.Mark(), "egress needs 'allow': the destinations, each with ports and a reason");
  }
  if (errors.count() != errors_before) return;
  layer.egress = std::move(egress);
}

}  // namespace airlock::policies
