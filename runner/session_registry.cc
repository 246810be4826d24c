#include "runner/session_registry.h"

#include <utility>

namespace airlock::runner {

using Clock = SessionEntry::Clock;
using SystemClock = std::chrono::system_clock;

namespace {

SessionError refuse(SessionRefusal refusal, std::string message) {
  return SessionError{refusal, {}, std::move(message)};
}

SessionError shutting_down(const RegistryNames& names) {
  return refuse(SessionRefusal::shutting_down,
                "this replica is shutting down and takes no new " + names.plural +
                    "; retry (a balancer places it on another replica)");
}

void kill(SessionEntry& entry) {
  if (entry.kill) entry.kill();
}

}  // namespace

SessionRegistry::Reservation::Reservation(SessionRegistry& registry, std::string owner)
    : registry_(&registry), owner_(std::move(owner)) {}

SessionRegistry::Reservation::Reservation(Reservation&& other) noexcept
    : registry_(std::exchange(other.registry_, nullptr)), owner_(std::move(other.owner_)) {}

SessionRegistry::Reservation::~Reservation() {
  if (!registry_) return;
  std::lock_guard lock(registry_->mutex_);
  registry_->unreserve(owner_);
}

SessionRegistry::Lease::Lease(SessionRegistry& registry, std::shared_ptr<SessionEntry> entry)
    : registry_(&registry), entry_(std::move(entry)) {}

SessionRegistry::Lease::Lease(Lease&& other) noexcept
    : registry_(std::exchange(other.registry_, nullptr)), entry_(std::move(other.entry_)) {}

SessionRegistry::Lease::~Lease() {
  if (!registry_) return;
  registry_->release(*entry_);
  registry_->retire(std::move(entry_));
}

SessionRegistry::SessionRegistry(size_t max_sessions, size_t max_sessions_per_owner, IdMaker ids,
                                 RegistryNames names)
    : max_sessions_(max_sessions),
      max_sessions_per_owner_(max_sessions_per_owner),
      ids_(std::move(ids)),
      names_(std::move(names)) {
  reaper_ = std::thread([this] { reap(); });
}

SessionRegistry::~SessionRegistry() {
  std::map<std::string, std::shared_ptr<SessionEntry>> sessions;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    sessions.swap(sessions_);
    for (auto& [id, entry] : sessions) entry->closed = true;
  }
  changed_.notify_all();
  if (reaper_.joinable()) reaper_.join();
  for (auto& [id, entry] : sessions) kill(*entry);
  retired_.clear();
}

std::variant<SessionRegistry::Reservation, SessionError> SessionRegistry::reserve(
    const std::string& owner) {
  std::lock_guard lock(mutex_);
  if (draining_ || stopping_) return shutting_down(names_);
  auto reserved = reserved_by_owner_.find(owner);
  size_t owned = reserved == reserved_by_owner_.end() ? 0 : reserved->second;
  for (const auto& [id, other] : sessions_) owned += other->owner == owner ? 1 : 0;
  if (sessions_.size() + reserved_ >= max_sessions_) {
    return refuse(SessionRefusal::too_many_sessions,
                  "the service already has its maximum of " + std::to_string(max_sessions_) + " " +
                      names_.plural + "; close one or retry later");
  }
  if (owned >= max_sessions_per_owner_) {
    return refuse(SessionRefusal::too_many_for_owner, "this API key already has its maximum of " +
                                                          std::to_string(max_sessions_per_owner_) +
                                                          " " + names_.plural + "; " +
                                                          names_.close_hint);
  }
  ++reserved_;
  ++reserved_by_owner_[owner];
  return Reservation(*this, owner);
}

void SessionRegistry::unreserve(const std::string& owner) {
  --reserved_;
  if (--reserved_by_owner_[owner] == 0) reserved_by_owner_.erase(owner);
}

std::variant<SessionInfo, SessionError> SessionRegistry::add(Reservation reservation,
                                                             std::shared_ptr<SessionEntry> entry) {
  entry->id = ids_.make(names_.id_kind);
  std::lock_guard lock(mutex_);
  unreserve(reservation.owner_);
  reservation.registry_ = nullptr;
  if (stopping_ || draining_) return shutting_down(names_);
  entry->created = entry->last_used = Clock::now();
  entry->created_wall = SystemClock::now();
  sessions_[entry->id] = entry;
  changed_.notify_all();  // a new deadline for the reaper
  return info_of(*entry);
}

