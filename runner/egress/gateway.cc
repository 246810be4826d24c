#include "runner/egress/gateway.h"

#include <arpa/inet.h>

#include <system_error>

#include "runner/egress/attachment_state.h"
#include "runner/egress/connection.h"
#include "runner/egress/http_head.h"
#include "runner/egress/rules.h"

namespace airlock::egress {

namespace {

// The caller's handle on an attachment; the state itself lives on the I/O thread.
class AttachmentHandle : public Attachment {
 public:
  AttachmentHandle(std::shared_ptr<Gateway::Core> core, std::shared_ptr<AttachmentState> state)
      : core_(std::move(core)), state_(std::move(state)) {}
  ~AttachmentHandle() override { finish(); }

  Report finish() override {
    Report report;
    core_->run_and_wait([&] { report = state_->finish(); });
    return report;
  }
  Usage usage_so_far() override {
    core_->run_and_wait([&] { state_->read_waiting_refusals(); });
    return state_->usage();
  }

 private:
  std::shared_ptr<Gateway::Core> core_;
  std::shared_ptr<AttachmentState> state_;
};

}  // namespace

Attachment::~Attachment() = default;

std::optional<PinnedAddress> parse_pinned_address(std::string_view value) {
  in6_addr ignored;
  const auto literal = [&](const std::string& text) {
    return ::inet_pton(AF_INET, text.c_str(), &ignored) == 1 ||
           ::inet_pton(AF_INET6, text.c_str(), &ignored) == 1;
  };
  // 0.0.0.0 and :: would connect to the host itself.
  const auto usable = [&](const std::string& text) {
    return literal(text) && text != "0.0.0.0" &&
           !(::inet_pton(AF_INET6, text.c_str(), &ignored) == 1 &&
             IN6_IS_ADDR_UNSPECIFIED(&ignored));
  };
  if (usable(std::string(value))) return PinnedAddress{std::string(value), std::nullopt};
  const std::optional<Authority> authority = parse_authority(value);
  if (!authority || !usable(authority->host)) return std::nullopt;
  return PinnedAddress{authority->host, authority->port};
}

Blocked unlisted_refusals(uint64_t count) {
  return {"refusals not listed", std::to_string(count) +
                                     " more refused attempts, past the list's cap of " +
                                     std::to_string(kMaxBlockedReported)};
}

void Gateway::Core::lookup_starting() {
  ++lookups_running;
  if (lookups_running > kResolverThreads + more_resolvers.size() &&
      kResolverThreads + more_resolvers.size() < kMaxResolverThreads) {
    try {
      more_resolvers.emplace_back([this] { resolvers.attach(); });
    } catch (const std::system_error&) {
      // No thread to be had now: the lookup waits for one of those running.
    }
  }
}

void Gateway::Core::run_and_wait(const std::function<void()>& fn) {
  if (io.get_executor().running_in_this_thread()) {
    fn();
    return;
  }
  std::unique_lock lock(mutex);
  if (!running) {  // the thread has stopped: nothing else touches the sockets now
    lock.unlock();
    fn();
    return;
  }
  std::promise<void> done;
  std::future<void> finished = done.get_future();
  net::post(io, [&fn, &done] {
    fn();
    done.set_value();
  });
  lock.unlock();
  finished.wait();
}

std::shared_ptr<const GatewayConfig> Gateway::Core::current_config() {
  std::lock_guard lock(mutex);
  return config;
}

std::unique_ptr<Gateway> Gateway::start(GatewayConfig config) {
  auto core = std::make_shared<Core>();
  core->config = std::make_shared<const GatewayConfig>(std::move(config));
  core->thread = std::thread([io = &core->io] {
    auto work = net::make_work_guard(*io);
    io->run();
  });
  return std::unique_ptr<Gateway>(new Gateway(std::move(core)));
}

Gateway::Gateway(std::shared_ptr<Core> core) : core_(std::move(core)) {}

Gateway::~Gateway() {
  std::vector<std::weak_ptr<AttachmentState>> attachments;
  {
    std::lock_guard lock(core_->mutex);
    attachments = core_->attachments;
  }
  for (const auto& weak : attachments) {
    if (auto state = weak.lock()) core_->run_and_wait([&] { state->finish(); });
  }
  {
    std::lock_guard lock(core_->mutex);
    core_->running = false;
  }
  core_->io.stop();
  core_->thread.join();
  // A lookup still running finishes (getaddrinfo cannot be interrupted); queued ones do not.
  core_->resolvers.stop();
  for (std::thread& thread : core_->more_resolvers) thread.join();
  core_->resolvers.join();
  // Handlers posted before the stop (a finish() waiting for its answer, aborted operations)
  // still run, here, so that no waiter hangs and no state is held by a queued handler.
  core_->io.restart();
  core_->io.poll();
  core_->closers.join();  // last: every close queued, the ones above too, runs
}

sandbox::Expected<std::unique_ptr<Attachment>> Gateway::attach(
    const policies::Egress& egress, SandboxSockets sockets,
    std::function<void(const Blocked&)> on_blocked) {
  auto state = std::make_shared<AttachmentState>(core_, egress, std::move(on_blocked));
  sandbox::Status status;
  core_->run_and_wait([&] { status = state->start(std::move(sockets)); });
  if (!status) {
    core_->run_and_wait([&] { state->finish(); });
    return status.error();
  }
  {
    std::lock_guard lock(core_->mutex);
    std::erase_if(core_->attachments, [](const auto& weak) { return weak.expired(); });
    core_->attachments.push_back(state);
  }
  return std::unique_ptr<Attachment>(std::make_unique<AttachmentHandle>(core_, state));
}

void Gateway::set_config(GatewayConfig config) {
  auto replacement = std::make_shared<const GatewayConfig>(std::move(config));
  std::lock_guard lock(core_->mutex);
  core_->config = std::move(replacement);
}

}  // namespace airlock::egress
