#include "sandbox/supervisor.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>
#include <thread>

#include "sandbox/classify.h"
#include "sandbox/monitor.h"
#include "sandbox/mounts.h"
#include "sandbox/namespaces.h"
#include "sandbox/process.h"
#include "sandbox/setup_plan.h"
#include "sandbox/unique_fd.h"

namespace airlock::sandbox {
namespace {

Status make_dir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return errno_error("mkdir(\"" + path + "\")");
  }
  return {};
}

// Mount points at or below `dir`, deepest first, from /proc/self/mountinfo.
std::vector<std::string> mounts_below(const std::string& dir) {
  std::vector<std::string> found;
  auto text = read_file("/proc/self/mountinfo");
  if (!text) return found;
  std::istringstream lines(text.value());
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string id, parent, device, root, mount_point;
    fields >> id >> parent >> device >> root >> mount_point;
    if (mount_point == dir || mount_point.rfind(dir + "/", 0) == 0) found.push_back(mount_point);
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.size() > b.size(); });
  return found;
}

// Removes a directory tree that contains only what airlock made (no symlinks followed).
void remove_tree(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir != nullptr) {
    while (dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      std::string child = path + "/" + name;
      if (entry->d_type == DT_DIR) {
        remove_tree(child);
      } else {
        ::unlink(child.c_str());
      }
    }
    ::closedir(dir);
  }
  ::rmdir(path.c_str());
}

// A supervisor that died leaves its state directory, with working-dir tmpfs mounts in it.
void remove_stale_state(const std::string& state_dir) {
  DIR* dir = ::opendir(state_dir.c_str());
  if (dir == nullptr) return;
  std::vector<std::string> stale;
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (entry->d_type == DT_DIR && name != "." && name != ".." && !instance_is_alive(name)) {
      stale.push_back(state_dir + "/" + name);
    }
  }
  ::closedir(dir);
  for (const std::string& path : stale) {
    for (const std::string& mount : mounts_below(path)) ::umount2(mount.c_str(), MNT_DETACH);
    remove_tree(path);
  }
}

class TmpfsWorkspace final : public OwnedWorkspace {
 public:
  using OwnedWorkspace::OwnedWorkspace;
  ~TmpfsWorkspace() override {
    ::umount2(path().c_str(), MNT_DETACH);
    ::rmdir(path().c_str());
  }
};

std::string policy_key(const SeccompPolicy& policy, int control_fd) {
  std::ostringstream key;
  key << control_fd << '|' << static_cast<int>(policy.default_action) << '|' << policy.default_errno
      << '|' << policy.default_origin << '\n';
  for (const SyscallRule& rule : policy.rules) {
    key << rule.syscall << '|' << static_cast<int>(rule.action) << '|' << rule.errno_value << '|'
        << rule.quiet << '|' << rule.origin;
    for (const ArgCondition& c : rule.conditions) {
      key << '|' << c.index << ',' << static_cast<int>(c.op) << ',' << c.value << ',' << c.mask;
    }
    key << '\n';
  }
  for (const std::string& exempt : policy.floor_exemptions) key << "exempt " << exempt << '\n';
  return key.str();
}

// The CLI's stdin goes to the program on a thread of its own, with blocking I/O: simple, and a
// terminal read that never returns cannot hold up the run.
void start_stdin_copier(int source, UniqueFd destination) {
  std::thread([source, fd = destination.release()] {
    char buffer[16384];
    for (;;) {
      ssize_t n = ::read(source, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || !write_all(fd, std::string_view(buffer, static_cast<size_t>(n)), "stdin"))
        break;
    }
    ::close(fd);
  }).detach();
}

}  // namespace

Status OwnedWorkspace::give_to_sandbox(const std::string& path) const {
  if (::lchown(path.c_str(), uid_, gid_) != 0) return errno_error("lchown(\"" + path + "\")");
  return {};
}

SeccompPolicy zygote_policy() {
  SeccompPolicy policy;
  policy.default_action = SyscallAction::allow;
  policy.default_origin = "fork server";
  policy.floor_exemptions = {"unshare", "mount", "seccomp"};
  return policy;
}

MonitorInputs monitor_inputs(Launch& launch, OutputHandler& output, const Limits& limits,
                             const RunOptions& options, StdinQueue* stdin_queue) {
  return MonitorInputs{*launch.child,
                       *launch.cgroup,
                       *launch.plan.seccomp,
                       output,
                       limits,
                       options,
                       std::move(launch.stdout_read),
                       std::move(launch.stderr_read),
                       std::move(launch.stdin_write),
                       std::move(launch.control),
                       std::move(launch.channel_read),
                       stdin_queue};
}

