// One policy file as written, before `extends` is resolved: every field optional, each with the
// position it came from. The parsers check syntax, types and units; rules that need the whole
// chain (floor, contradictions across syscalls and network) are checked when layers are merged.
#pragma once

#include <yaml-cpp/mark.h>
#include <yaml-cpp/node/node.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "policies/actions.h"
#include "policies/egress.h"
#include "policies/errors.h"
#include "policies/policy.h"
#include "sandbox/spec.h"

namespace airlock::policies {

// One entry of `syscalls.allow`, `syscalls.deny` or `syscalls.log`.
struct SyscallEntry {
  std::string list;                // "allow", "deny" or "log"
  std::string name;                // a syscall or a group ("@mount"), as written
  std::optional<Action> action;    // deny entries may name their own; else the list's action
  std::vector<uint64_t> families;  // socket/socketpair: only these address families
  YAML::Mark mark;
};

struct UnsafeDecl {
  std::string syscall;  // a floor syscall
  std::string justification;
  YAML::Mark mark;
};

struct PolicyLayer {
  std::string name;  // the file's stem
  std::string path;
  std::string text;  // the file as read, for `policy show`

  std::optional<std::string> description;
  std::optional<std::string> extends;
  YAML::Mark extends_mark;
  std::optional<std::vector<std::string>> runtimes;

  std::optional<std::chrono::milliseconds> wall_time;
  std::optional<std::chrono::milliseconds> cpu_time;
  std::optional<uint64_t> memory_max_bytes;
  std::optional<uint32_t> max_processes;
  std::optional<uint32_t> max_open_files;
  std::optional<uint64_t> file_size_max_bytes;
  std::optional<uint32_t> cpu_millicores;
  std::optional<uint64_t> output_kept_bytes;
  std::optional<OverflowAction> output_overflow;

  std::optional<std::string> workdir;
  std::optional<uint64_t> workdir_size_bytes;
  std::vector<sandbox::Tmpfs> tmpfs;      // /tmp and /dev/shm included; merged by path
  std::vector<sandbox::BindMount> binds;  // merged by sandbox path

  std::optional<std::string> network;
  YAML::Mark network_mark;
  // Set when the file has an `egress` section (always with at least one rule); the nearest layer
  // with a section or a `network` setting decides both.
  std::optional<Egress> egress;
  YAML::Mark egress_mark;  // the `egress` key
  // nullopt value: remove a variable an ancestor set.
  std::vector<std::pair<std::string, std::optional<std::string>>> environment;

  std::optional<Action> default_action;
  std::optional<Action> deny_action;
  std::vector<SyscallEntry> syscalls;
  std::vector<UnsafeDecl> unsafe;
};

// One variable as the kernel takes it ("NAME=value" and its NUL) may be at most MAX_ARG_STRLEN.
inline constexpr size_t kMaxEnvVarBytes = 128 * 1024;
// The whole environment of a run, counted the same way, after `extends` is resolved: half of what
// execve takes with the usual 8 MiB stack, the rest left to the command line.
inline constexpr size_t kMaxEnvironmentBytes = 1024 * 1024;

// Reads and checks one file. Problems go to `errors` (all of them); the layer is only usable
// when no error was added.
PolicyLayer parse_layer(const std::string& path, const std::string& name, ErrorList& errors);

// Same, from text already in memory (tests, and the file reader above).
PolicyLayer parse_layer_text(const std::string& text, const std::string& path,
                             const std::string& name, ErrorList& errors);

// The `syscalls:` and `unsafe:` sections (policies/syscalls_parser.cc).
void parse_syscalls_section(const YAML::Node& node, PolicyLayer& layer, ErrorList& errors);
void parse_unsafe_section(const YAML::Node& node, PolicyLayer& layer, ErrorList& errors);

// The `filesystem:` section (policies/filesystem_parser.cc).
void parse_filesystem_section(const YAML::Node& node, PolicyLayer& layer, ErrorList& errors);

// The `egress:` section (policies/egress_parser.cc). Rules get their origin from layer.name.
void parse_egress_section(const YAML::Node& node, PolicyLayer& layer, ErrorList& errors);

// Policy names and runtime names: letters, digits, '-', '_', '+', '.', not starting with '.'.
bool is_valid_name(const std::string& name);

}  // namespace airlock::policies
