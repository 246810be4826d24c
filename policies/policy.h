// The validated, immutable policy value that the runner and the sandbox use. Produced by the loader
// (policies/loader.h) from YAML; never built from partial or invalid input.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "policies/egress.h"
#include "sandbox/spec.h"

namespace airlock::policies {

enum class OverflowAction { truncate, kill };

struct OutputLimits {
  uint64_t kept_bytes = 1 * sandbox::kMiB;  // per stream: head and tail kept, the middle dropped
  OverflowAction on_overflow = OverflowAction::truncate;
};

// A deliberate loosening of the mandatory floor, with the reason a reviewer reads.
struct UnsafeEntry {
  std::string what;           // e.g. "syscall ptrace"
  std::string justification;  // required, non-empty
};

struct Policy {
  std::string name;         // "default", or the file's stem
  std::string source_path;  // the YAML file it came from; empty for built-ins in tests
  std::string description;
  std::vector<std::string> extends_chain;  // this policy first, then its parents
  std::vector<std::string> chain_paths;    // the files of extends_chain, in the same order
  std::vector<std::string> runtimes;       // runtimes this policy may run; empty: none but argv
  sandbox::Limits limits;
  OutputLimits output;
  sandbox::Filesystem filesystem;
  // "none": loopback only, AF_UNIX sockets; "loopback": any socket family, still loopback only;
  // "egress": the namespace is wired to the egress gateway, which allows what `egress` says.
  std::string network = "none";
  Egress egress;  // enabled() exactly when network is "egress"
  std::vector<std::pair<std::string, std::string>> environment;  // passed in, in this order
  sandbox::SeccompPolicy syscalls;  // groups expanded; the floor is added by the sandbox
  std::vector<UnsafeEntry> unsafe;
  std::string canonical;  // canonical text of the effective policy
  std::string hash;       // "sha256:" + hex of canonical

  bool allows_runtime(const std::string& runtime) const;
};

}  // namespace airlock::policies
