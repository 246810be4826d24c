#include "api/execution_service.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>

#include "fakes.h"

using namespace airlock;
using namespace airlock::api;
using namespace airlock::api::testing;
using namespace std::chrono_literals;

namespace {

struct Fixture {
  explicit Fixture(ServiceOptions options = {1, 1, 8})
      : service(executor, options, metrics, log,
                [this](const std::string& id, const Job& job, const runner::RunResult&) {
                  std::lock_guard lock(audit_mutex);
                  audited.push_back(id + " by " + job.owner);
                }) {}

  Job job(const std::string& code, const std::string& owner = "alice") {
    Job job;
    job.request.runtime = "python";
    job.request.code = code;
    job.policy = policy;
    job.owner = owner;
    return job;
  }

  std::shared_ptr<const policies::Policy> policy = make_policy("default", {"python"});
  FakeExecutor executor;
  Metrics metrics;
  std::ostringstream log_text;
  Logger log{log_text};
  std::mutex audit_mutex;
  std::vector<std::string> audited;
  ExecutionService service;
};

}  // namespace

TEST_CASE("an execution streams its events and its result is kept") {
  Fixture f;
  auto observer = std::make_shared<CollectingObserver>();
  auto submitted = f.service.submit(f.job("out hi\\n\nexit 2"), observer);
  REQUIRE_FALSE(submitted.rejection);
  auto events = observer->wait();
  REQUIRE(events.size() == 3);
  CHECK(events[0].has_started());
  CHECK(events[1].stdout().data() == "hi\n");
  const auto& result = events[2].exit().result();
  CHECK(result.id() == submitted.id);
  CHECK(result.status() == "nonzero_exit");
  CHECK(result.exit_code() == 2);
  CHECK(result.policy().name() == "default");

  auto stored = f.service.find(submitted.id, "alice");
  REQUIRE(stored);
  CHECK(stored->status() == "nonzero_exit");
  CHECK(f.audited == std::vector<std::string>{submitted.id + " by alice"});
  CHECK(f.log_text.str().find("\"execution_id\":\"" + submitted.id + "\"") != std::string::npos);
}

TEST_CASE("another key cannot see or cancel an execution") {
  Fixture f;
  auto observer = std::make_shared<CollectingObserver>();
  auto submitted = f.service.submit(f.job("exit 0"), observer);
  observer->wait();
  CHECK_FALSE(f.service.find(submitted.id, "mallory"));
  CHECK(f.service.cancel(submitted.id, "mallory") == ExecutionService::CancelOutcome::not_found);
  CHECK(f.service.cancel(submitted.id, "alice") ==
        ExecutionService::CancelOutcome::already_finished);
}

TEST_CASE("beyond the slots and the queue, submissions are refused") {
  Fixture f({1, 1, 8});
  auto running = std::make_shared<CollectingObserver>();
  auto queued = std::make_shared<CollectingObserver>();
  REQUIRE_FALSE(f.service.submit(f.job("wait"), running).rejection);
  f.executor.wait_started(1);
  REQUIRE_FALSE(f.service.submit(f.job("wait"), queued).rejection);
  auto third = f.service.submit(f.job("wait"), std::make_shared<CollectingObserver>());
  REQUIRE(third.rejection);
  CHECK(*third.rejection == ExecutionService::Rejection::queue_full);
  CHECK(f.metrics.render().find("airlock_executions_rejected_total{reason=\"queue_full\"} 1") !=
        std::string::npos);
  f.executor.release();
  CHECK(running->wait().back().exit().result().status() == "ok");
  CHECK(queued->wait().back().exit().result().status() == "ok");
}

