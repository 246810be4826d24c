// The registry of a replica's live sessions: their ids, the service's and each owner's caps, the
// lease that lets one execution at a time into a session, expiry (the reaper) and drain. It knows
// nothing of what runs in a session: each entry carries a `kill` that ends it, so the registry can
// be tested without a sandbox.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "runner/ids.h"

namespace airlock::runner {

// A session as its owner sees it. Times are wall-clock, for reporting.
struct SessionInfo {
  std::string id;  // "se_" [replica "_"] 24 hex digits (runner/ids.h)
  std::string runtime;
  std::string policy_name;
  std::string policy_hash;
  std::chrono::milliseconds idle_timeout{0};
  std::chrono::milliseconds max_lifetime{0};
  std::chrono::system_clock::time_point created_at;
  std::chrono::system_clock::time_point last_used_at;     // end of the last use (creation at first)
  std::chrono::system_clock::time_point idle_expires_at;  // if not used again before
  std::chrono::system_clock::time_point lifetime_ends_at;  // whatever happens
  bool busy = false;  // an execution runs or waits in the queue
  uint64_t executions = 0;
  uint64_t interpreter_restarts = 0;  // times state was lost and a fresh interpreter started
};

enum class SessionRefusal {
  too_many_sessions,   // the service's cap (429)
  too_many_for_owner,  // the API key's cap (429)
  invalid,             // runtime without session support, a timeout out of range (400)
  setup_failed,        // the sandbox could not be made (500)
  not_found,           // no such session for this owner (404)
  busy,                // an execution already runs in it (409)
  lost,                // it was here, and is gone with its state: a restart or a drain (410)
  elsewhere,           // its id names another replica: a balancer sent it to the wrong one (421)
  shutting_down,       // the replica is draining and takes no new sessions (503)
};

struct SessionError {
  SessionRefusal refusal;
  std::string field;  // with invalid: the request field at fault
  std::string message;
};

// One session as the registry keeps it. Whoever makes sessions fills in the first group before
// add() and may derive from this to keep what runs in the session beside it.
struct SessionEntry {
  using Clock = std::chrono::steady_clock;

  // Set before add(), then read-only (add() sets id).
  std::string id;
  std::string owner;  // the API key's name
  std::string runtime;
  std::string policy_name;
  std::string policy_hash;
  std::chrono::milliseconds idle_timeout{0};
  std::chrono::milliseconds max_lifetime{0};
  // Ends what runs in the session. Called once the entry is removed (closed, expired, drained or
  // the registry destroyed), without the registry's mutex held, possibly while a lease is held.
  std::function<void()> kill;

  // Kept by the registry, under its own lock (a lease holder asks begin_execution and closed).
  Clock::time_point created;
  std::chrono::system_clock::time_point created_wall;
  Clock::time_point last_used;
  bool busy = false;    // a lease is held
  bool closed = false;  // removed from the registry; an execution still running ends
  uint64_t executions = 0;
  std::atomic<uint64_t> restarts{0};  // counted by the lease holder, read for info

  Clock::time_point idle_deadline() const { return last_used + idle_timeout; }
  Clock::time_point lifetime_deadline() const { return created + max_lifetime; }
};

// What a registry's entries are called: their ids' kind (runner/ids.h) and, in refusals, their
// name and how a client closes one. Sessions by default; workspaces are "sb" ("sandbox").
struct RegistryNames {
  std::string id_kind = "se";
  std::string noun = "session";
  std::string plural = "sessions";
  std::string close_hint = "close one (DELETE /v1/sessions/{id}) first";
};

class SessionRegistry {
 public:
  // `ids` makes the ids (they name the replica); the caps count live sessions and those being made.
  SessionRegistry(size_t max_sessions, size_t max_sessions_per_owner, IdMaker ids,
                  RegistryNames names = {});
  // Stops the reaper and kills every session.
  ~SessionRegistry();
  SessionRegistry(const SessionRegistry&) = delete;
  SessionRegistry& operator=(const SessionRegistry&) = delete;

  // A place held for a session being made, counted against both caps. Dropping it unused frees it.
  class Reservation {
   public:
    Reservation(Reservation&& other) noexcept;
    Reservation& operator=(Reservation&&) = delete;
    ~Reservation();

   private:
    friend class SessionRegistry;
    Reservation(SessionRegistry& registry, std::string owner);
    SessionRegistry* registry_;  // null once moved from or used
    std::string owner_;
  };

