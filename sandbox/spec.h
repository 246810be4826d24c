// What to run and under which restrictions: the plain-data input of the sandbox. Knows nothing of
// YAML, HTTP or protobuf; policies and requests are turned into a Spec before the sandbox sees them.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace airlock::sandbox {

inline constexpr uint64_t kKiB = 1024;
inline constexpr uint64_t kMiB = 1024 * kKiB;
inline constexpr uint64_t kGiB = 1024 * kMiB;

// Resource limits of one run. Every field carries its unit in its name or type.
struct Limits {
  std::chrono::milliseconds wall_time{10'000};
  std::chrono::milliseconds cpu_time{10'000};  // summed over the whole process tree
  uint64_t memory_max_bytes = 256 * kMiB;      // RAM; swap is always 0
  uint32_t max_processes = 64;                 // tasks (processes and threads) at once
  uint32_t max_open_files = 256;               // RLIMIT_NOFILE per process
  uint64_t file_size_max_bytes = 64 * kMiB;    // RLIMIT_FSIZE per file
  uint64_t tmp_size_bytes = 64 * kMiB;         // tmpfs at /tmp
  uint64_t shm_size_bytes = 64 * kMiB;         // tmpfs at /dev/shm
  uint64_t workdir_size_bytes = 64 * kMiB;     // tmpfs holding the working directory
  uint32_t cpu_millicores = 1000;              // CPU bandwidth: 1000 = one full core
};

// A host path made visible inside the sandbox.
struct BindMount {
  std::string host_path;     // absolute path on the host
  std::string sandbox_path;  // absolute path inside; empty means the same as host_path
  bool writable = false;     // read-only unless named otherwise
  bool optional = false;     // skip silently when the host path does not exist
  // Copied into the sandbox's root at each start instead of bound, so that nothing inside (a
  // bind's source path shows in /proc/self/mountinfo) names where it lives on the host. For
  // airlock's own small files (drivers, the fork library): at most kMaxCopiedBytes in all.
  bool copy = false;
};

inline constexpr uint64_t kMaxCopiedBytes = 16 * kMiB;

// A sized, writable tmpfs inside the sandbox.
struct Tmpfs {
  std::string sandbox_path;
  uint64_t size_bytes = 0;
};

// The file system the program sees. /proc, a minimal /dev, /tmp and /dev/shm are always provided.
struct Filesystem {
  std::vector<BindMount> binds;
  std::vector<Tmpfs> tmpfs;
  std::string workdir = "/work";  // where the program starts; writable, backed by a sized tmpfs
};

// What a seccomp rule does when it matches.
enum class SyscallAction {
  allow,
  errno_code,  // fail the call with `errno_value`; the program goes on, the block is recorded
  kill,        // end the whole sandbox; the outcome is a violation naming the syscall
  log,         // let the call through and record it
};

// A condition on one syscall argument: (arg[index] & mask) OP value.
struct ArgCondition {
  enum class Op { eq, ne, lt, le, gt, ge, masked_eq };
  unsigned index = 0;  // 0..5
  Op op = Op::eq;
  uint64_t value = 0;
  uint64_t mask = ~0ULL;  // used by masked_eq only
};

// One seccomp rule. All conditions must hold for the rule to match.
struct SyscallRule {
  std::string syscall;                   // libseccomp name, e.g. "socket"
  std::vector<ArgCondition> conditions;  // empty: matches every call
  SyscallAction action = SyscallAction::kill;
  int errno_value = 0;                   // with errno_code
  std::string origin;                    // who made the rule, for reports: `floor (@mount)`,
                                         // `policy "default" (network: none)`
  bool quiet = false;                    // an expected refusal (clone3 -> ENOSYS): not reported
};

// The syscall filter: rules, then the default action for everything else.
struct SeccompPolicy {
  SyscallAction default_action = SyscallAction::allow;
  int default_errno = 1;                 // EPERM, with default_action == errno_code
  std::string default_origin = "default action";
  std::vector<SyscallRule> rules;        // the mandatory floor is added by the sandbox, never here
  std::vector<std::string> floor_exemptions;  // floor rules (by syscall) a policy explicitly lifted
};

// The address the program's resolver is told to ask (any address reaches the gateway's DNS).
inline constexpr const char* kGatewayResolver = "198.18.0.1";
inline constexpr size_t kMaxGatewayPorts = 16;

// Everything the sandbox needs to run one program.
struct Spec {
  std::vector<std::string> argv;  // argv[0] is looked up in the sandbox's PATH if it has no '/'
  std::vector<std::string> env;   // "NAME=value"; nothing else is passed
  Limits limits;
  Filesystem filesystem;
  SeccompPolicy seccomp;
  std::string hostname = "airlock";
  // The name /etc/passwd and /etc/group give the program's user (its uid is always 1000): letters,
  // digits, '_' and '-', at most 32.
  std::string user_name = "sandbox";
  // Give the program a fourth fd, 3: the write end of a pipe whose bytes reach the output
  // handler as Stream::control. For a session's interpreter driver to report where one
  // execution ends, apart from the program's own stdout and stderr.
  bool control_channel = false;
  // The program is a fork server's zygote (Sandbox::start_fork_server): its fd 3 is a seqpacket
  // socket to the supervisor, both ways, for fork requests and their fds. It gets the floor
  // filter only, minus the rules its children's setup needs (unshare, mount, a seccomp
  // listener), and no listener of its own, since a process can have only one and each child
  // installs its own. It runs airlock's driver only; the children get both filters in full.
  bool fork_server = false;
  // The sandbox starts with the lowest CPU weight its cgroup can have: it runs on cycles no
  // other sandbox wants (a warm pool's refill warming up while requests run), until
  // LiveSandbox::to_foreground gives it the default weight back.
  bool background = false;
  // Non-empty: the program's network reaches airlock's egress gateway instead of loopback only.
  // Its network namespace gets every IPv4 address on its loopback (so any connect lands there), a
  // TCP listener on 0.0.0.0 for each of these ports and a UDP socket on 0.0.0.0:53, which go to
  // the output handler (OutputHandler::on_gateway_sockets) before the program starts; the child
  // keeps none of them. /etc/resolv.conf names kGatewayResolver. Cold and forked sandboxes (not
  // a fork server itself); at most kMaxGatewayPorts distinct ports.
  std::vector<uint16_t> gateway_ports;
  // Host directory whose contents become the working directory (copied in before the program
  // starts, and the run's files are readable there afterwards). Empty: an empty working dir.
  std::string host_workdir;
};

}  // namespace airlock::sandbox
