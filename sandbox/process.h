// The sandboxed process itself: clone into new namespaces, the child's setup checklist, the tiny
// init that stays pid 1 of the sandbox, and the messages the child sends its supervisor.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sandbox/cgroup.h"
#include "sandbox/error.h"
#include "sandbox/mounts.h"
#include "sandbox/rlimits.h"
#include "sandbox/sandbox.h"
#include "sandbox/seccomp.h"
#include "sandbox/setup_plan.h"
#include "sandbox/unique_fd.h"

namespace airlock::sandbox {

// Where this process's argv and environment strings live (from /proc/self/stat), which a
// clone of it shares at the same addresses. Empty when they could not be read.
struct ProcessStrings {
  char* args = nullptr;
  size_t args_size = 0;
  char* env = nullptr;
  size_t env_size = 0;
};
const ProcessStrings& own_process_strings();

// The name the sandbox's pid 1 shows: /proc/1/comm and /proc/1/cmdline.
inline constexpr const char* kInitName = "airlock-init";

// Everything the child needs, computed by the supervisor before clone. After clone the child only
// reads it: no allocation happens there, because the supervisor may have had other threads
// holding allocator locks at the moment of the clone.
struct ChildPlan {
  // What every sandbox's child needs, the same plan a fork request carries (setup_plan.h).
  SetupPlan setup;
  // Cold only: the file system built from nothing (a forked child starts from its zygote's), the
  // program to exec and where the clone finds the supervisor's own strings.
  MountPlan mounts;
  std::shared_ptr<const SeccompFilters> seccomp;  // setup.policy_length/floor_length long
  std::vector<std::string> argv_storage;
  std::vector<std::string> env_storage;
  std::vector<char*> argv;                   // null-terminated, points into argv_storage
  std::vector<char*> envp;                   // null-terminated, points into env_storage
  std::vector<std::string> program_paths;    // candidates for argv[0], tried in order
  // The supervisor's command line and environment, as the clone copied them: init overwrites
  // them, so that /proc/1/cmdline names airlock's init rather than the service's invocation.
  ProcessStrings host_strings;

  // Fills argv/envp/program_paths from the storage vectors and the PATH in the environment.
  void finalize();
};

// The child's ends of the pipes and sockets.
struct ChildFds {
  int stdin_read = -1;
  int stdout_write = -1;
  int stderr_write = -1;
  int control = -1;    // seqpacket socket to the supervisor
  int sync_read = -1;  // the supervisor writes one byte once our id maps are written
  int channel_write = -1;  // becomes the program's fd 3 when >= 0 (Spec::control_channel)
  // Cgroup::self_join_files (v1): the child writes "0" into each after the sync byte.
  int cgroup_join[kMaxCgroupJoinFiles] = {};
  int cgroup_join_count = 0;
};

// Messages on the control socket, child to supervisor.
struct ControlMessage {
  // fork_hello: from a forked sandbox's A and B (ForkRequest), once their steps so far are done,
  // with a pidfd of the sender; B's also carries the fd of its working directory.
  // gateway_sockets: the sockets of Spec::gateway_ports (the TCP listeners in the plan's order,
  // then the DNS socket and the refusal watch), from step 5; take_gateway_sockets reads them.
  enum Kind : uint32_t {
    setup_failed = 1,
    listeners = 2,
    program_status = 3,
    fork_hello = 4,
    gateway_sockets = 5,
  };
  uint32_t kind = 0;
  int32_t error_number = 0;  // with setup_failed
  int32_t wait_status = 0;   // with program_status: as from waitpid
  char text[244] = {};       // with setup_failed: the step that failed
};

// The most fds a gateway_sockets message carries.
inline constexpr int kMaxGatewayFds = 2 * static_cast<int>(kMaxGatewayPorts) + 2;

// The fds of a gateway_sockets message, as GatewaySockets; nullopt when there are too few.
std::optional<GatewaySockets> take_gateway_sockets(UniqueFd* passed, int count);

// How a sandbox's own processes exit when its setup fails (the supervisor reports the step).
inline constexpr int kSetupFailedExit = 125;

// Child side (no allocation). Sends a message with its fds (send_with_fds); false if it was not
// sent.
bool send_message(int socket, const ControlMessage& message, const int* fds, int fd_count);
// Reports the failed step ("mount tmpfs", with detail "/tmp") to the supervisor and exits with
// kSetupFailedExit.
// sendmsg is the one call the policy filter lets through on the control socket, so this works
// after the filters are in place.
[[noreturn]] void fail(int socket, const char* step, const char* detail, int error_number);

// Closes every fd but the (at most kMaxKeptFds) in `keep`, in any order; -1 entries are skipped.
inline constexpr int kMaxKeptFds = 16;
void close_all_but(const int* keep, int count);

// The sandbox's init, seen from the supervisor. Its destructor kills (and so ends the whole pid
// namespace) and reaps, if that has not happened yet.
class ChildProcess {
 public:
  ChildProcess(pid_t pid, UniqueFd pidfd) : pid_(pid), pidfd_(std::move(pidfd)) {}
  // A forked sandbox's A, which is not our child (so not ours to reap: its pidfd turning
  // readable is its end), and its B, killed with it.
  static ChildProcess forked(pid_t pid, UniqueFd pidfd, UniqueFd program_pidfd) {
    ChildProcess process(pid, std::move(pidfd));
    process.program_pidfd_ = std::move(program_pidfd);
    process.own_child_ = false;
    return process;
  }
  ChildProcess(ChildProcess&&) = default;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  int pidfd() const { return pidfd_.get(); }
  int program_pidfd() const { return program_pidfd_.get(); }  // forked only; else -1
  // SIGKILL to init: the kernel then kills every process of the sandbox's pid namespace.
  void kill();
  // Reaps init once it has exited (the pidfd is readable). Returns false if not yet.
  bool try_reap(int* wait_status);
  bool reaped() const { return reaped_; }

 private:
  pid_t pid_;
  UniqueFd pidfd_;
  UniqueFd program_pidfd_;  // forked only
  bool own_child_ = true;
  bool reaped_ = false;
};

// Clones the child into new namespaces (into cgroup_fd on v2 when >= 0) and runs the checklist
// in it. The child waits on fds.sync_read before doing anything.
Expected<ChildProcess> spawn_child(const ChildPlan& plan, const ChildFds& fds, int cgroup_fd);

}  // namespace airlock::sandbox