TEST_CASE(
    "one key cannot take every place, and the next to run is of the key with fewest running") {
  Fixture f({2, 8, 8});
  CHECK(f.service.key_share_limit() == 2 + 8 - 2);  // a quarter of the queue stays for others
  auto first = std::make_shared<CollectingObserver>();
  REQUIRE_FALSE(f.service.submit(f.job("wait"), first).rejection);
  const auto stopped = f.service.submit(f.job("wait"), std::make_shared<CollectingObserver>());
  f.executor.wait_started(2);
  std::vector<std::string> queued;
  std::vector<std::shared_ptr<CollectingObserver>> observers;
  for (int i = 0; i < 6; ++i) {
    observers.push_back(std::make_shared<CollectingObserver>());
    const auto submitted = f.service.submit(f.job("out a"), observers.back());
    REQUIRE_FALSE(submitted.rejection);
    queued.push_back(submitted.id + " by alice");
  }
  // Her ninth is refused although two places are free: they are kept for other keys.
  const auto refused = f.service.submit(f.job("out a"), std::make_shared<CollectingObserver>());
  REQUIRE(refused.rejection);
  CHECK(*refused.rejection == ExecutionService::Rejection::key_share);
  CHECK(f.metrics.render().find("airlock_executions_rejected_total{reason=\"key_share\"} 1") !=
        std::string::npos);
  auto bob = std::make_shared<CollectingObserver>();
  const auto bobs = f.service.submit(f.job("out b", "bob"), bob);
  REQUIRE_FALSE(bobs.rejection);
  // A worker frees: bob, with nothing running, goes before alice's six queued.
  CHECK(f.service.cancel(stopped.id, "alice") == ExecutionService::CancelOutcome::cancelled);
  CHECK(bob->wait().back().exit().result().status() == "ok");
  f.executor.release();
  for (auto& observer : observers) observer->wait();
  first->wait();
  std::lock_guard lock(f.audit_mutex);
  const auto position = [&](const std::string& line) {
    return std::find(f.audited.begin(), f.audited.end(), line) - f.audited.begin();
  };
  for (const std::string& line : queued) CHECK(position(bobs.id + " by bob") < position(line));
}

TEST_CASE("cancelling a running execution reaches the runner through its eventfd") {
  Fixture f;
  auto observer = std::make_shared<CollectingObserver>();
  auto submitted = f.service.submit(f.job("out before\nwait\nout after"), observer);
  f.executor.wait_started(1);
  CHECK(f.service.find(submitted.id, "alice")->status() == "running");
  CHECK(f.service.cancel(submitted.id, "alice") == ExecutionService::CancelOutcome::cancelled);
  auto events = observer->wait();
  CHECK(events.back().exit().result().status() == "cancelled");
  for (const auto& event : events) CHECK(event.stdout().data() != "after");
}

TEST_CASE("cancelling a queued execution ends it at once without running it") {
  Fixture f({1, 4, 8});
  auto first = std::make_shared<CollectingObserver>();
  auto second = std::make_shared<CollectingObserver>();
  f.service.submit(f.job("wait"), first);
  f.executor.wait_started(1);
  auto queued = f.service.submit(f.job("out never"), second);
  CHECK(f.service.find(queued.id, "alice")->status() == "queued");
  CHECK(f.service.cancel(queued.id, "alice") == ExecutionService::CancelOutcome::cancelled);
  auto events = second->wait();
  REQUIRE(events.size() == 2);
  CHECK(events[0].has_started());
  CHECK(events[1].exit().result().status() == "cancelled");
  f.executor.release();
  first->wait();
}

TEST_CASE("a failure inside airlock ends the stream with an error event") {
  Fixture f;
  auto observer = std::make_shared<CollectingObserver>();
  auto submitted = f.service.submit(f.job("out partial\nthrow disk on fire"), observer);
  auto events = observer->wait();
  REQUIRE(events.back().has_error());
  CHECK(events.back().error().code() == "internal");
  CHECK(events.back().error().message().find("disk on fire") != std::string::npos);
  CHECK(f.service.find(submitted.id, "alice")->status() == "setup_error");
}

