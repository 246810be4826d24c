#include "test_env.h"

#include <unistd.h>

#include <catch2/catch.hpp>

namespace airlock::runner::testing {

bool can_run() {
  if (::geteuid() == 0) return true;
  WARN("skipped: creating sandboxes needs root (cgroups and uid maps)");
  return false;
}

Env& env() {
  static Env shared = [] {
    Env e;
    auto created = sandbox::Sandbox::create({});
    if (!created) FAIL(created.error().message());
    e.sandbox = std::move(created.value());
    auto table = load_runtimes(AIRLOCK_SOURCE_DIR "/runner/runtimes.yaml");
    if (!table) FAIL(table.error().message());
    e.runtimes = table.value();
    e.lookup = [dirs = e.dirs](const std::string& name) {
      return policies::load_policy(name, dirs).policy;
    };
    e.runner = std::make_unique<Runner>(*e.sandbox, e.runtimes, e.lookup,
                                        AIRLOCK_SOURCE_DIR "/runner/drivers");
    return e;
  }();
  return shared;
}

std::shared_ptr<const policies::Policy> policy(const std::string& name) {
  auto loaded = policies::load_policy(name, env().dirs);
  if (!loaded.ok()) FAIL("policy " << name << ": " << loaded.errors.front().format());
  return loaded.policy;
}

}  // namespace airlock::runner::testing