Expected<std::unique_ptr<Supervisor>> Supervisor::create(const SandboxConfig& config) {
  if (::geteuid() != 0) {
    return SetupError{"airlock must run as root: it creates cgroups and maps the sandbox's uid", 0};
  }
  if (config.host_uid == 0 || config.host_gid == 0) {
    return SetupError{"the sandbox's host uid and gid must not be 0", 0};
  }
  // Writing to a pipe whose reader is gone must be an error (EPIPE), not the end of the service.
  ::signal(SIGPIPE, SIG_IGN);
  // Fds for many concurrent runs; the sandboxed programs get their own lower limit.
  struct rlimit files {};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  if (Status s = make_dir(config.state_dir, 0755); !s) return s.error();
  remove_stale_state(config.state_dir);
  // One name for this Sandbox's state and cgroup directories; unique even within one process.
  const std::string name = new_instance_name();
  const std::string instance = config.state_dir + "/" + name;
  // Traversable (not listable): the child looks its paths up as the sandbox's uid.
  if (Status s = make_dir(instance, 0711); !s) return s.error();
  if (Status s = make_dir(instance + "/root", 0755); !s) return s.error();

  auto cgroups = make_cgroup_backend(config.cgroup_version, config.cgroup_fs_root,
                                     make_kernel_cgroup_fs(), name);
  if (!cgroups) {
    remove_tree(instance);
    return cgroups.error();
  }
  return std::unique_ptr<Supervisor>(new Supervisor(config, std::move(cgroups.value()), instance));
}

Supervisor::Supervisor(SandboxConfig config, std::unique_ptr<CgroupBackend> cgroups,
                       std::string instance_dir)
    : config_(std::move(config)),
      cgroups_(std::move(cgroups)),
      instance_dir_(std::move(instance_dir)),
      staging_root_(instance_dir_ + "/root") {}

Supervisor::~Supervisor() {
  for (const std::string& mount : mounts_below(instance_dir_)) ::umount2(mount.c_str(), MNT_DETACH);
  remove_tree(instance_dir_);
}