  // The right to run one execution in a session: at most one exists per session at a time.
  // Dropping it (run or not) frees the session and starts its idle clock.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    const std::shared_ptr<SessionEntry>& entry() const { return entry_; }

   private:
    friend class SessionRegistry;
    Lease(SessionRegistry& registry, std::shared_ptr<SessionEntry> entry);
    SessionRegistry* registry_;  // null once moved from
    std::shared_ptr<SessionEntry> entry_;
  };

  // Holds a place for a new session of `owner`, or says why not: shutting_down (a drain began),
  // too_many_sessions, too_many_for_owner. The session is made outside the registry meanwhile.
  std::variant<Reservation, SessionError> reserve(const std::string& owner);
  // Gives the made session a fresh id and starts its clocks. shutting_down when a drain or the
  // registry's end began since the reservation; the caller then drops the entry (and what it runs).
  std::variant<SessionInfo, SessionError> add(Reservation reservation,
                                              std::shared_ptr<SessionEntry> entry);

  // The session `id` of `owner`; null when there is none (see missing()).
  std::shared_ptr<SessionEntry> find(const std::string& id, const std::string& owner) const;
  // The session `id`, whoever owns it (for callers that check another credential themselves).
  std::shared_ptr<SessionEntry> find_any(const std::string& id) const;
  // Whether session `id` exists and `test` says yes of it, asked under the registry's lock and
  // keeping no reference: the caller can never end up holding the last one (whose release ends
  // the sandbox). For the I/O threads, which must not block.
  bool any_matches(const std::string& id,
                   const std::function<bool(const SessionEntry&)>& test) const;
  // find(); an idle session's use counts as activity (its idle deadline moves).
  std::shared_ptr<SessionEntry> touch(const std::string& id, const std::string& owner);
  // Sets the session's idle timeout and restarts its idle clock: it expires `timeout` from now,
  // or at the end of its lifetime if that comes first. Only this and touch() move the clock.
  // nullopt when it is not this owner's.
  std::optional<SessionInfo> set_timeout(const std::string& id, const std::string& owner,
                                         std::chrono::milliseconds timeout);
  std::optional<SessionInfo> info(const std::string& id, const std::string& owner) const;
  std::vector<SessionInfo> list(const std::string& owner) const;
  // Removes the session now and kills it, even mid-execution. False when it is not this owner's.
  bool close(const std::string& id, const std::string& owner);
  size_t size() const;

  // Takes the session for one execution; busy when a lease is held, missing() when not found.
  std::variant<Lease, SessionError> acquire(const std::string& id, const std::string& owner);

  // Why a session id that find() misses is missing: not_found (closed, expired, never made),
  // lost (made by this replica before it restarted, or closed by a drain) or elsewhere (another
  // replica's). The error's message says what the client can do.
  SessionError missing(const std::string& id) const;

  // For a replica told to stop: takes no new sessions (shutting_down), closes the idle ones now
  // and each busy one when its lease is dropped. Their ids then answer lost.
  void drain();

  // For a lease holder: counts an execution of the entry, unless it was closed (false).
  bool begin_execution(SessionEntry& entry);
  // Whether the entry has been closed (removed from the registry) since it was found.
  bool closed(const SessionEntry& entry) const;

 private:
  void unreserve(const std::string& owner);  // with mutex_ held
  std::shared_ptr<SessionEntry> find_locked(const std::string& id,
                                            const std::string& owner) const;  // with mutex_ held
  SessionInfo info_of(const SessionEntry& entry) const;                       // with mutex_ held
  void release(SessionEntry& entry);
  // A lease's reference to its entry, dropped. When it is the last (the session was closed
  // while the lease was held), the reaper drops it: ending what ran in the session takes time,
  // and a lease may be let go on an I/O thread (a queued execution's connection closing).
  void retire(std::shared_ptr<SessionEntry> entry);
  void reap();  // the expiry thread

  const size_t max_sessions_;
  const size_t max_sessions_per_owner_;
  const IdMaker ids_;
  const RegistryNames names_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::shared_ptr<SessionEntry>> sessions_;
  size_t reserved_ = 0;  // being made, counted against the service's cap
  std::map<std::string, size_t> reserved_by_owner_;
  bool stopping_ = false;
  std::atomic<bool> draining_{false};  // read by missing() with or without mutex_
  std::vector<std::shared_ptr<SessionEntry>> retired_;  // for the reaper to drop
  std::thread reaper_;
};

}  // namespace airlock::runner
