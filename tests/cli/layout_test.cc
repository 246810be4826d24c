// Where the binary finds its files: from its own path, by the install layout.
#include "cli/layout.h"

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

namespace airlock::cli {
namespace {

// Sets an environment variable for one scope, restoring what was there.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) saved_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (saved_) {
      ::setenv(name_, saved_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> saved_;
};

TEST_CASE("a binary under a prefix finds its files in that prefix's etc and lib") {
  const Layout layout = layout_of("/opt/airlock/bin/airlock");
  CHECK(layout.config_dir == "/opt/airlock/etc/airlock");
  CHECK(layout.policy_dir() == "/opt/airlock/etc/airlock/policies");
  CHECK(layout.runtimes_file() == "/opt/airlock/etc/airlock/runtimes.yaml");
  CHECK(layout.drivers_dir() == "/opt/airlock/lib/airlock/drivers");
  CHECK(layout.fork_library() == "/opt/airlock/lib/airlock/libairlock_fork.so");
}

TEST_CASE("a binary in /usr/bin reads its configuration from /etc/airlock") {
  const Layout layout = layout_of("/usr/bin/airlock");
  CHECK(layout.config_dir == "/etc/airlock");
  CHECK(layout.lib_dir == "/usr/lib/airlock");
}

TEST_CASE("the build tree's binary, build/bin/airlock, finds the files staged in build/") {
  const Layout layout = layout_of("/src/build/bin/airlock");
  CHECK(layout.config_dir == "/src/build/etc/airlock");
  CHECK(layout.lib_dir == "/src/build/lib/airlock");
}

TEST_CASE("AIRLOCK_POLICY_DIR comes before the installed policies") {
  ScopedEnv env("AIRLOCK_POLICY_DIR", "/a::/b");
  CHECK(default_policy_dirs() == std::vector<std::string>{"/a", "/b", own_layout().policy_dir()});
}

TEST_CASE("without AIRLOCK_POLICY_DIR only the installed policies are searched") {
  ScopedEnv env("AIRLOCK_POLICY_DIR", nullptr);
  CHECK(default_policy_dirs() == std::vector<std::string>{own_layout().policy_dir()});
}

TEST_CASE("AIRLOCK_RUNTIMES replaces the installed runtimes file") {
  {
    ScopedEnv env("AIRLOCK_RUNTIMES", "/x/runtimes.yaml");
    CHECK(default_runtimes_file() == "/x/runtimes.yaml");
  }
  ScopedEnv env("AIRLOCK_RUNTIMES", nullptr);
  CHECK(default_runtimes_file() == own_layout().runtimes_file());
}

TEST_CASE("a missing file is named with the setting that overrides it") {
  CHECK(missing("/", "root", "no hint", true).empty());
  const std::string installed =
      missing("/no/such/runtimes.yaml", "runtimes file", "set runtimes_file", true);
  CHECK(installed == "runtimes file /no/such/runtimes.yaml not found (installed beside " +
                         own_layout().executable + "; set runtimes_file)");
  const std::string given =
      missing("/no/such/runtimes.yaml", "runtimes file", "set runtimes_file", false);
  CHECK(given == "runtimes file /no/such/runtimes.yaml not found (set runtimes_file)");
}

TEST_CASE("one existing directory of several is enough; none is named in full") {
  CHECK(missing_all({"/no/such/a", "/"}, "policy directory", "hint").empty());
  CHECK(missing_all({"/no/such/a", "/no/such/b"}, "policy directory", "hint") ==
        "no policy directory found: /no/such/a, /no/such/b (hint)");
}

}  // namespace
}  // namespace airlock::cli
