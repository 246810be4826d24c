// The `egress:` section of the serve config (docs/egress.md): the names the gateway resolves
// itself, the secrets that policies' injected headers name, and the gateway's timeouts.
#pragma once

#include <yaml-cpp/yaml.h>

#include "runner/egress/gateway.h"

namespace airlock::api {

// Reads the section, secret values included (from their files or the environment), or throws
// config_yaml::ConfigError pointing at what is wrong.
egress::GatewayConfig parse_egress_config(const YAML::Node& node);

}  // namespace airlock::api