TEST_CASE("a request the runner rejects ends with an invalid_request error naming the field") {
  Fixture f;
  auto observer = std::make_shared<CollectingObserver>();
  auto submitted = f.service.submit(
      f.job("reject files[1].path 'big.bin' (2 MiB) does not fit the working directory"), observer);
  REQUIRE_FALSE(submitted.rejection);
  auto events = observer->wait();
  REQUIRE(events.size() == 2);
  CHECK(events[0].has_started());
  REQUIRE(events[1].has_error());
  CHECK(events[1].error().code() == "invalid_request");
  CHECK(events[1].error().field() == "files[1].path");
  CHECK(events[1].error().message() ==
        "files[1].path: 'big.bin' (2 MiB) does not fit the working directory");
  // The execution is still on record, as one whose program never ran.
  auto stored = f.service.find(submitted.id, "alice");
  REQUIRE(stored);
  CHECK(stored->status() == "setup_error");
}

TEST_CASE("only the most recent results are kept") {
  Fixture f({1, 4, 2});
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto observer = std::make_shared<CollectingObserver>();
    ids.push_back(f.service.submit(f.job("exit 0"), observer).id);
    observer->wait();
  }
  CHECK_FALSE(f.service.find(ids[0], "alice"));
  CHECK(f.service.find(ids[1], "alice"));
  CHECK(f.service.find(ids[2], "alice"));
}

TEST_CASE("shutdown refuses new work, cancels the queue, then cancels runs past the grace") {
  Fixture f({1, 4, 8});
  auto running = std::make_shared<CollectingObserver>();
  auto queued = std::make_shared<CollectingObserver>();
  f.service.submit(f.job("wait"), running);
  f.executor.wait_started(1);
  f.service.submit(f.job("out never"), queued);
  f.service.shutdown(0ms);  // the fake never finishes on its own: only the cancel ends it
  CHECK(running->wait().back().exit().result().status() == "cancelled");
  CHECK(queued->wait().back().exit().result().reason() == "the service is shutting down");
  CHECK_FALSE(f.service.accepting());
  auto late = f.service.submit(f.job("exit 0"), std::make_shared<CollectingObserver>());
  REQUIRE(late.rejection);
  CHECK(*late.rejection == ExecutionService::Rejection::shutting_down);
}

TEST_CASE("shutdown lets a running execution finish within the grace period") {
  Fixture f;
  auto running = std::make_shared<CollectingObserver>();
  f.service.submit(f.job("wait\nout done"), running);
  f.executor.wait_started(1);
  // Released only once shutdown has begun: a shutdown that ignored the grace would cancel first.
  std::thread releaser([&] {
    while (f.service.accepting()) std::this_thread::yield();
    f.executor.release();
  });
  f.service.shutdown(std::chrono::hours(1));  // returns once the run is done, not after an hour
  releaser.join();
  auto events = running->wait();
  CHECK(events.back().exit().result().status() == "ok");
}

TEST_CASE("ending the grace period cancels what still runs, during shutdown or before it") {
  SECTION("during: a shutdown with an hour's grace returns once the runs are cancelled") {
    Fixture f;
    auto running = std::make_shared<CollectingObserver>();
    f.service.submit(f.job("wait"), running);
    f.executor.wait_started(1);
    std::thread ender([&] {
      while (f.service.accepting()) std::this_thread::yield();
      f.service.end_grace();
    });
    f.service.shutdown(std::chrono::hours(1));  // the fake never finishes: only a cancel ends it
    ender.join();
    CHECK(running->wait().back().exit().result().status() == "cancelled");
  }
  SECTION("before: the later shutdown's grace is zero") {
    Fixture f;
    auto running = std::make_shared<CollectingObserver>();
    f.service.submit(f.job("wait"), running);
    f.executor.wait_started(1);
    f.service.end_grace();
    f.service.shutdown(std::chrono::hours(1));
    CHECK(running->wait().back().exit().result().status() == "cancelled");
  }
}