Expected<std::unique_ptr<Workspace>> Supervisor::create_workspace(uint64_t size_bytes) {
  const std::string path = instance_dir_ + "/work-" + std::to_string(next_run_++);
  if (Status s = make_dir(path, 0700); !s) return s.error();
  const std::string options = "size=" + std::to_string(size_bytes) +
                              ",mode=0700,uid=" + std::to_string(config_.host_uid) +
                              ",gid=" + std::to_string(config_.host_gid);
  if (::mount("airlock-work", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    SetupError error = errno_error("mount(tmpfs, \"" + path + "\")");
    ::rmdir(path.c_str());
    return error;
  }
  return std::unique_ptr<Workspace>(new TmpfsWorkspace(path, config_.host_uid, config_.host_gid));
}

Expected<std::shared_ptr<const SeccompFilters>> Supervisor::filters_for(const SeccompPolicy& policy,
                                                                        int control_fd) {
  // Compiling with libseccomp costs far more than a run's other setup: once per policy.
  const std::string key = policy_key(policy, control_fd);
  std::lock_guard lock(filters_mutex_);
  auto it = filters_.find(key);
  if (it != filters_.end()) return it->second;
  auto compiled = compile_seccomp(policy, control_fd);
  if (!compiled) return compiled.error();
  filters_.emplace(key, compiled.value());
  return compiled.value();
}

Expected<std::unique_ptr<Launch>> Supervisor::launch(const Spec& spec, bool blocking_stdin) {
  if (spec.argv.empty()) return SetupError{"no program to run (empty argv)", 0};
  const uint64_t run_number = next_run_++;
  auto launch = std::make_unique<Launch>();

  ChildPlan& plan = launch->plan;
  if (!valid_user_name(spec.user_name)) {
    return SetupError{"user name \"" + spec.user_name + "\": use 1 to 32 letters, digits, '_' or '-'", EINVAL};
  }
  SandboxIdentity identity;
  identity.user_name = spec.user_name;
  auto filters = filters_for(spec.fork_server ? zygote_policy() : spec.seccomp,
                             control_fd_number_for(spec.limits));
  if (!filters) return filters.error();
  plan.seccomp = filters.value();
  auto setup = plan_setup(spec, identity, *plan.seccomp);
  if (!setup) return setup.error();
  plan.setup = setup.value();

  std::string workdir = spec.host_workdir;
  if (workdir.empty()) {
    auto workspace = create_workspace(plan.setup.writable[0].size_bytes);
    if (!workspace) return workspace.error();
    launch->temporary_workspace = std::move(workspace.value());
    workdir = launch->temporary_workspace->path();
  }
  auto mounts = plan_mounts(spec, staging_root_, workdir, identity);
  if (!mounts) return mounts.error();
  plan.mounts = std::move(mounts.value());
  plan.argv_storage = spec.argv;
  plan.env_storage = spec.env;
  plan.host_strings = own_process_strings();
  plan.finalize();

  auto cgroup = cgroups_->create("run-" + std::to_string(run_number), spec.limits);
  if (!cgroup) return cgroup.error();
  launch->cgroup = std::move(cgroup.value());
  if (spec.background) {
    if (Status s = launch->cgroup->set_cpu_share(CpuShare::background); !s) return s.error();
  }

  auto stdin_pipe = make_pipe_nonblocking_end(false);
  if (stdin_pipe && blocking_stdin) ::fcntl(stdin_pipe->write_end.get(), F_SETFL, 0);
  auto stdout_pipe = make_pipe_nonblocking_end(true);
  auto stderr_pipe = make_pipe_nonblocking_end(true);
  auto channel = spec.control_channel ? make_pipe_nonblocking_end(true) : Expected<Pipe>(Pipe{});
  auto control = make_socketpair();
  auto sync = make_pipe();
  auto fork_socket = spec.fork_server ? make_socketpair()
                                      : Expected<std::pair<UniqueFd, UniqueFd>>(
                                            std::pair<UniqueFd, UniqueFd>{});
  for (const SetupError* error :
       {stdin_pipe ? nullptr : &stdin_pipe.error(), stdout_pipe ? nullptr : &stdout_pipe.error(),
        stderr_pipe ? nullptr : &stderr_pipe.error(), channel ? nullptr : &channel.error(),
        control ? nullptr : &control.error(), sync ? nullptr : &sync.error(),
        fork_socket ? nullptr : &fork_socket.error()}) {
    if (error) return *error;
  }
  ChildFds fds{stdin_pipe->read_end.get(),   stdout_pipe->write_end.get(),
               stderr_pipe->write_end.get(), control->second.get(),
               sync->read_end.get(),
               spec.fork_server ? fork_socket->second.get() : channel->write_end.get()};
  auto join_files = launch->cgroup->self_join_files();
  if (!join_files) return join_files.error();
  for (UniqueFd& file : join_files.value()) fds.cgroup_join[fds.cgroup_join_count++] = file.get();

  auto spawned = spawn_child(plan, fds, launch->cgroup->clone_into_fd());
  if (!spawned) return spawned.error();
  launch->child.emplace(std::move(spawned.value()));
  // The child's ends belong to the child now; holding them would keep the pipes from EOF.
  stdin_pipe->read_end.reset();
  stdout_pipe->write_end.reset();
  stderr_pipe->write_end.reset();
  channel->write_end.reset();
  fork_socket->second.reset();
  control->second.reset();
  sync->read_end.reset();
  join_files->clear();

  IdMap ids{identity.uid, identity.gid, config_.host_uid, config_.host_gid};
  if (Status s = write_id_maps(launch->child->pid(), ids); !s) return s.error();
  // Moved into the run's cgroup at its clone (v2), by itself after "go" (v1), or here.
  if (launch->cgroup->clone_into_fd() < 0 && fds.cgroup_join_count == 0) {
    if (Status s = launch->cgroup->attach(launch->child->pid()); !s) return s.error();
  }
  if (Status s = write_all(sync->write_end.get(), "g", "sync"); !s) return s.error();
  launch->stdout_read = std::move(stdout_pipe->read_end);
  launch->stderr_read = std::move(stderr_pipe->read_end);
  launch->stdin_write = std::move(stdin_pipe->write_end);
  launch->control = std::move(control->first);
  launch->channel_read = std::move(channel->read_end);
  launch->fork_socket = std::move(fork_socket->first);
  return launch;
}

Outcome Supervisor::finish(Launch& launch, const MonitorResult& result, const Limits& limits) {
  launch.child->kill();  // normally long gone; makes sure before the cgroup is removed
  int ignored = 0;
  launch.child->try_reap(&ignored);
  CgroupStats stats;
  if (auto read = launch.cgroup->stats()) stats = read.value();
  Outcome outcome = classify(result, stats, limits);
  if (Status s = launch.cgroup->destroy(); !s && outcome.status != RunStatus::setup_error) {
    outcome.reason += " (warning: " + s.error().message() + ")";
  }
  return outcome;
}

Outcome Supervisor::run(const Spec& spec, OutputHandler& output, const RunOptions& options) {
  auto launched = launch(spec, options.stdin_fd >= 0);
  if (!launched) return setup_failure(launched.error());
  Launch& launch = *launched.value();
  if (options.stdin_fd >= 0) start_stdin_copier(options.stdin_fd, std::move(launch.stdin_write));
  MonitorInputs inputs = monitor_inputs(launch, output, spec.limits, options);
  MonitorResult result = monitor(inputs);
  return finish(launch, result, spec.limits);
}

}  // namespace airlock::sandbox