SessionError SessionRegistry::missing(const std::string& id) const {
  const std::string& replica = ids_.replica();
  const std::string here = replica.empty() ? "this service" : "replica " + replica;
  const std::string& noun = names_.noun;
  switch (ids_.origin(names_.id_kind, id)) {
    case IdOrigin::other_replica: {
      const std::string_view owner = IdMaker::replica_of(names_.id_kind, id);
      return refuse(SessionRefusal::elsewhere,
                    noun + " \"" + id + "\" lives on " +
                        (owner.empty() ? std::string("a service without a replica name")
                                       : "replica " + std::string(owner)) +
                        ", not on " + here +
                        "; send its requests through the balancer, which routes them by the id");
    }
    case IdOrigin::earlier_run:
      return refuse(SessionRefusal::lost,
                    noun + " \"" + id + "\" is lost: " + here +
                        " restarted since it was created, and its variables and files went "
                        "with it; create a new " +
                        noun);
    case IdOrigin::this_run:
    case IdOrigin::not_an_id:
      break;
  }
  if (draining_) {
    return refuse(SessionRefusal::lost, noun + " \"" + id + "\" is lost: " + here +
                                            " is shutting down and has closed its " +
                                            names_.plural + "; create a new " + noun);
  }
  return refuse(SessionRefusal::not_found,
                "no " + noun + " \"" + id + "\" (it may have been closed or have expired)");
}

void SessionRegistry::drain() {
  std::vector<std::shared_ptr<SessionEntry>> idle;
  {
    std::lock_guard lock(mutex_);
    draining_ = true;
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second->busy) {
        ++it;
        continue;
      }
      it->second->closed = true;
      idle.push_back(it->second);
      it = sessions_.erase(it);
    }
  }
  changed_.notify_all();
  for (auto& entry : idle) kill(*entry);
}

bool SessionRegistry::begin_execution(SessionEntry& entry) {
  std::lock_guard lock(mutex_);
  if (entry.closed) return false;
  ++entry.executions;
  return true;
}

bool SessionRegistry::closed(const SessionEntry& entry) const {
  std::lock_guard lock(mutex_);
  return entry.closed;
}

SessionInfo SessionRegistry::info_of(const SessionEntry& entry) const {
  SessionInfo info;
  info.id = entry.id;
  info.runtime = entry.runtime;
  info.policy_name = entry.policy_name;
  info.policy_hash = entry.policy_hash;
  info.idle_timeout = entry.idle_timeout;
  info.max_lifetime = entry.max_lifetime;
  const auto to_wall = [&](Clock::time_point t) {
    return entry.created_wall +
           std::chrono::duration_cast<SystemClock::duration>(t - entry.created);
  };
  info.created_at = entry.created_wall;
  info.last_used_at = to_wall(entry.last_used);
  info.idle_expires_at = to_wall(entry.idle_deadline());
  info.lifetime_ends_at = to_wall(entry.lifetime_deadline());
  info.busy = entry.busy;
  info.executions = entry.executions;
  info.interpreter_restarts = entry.restarts;
  return info;
}

std::shared_ptr<SessionEntry> SessionRegistry::find_locked(const std::string& id,
                                                           const std::string& owner) const {
  auto found = sessions_.find(id);
  if (found == sessions_.end() || found->second->owner != owner) return nullptr;
  return found->second;
}

std::shared_ptr<SessionEntry> SessionRegistry::find(const std::string& id,
                                                    const std::string& owner) const {
  std::lock_guard lock(mutex_);
  return find_locked(id, owner);
}

std::shared_ptr<SessionEntry> SessionRegistry::find_any(const std::string& id) const {
  std::lock_guard lock(mutex_);
  auto found = sessions_.find(id);
  return found == sessions_.end() ? nullptr : found->second;
}

bool SessionRegistry::any_matches(const std::string& id,
                                  const std::function<bool(const SessionEntry&)>& test) const {
  std::lock_guard lock(mutex_);
  auto found = sessions_.find(id);
  return found != sessions_.end() && test(*found->second);
}

