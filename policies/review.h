// What `airlock policy check` tells a reviewer beyond validity: binds that expose sensitive host
// files or let the sandbox write to the host and egress rules that reach the host's own
// neighbours (cloud metadata, loopback, private networks) (warnings), and required binds of host
// paths that do not exist here (errors: every run under the policy would fail to start).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "policies/policy.h"

namespace airlock::policies {

struct ReviewNote {
  enum class Severity { warning, error };
  Severity severity = Severity::warning;
  std::string message;  // "bind /etc: exposes /etc/shadow (host file of password hashes)"
};

// Host paths whose contents a sandboxed program must never see, with why.
struct SensitivePath {
  const char* path;
  const char* why;
};
const std::vector<SensitivePath>& sensitive_host_paths();

// The notes for `policy`'s binds, in the policy's bind order, then for its egress rules. `exists`
// says whether a host path exists (tests pass a fake; the CLI asks the file system).
std::vector<ReviewNote> review_policy(const Policy& policy,
                                      const std::function<bool(const std::string&)>& exists);

}  // namespace airlock::policies
