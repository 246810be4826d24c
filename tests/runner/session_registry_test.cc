#include "runner/session_registry.h"

#include <atomic>
#include <chrono>
#include <thread>

#include <catch2/catch.hpp>

namespace airlock::runner {
namespace {

using namespace std::chrono_literals;

// An entry whose kill() counts instead of ending an interpreter.
struct Counted {
  std::shared_ptr<SessionEntry> entry = std::make_shared<SessionEntry>();
  std::shared_ptr<std::atomic<int>> kills = std::make_shared<std::atomic<int>>(0);
};

Counted entry_of(const std::string& owner, std::chrono::milliseconds idle_timeout = 1h,
                 std::chrono::milliseconds max_lifetime = 1h) {
  Counted made;
  made.entry->owner = owner;
  made.entry->runtime = "python";
  made.entry->idle_timeout = idle_timeout;
  made.entry->max_lifetime = max_lifetime;
  made.entry->kill = [kills = made.kills] { ++*kills; };
  return made;
}

// Reserves and adds a session for `owner`; its id.
std::string add(SessionRegistry& registry, const Counted& made) {
  auto reserved = registry.reserve(made.entry->owner);
  REQUIRE(std::holds_alternative<SessionRegistry::Reservation>(reserved));
  auto added =
      registry.add(std::move(std::get<SessionRegistry::Reservation>(reserved)), made.entry);
  REQUIRE(std::holds_alternative<SessionInfo>(added));
  return std::get<SessionInfo>(added).id;
}

SessionRefusal refusal_of(const auto& result) {
  REQUIRE(std::holds_alternative<SessionError>(result));
  return std::get<SessionError>(result).refusal;
}

// Waits until `done` holds, for far longer than any timeout under test; never asserts a duration.
template <typename Done>
bool eventually(Done done) {
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

}  // namespace

TEST_CASE("the service cap and the per-key cap refuse with their own refusal") {
  SessionRegistry registry(3, 2, IdMaker());
  add(registry, entry_of("alice"));
  // A reservation counts against both caps while its session is being made.
  auto held = registry.reserve("alice");
  REQUIRE(std::holds_alternative<SessionRegistry::Reservation>(held));
  CHECK(refusal_of(registry.reserve("alice")) == SessionRefusal::too_many_for_owner);
  add(registry, entry_of("bob"));
  CHECK(refusal_of(registry.reserve("carol")) == SessionRefusal::too_many_sessions);
  CHECK(registry.size() == 2);

  // Dropping the reservation unused frees its place.
  held = SessionError{};
  add(registry, entry_of("carol"));
  CHECK(registry.size() == 3);
  CHECK(refusal_of(registry.reserve("dave")) == SessionRefusal::too_many_sessions);
}

TEST_CASE("a session runs one lease at a time; dropping it starts the idle clock") {
  SessionRegistry registry(4, 4, IdMaker());
  Counted made = entry_of("alice");
  const std::string id = add(registry, made);
  const auto used_before = registry.info(id, "alice")->last_used_at;
  {
    auto lease = registry.acquire(id, "alice");
    REQUIRE(std::holds_alternative<SessionRegistry::Lease>(lease));
    CHECK(std::get<SessionRegistry::Lease>(lease).entry() == made.entry);
    CHECK(registry.info(id, "alice")->busy);
    CHECK(refusal_of(registry.acquire(id, "alice")) == SessionRefusal::busy);
    // While busy, use by the files calls does not move the idle clock.
    registry.touch(id, "alice");
    CHECK(registry.info(id, "alice")->last_used_at == used_before);
    std::this_thread::sleep_for(2ms);
  }
  const SessionInfo after = *registry.info(id, "alice");
  CHECK_FALSE(after.busy);
  CHECK(after.last_used_at > used_before);
  CHECK(std::holds_alternative<SessionRegistry::Lease>(registry.acquire(id, "alice")));
  CHECK(*made.kills == 0);
}

TEST_CASE("a session closed while leased ends on the reaper, not where the lease is dropped") {
  // What runs in a session ends with its entry; the lease may be dropped on an I/O thread.
  struct Tracked : SessionEntry {
    std::shared_ptr<std::atomic<std::thread::id>> ended_on;
    ~Tracked() { *ended_on = std::this_thread::get_id(); }
  };
  auto ended_on = std::make_shared<std::atomic<std::thread::id>>();
  SessionRegistry registry(4, 4, IdMaker());
  Counted made = entry_of("alice");
  auto tracked = std::make_shared<Tracked>();
  tracked->ended_on = ended_on;
  tracked->owner = made.entry->owner;
  tracked->runtime = made.entry->runtime;
  tracked->idle_timeout = made.entry->idle_timeout;
  tracked->max_lifetime = made.entry->max_lifetime;
  tracked->kill = made.entry->kill;
  made.entry = std::move(tracked);
  const std::string id = add(registry, made);
  made.entry.reset();
  {
    auto lease = registry.acquire(id, "alice");
    REQUIRE(std::holds_alternative<SessionRegistry::Lease>(lease));
    CHECK(registry.close(id, "alice"));
    CHECK(*made.kills == 1);
  }  // the last reference, dropped on this thread
  REQUIRE(eventually([&] { return ended_on->load() != std::thread::id(); }));
  CHECK(ended_on->load() != std::this_thread::get_id());
}

TEST_CASE("the reaper removes an idle session and one past its lifetime, busy or not") {
  SessionRegistry registry(4, 4, IdMaker());
  Counted idle = entry_of("alice", 50ms);
  Counted old_busy = entry_of("alice", 1h, 100ms);
  Counted long_busy = entry_of("alice", 50ms);  // idle time does not pass while busy
  Counted kept = entry_of("alice");
  const std::string idle_id = add(registry, idle);
  const std::string old_id = add(registry, old_busy);
  const std::string long_id = add(registry, long_busy);
  const std::string kept_id = add(registry, kept);
  auto old_lease = registry.acquire(old_id, "alice");
  auto long_lease = registry.acquire(long_id, "alice");
  REQUIRE(std::holds_alternative<SessionRegistry::Lease>(old_lease));
  REQUIRE(std::holds_alternative<SessionRegistry::Lease>(long_lease));

  CHECK(eventually([&] { return *idle.kills == 1 && *old_busy.kills == 1; }));
  CHECK_FALSE(registry.info(idle_id, "alice"));
  CHECK_FALSE(registry.info(old_id, "alice"));
  CHECK(old_busy.entry->closed);
  // Still leased, it is neither found nor killed twice when the lease is dropped.
  old_lease = SessionError{};
  CHECK(*old_busy.kills == 1);
  CHECK(refusal_of(registry.acquire(old_id, "alice")) == SessionRefusal::not_found);

  CHECK(registry.info(long_id, "alice"));
  CHECK(*long_busy.kills == 0);
  long_lease = SessionError{};  // now its idle clock runs
  CHECK(eventually([&] { return *long_busy.kills == 1; }));
  CHECK(registry.size() == 1);
  CHECK(registry.info(kept_id, "alice"));
  CHECK(*kept.kills == 0);
}

TEST_CASE("a session is only found by its owner") {
  SessionRegistry registry(4, 4, IdMaker());
  Counted made = entry_of("alice");
  const std::string id = add(registry, made);
  CHECK_FALSE(registry.find(id, "bob"));
  CHECK_FALSE(registry.touch(id, "bob"));
  CHECK_FALSE(registry.info(id, "bob"));
  CHECK(registry.list("bob").empty());
  CHECK(refusal_of(registry.acquire(id, "bob")) == SessionRefusal::not_found);
  CHECK_FALSE(registry.close(id, "bob"));
  CHECK(*made.kills == 0);

  CHECK(registry.find(id, "alice") == made.entry);
  REQUIRE(registry.list("alice").size() == 1);
  CHECK(registry.list("alice")[0].id == id);
  CHECK(registry.close(id, "alice"));
  CHECK(*made.kills == 1);
  CHECK_FALSE(registry.find(id, "alice"));
  CHECK(registry.missing(id).refusal == SessionRefusal::not_found);
}

TEST_CASE(
    "a drain refuses new sessions, closes idle ones at once and busy ones at release, and their "
    "ids answer lost") {
  SessionRegistry registry(4, 4, IdMaker("r1"));
  Counted idle = entry_of("alice");
  Counted busy = entry_of("alice");
  const std::string idle_id = add(registry, idle);
  const std::string busy_id = add(registry, busy);
  auto lease = registry.acquire(busy_id, "alice");
  REQUIRE(std::holds_alternative<SessionRegistry::Lease>(lease));
  // A session being made when the drain begins is refused when it is added.
  auto reserved = registry.reserve("bob");
  REQUIRE(std::holds_alternative<SessionRegistry::Reservation>(reserved));

  registry.drain();
  CHECK(*idle.kills == 1);
  CHECK_FALSE(registry.find(idle_id, "alice"));
  CHECK(registry.missing(idle_id).refusal == SessionRefusal::lost);
  CHECK(refusal_of(registry.reserve("carol")) == SessionRefusal::shutting_down);
  CHECK(refusal_of(registry.add(std::move(std::get<SessionRegistry::Reservation>(reserved)),
                                entry_of("bob").entry)) == SessionRefusal::shutting_down);

  CHECK(registry.find(busy_id, "alice"));
  CHECK(*busy.kills == 0);
  lease = SessionError{};
  CHECK(*busy.kills == 1);
  CHECK_FALSE(registry.find(busy_id, "alice"));
  CHECK(refusal_of(registry.acquire(busy_id, "alice")) == SessionRefusal::lost);
  CHECK(registry.size() == 0);
}

TEST_CASE("an id of another replica is elsewhere, one of an earlier run is lost") {
  SessionRegistry registry(4, 4, IdMaker("r1"));
  const SessionError elsewhere = registry.missing(IdMaker("r2").make("se"));
  CHECK(elsewhere.refusal == SessionRefusal::elsewhere);
  CHECK(elsewhere.message.find("replica r2") != std::string::npos);
  // The same replica name with another incarnation: this replica restarted since.
  CHECK(registry.missing(IdMaker("r1").make("se")).refusal == SessionRefusal::lost);
  CHECK(registry.missing("se_r1_nonsense").refusal == SessionRefusal::not_found);
  // An id this run made, closed since, is simply not found.
  const std::string id = add(registry, entry_of("alice"));
  CHECK(id.starts_with("se_r1_"));
  REQUIRE(registry.close(id, "alice"));
  CHECK(registry.missing(id).refusal == SessionRefusal::not_found);
}

}  // namespace airlock::runner

namespace airlock::runner {

TEST_CASE("a registry of workspaces makes sb ids and names them sandboxes in refusals") {
  SessionRegistry registry(
      1, 1, IdMaker("r1"),
      {"sb", "sandbox", "sandboxes", "kill one (DELETE /sandboxes/{id}) first"});
  const std::string id = add(registry, entry_of("alice"));
  CHECK(id.starts_with("sb_r1_"));
  CHECK(IdMaker::well_formed("sb", id));
  auto refused = registry.reserve("alice");
  REQUIRE(std::holds_alternative<SessionError>(refused));
  CHECK(std::get<SessionError>(refused).message.find("sandboxes") != std::string::npos);
  CHECK(registry.missing(IdMaker("r2").make("sb")).refusal == SessionRefusal::elsewhere);
  CHECK(registry.missing(IdMaker("r1").make("sb")).refusal == SessionRefusal::lost);
  CHECK(registry.missing(IdMaker("r1").make("se")).refusal == SessionRefusal::not_found);
  REQUIRE(registry.close(id, "alice"));
  const SessionError gone = registry.missing(id);
  CHECK(gone.refusal == SessionRefusal::not_found);
  CHECK(gone.message.find("no sandbox") != std::string::npos);
}

TEST_CASE("set_timeout restarts the idle clock, is clamped by the lifetime, and expiry follows") {
  SessionRegistry registry(4, 4, IdMaker());
  Counted made = entry_of("alice", 1h, 1h);
  const std::string id = add(registry, made);
  CHECK_FALSE(registry.set_timeout(id, "bob", 1s));
  CHECK(registry.find_any(id) == made.entry);
  CHECK_FALSE(registry.find_any("sb_nonsense"));

  // Longer than the lifetime left: it ends with the lifetime.
  auto info = registry.set_timeout(id, "alice", 5h);
  REQUIRE(info);
  CHECK(info->idle_expires_at <= info->lifetime_ends_at);
  CHECK(info->idle_expires_at > info->lifetime_ends_at - 1min);

  // Shorter: it expires then, and the reaper removes and kills it.
  info = registry.set_timeout(id, "alice", 50ms);
  REQUIRE(info);
  CHECK(info->idle_timeout == 50ms);
  CHECK(eventually([&] { return *made.kills == 1; }));
  CHECK_FALSE(registry.find(id, "alice"));
}

}  // namespace airlock::runner