std::optional<SessionInfo> SessionRegistry::set_timeout(const std::string& id,
                                                        const std::string& owner,
                                                        std::chrono::milliseconds timeout) {
  std::optional<SessionInfo> info;
  {
    std::lock_guard lock(mutex_);
    auto entry = find_locked(id, owner);
    if (!entry) return std::nullopt;
    const Clock::time_point now = Clock::now();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(entry->lifetime_deadline() - now, Clock::duration::zero()));
    entry->last_used = now;
    entry->idle_timeout = std::min(timeout, left);
    info = info_of(*entry);
  }
  changed_.notify_all();  // a new deadline for the reaper
  return info;
}

std::shared_ptr<SessionEntry> SessionRegistry::touch(const std::string& id,
                                                     const std::string& owner) {
  std::lock_guard lock(mutex_);
  auto entry = find_locked(id, owner);
  if (entry && !entry->busy) entry->last_used = Clock::now();
  return entry;
}

std::optional<SessionInfo> SessionRegistry::info(const std::string& id,
                                                 const std::string& owner) const {
  std::lock_guard lock(mutex_);
  auto entry = find_locked(id, owner);
  if (!entry) return std::nullopt;
  return info_of(*entry);
}

std::vector<SessionInfo> SessionRegistry::list(const std::string& owner) const {
  std::lock_guard lock(mutex_);
  std::vector<SessionInfo> out;
  for (const auto& [id, entry] : sessions_) {
    if (entry->owner == owner) out.push_back(info_of(*entry));
  }
  return out;
}

size_t SessionRegistry::size() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

bool SessionRegistry::close(const std::string& id, const std::string& owner) {
  std::shared_ptr<SessionEntry> entry;
  {
    std::lock_guard lock(mutex_);
    entry = find_locked(id, owner);
    if (!entry) return false;
    entry->closed = true;
    sessions_.erase(id);
  }
  changed_.notify_all();
  kill(*entry);
  // What the session holds goes when the last holder (this, or a running execution) lets go.
  return true;
}

std::variant<SessionRegistry::Lease, SessionError> SessionRegistry::acquire(
    const std::string& id, const std::string& owner) {
  std::lock_guard lock(mutex_);
  auto entry = find_locked(id, owner);
  if (!entry) return missing(id);
  if (entry->busy) {
    return refuse(SessionRefusal::busy,
                  "session \"" + id +
                      "\" is already running an execution; a session runs one at a time, so "
                      "wait for it to finish (or cancel it) and send this again");
  }
  entry->busy = true;
  return Lease(*this, std::move(entry));
}

void SessionRegistry::release(SessionEntry& entry) {
  bool close_now = false;
  {
    std::lock_guard lock(mutex_);
    entry.busy = false;
    entry.last_used = Clock::now();
    // A drain closes a busy session once its execution ends.
    if (draining_ && !entry.closed) {
      entry.closed = close_now = true;
      sessions_.erase(entry.id);
    }
  }
  changed_.notify_all();  // the idle clock starts now
  if (close_now) kill(entry);
}

void SessionRegistry::retire(std::shared_ptr<SessionEntry> entry) {
  // Not the last reference: dropping it here costs nothing. (Another thread may drop its own at
  // the same moment; that one is then the last, and pays.)
  if (entry.use_count() > 1) return;
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      retired_.push_back(std::move(entry));
    }
  }
  changed_.notify_all();
}

void SessionRegistry::reap() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (!retired_.empty()) {
      std::vector<std::shared_ptr<SessionEntry>> retired;
      retired.swap(retired_);
      lock.unlock();
      retired.clear();  // ends what ran in them: sandbox, cgroup, workspace
      lock.lock();
      continue;
    }
    const Clock::time_point now = Clock::now();
    std::vector<std::shared_ptr<SessionEntry>> expired;
    Clock::time_point next = now + std::chrono::hours(1);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      SessionEntry& entry = *it->second;
      // Idle means no lease is held: a long execution never counts as idle time.
      Clock::time_point deadline = entry.lifetime_deadline();
      if (!entry.busy) deadline = std::min(deadline, entry.idle_deadline());
      if (deadline <= now) {
        entry.closed = true;
        expired.push_back(it->second);
        it = sessions_.erase(it);
      } else {
        next = std::min(next, deadline);
        ++it;
      }
    }
    if (!expired.empty()) {
      lock.unlock();
      // Killing and cleaning up (cgroup, workspace) takes time; nothing else waits for it.
      for (auto& entry : expired) kill(*entry);
      expired.clear();
      lock.lock();
      continue;
    }
    changed_.wait_until(lock, next);
  }
}

}  // namespace airlock::runner
