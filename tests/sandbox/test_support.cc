#include "test_support.h"

#include <unistd.h>

#include <catch2/catch.hpp>

namespace airlock::sandbox::testing {

Spec probe_spec(std::vector<std::string> argv) {
  Spec spec;
  spec.argv = std::move(argv);
  spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/work", "LANG=C.UTF-8"};
  for (const char* path : {"/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc/ld.so.cache",
                           "/etc/alternatives", "/etc/ssl", "/etc/localtime"}) {
    spec.filesystem.binds.push_back({path, "", false, true});
  }
  spec.filesystem.binds.push_back({PROBE_DIR, "/helpers", false, false});
  spec.limits.wall_time = std::chrono::seconds(5);
  spec.limits.cpu_time = std::chrono::seconds(5);
  return spec;
}

bool can_sandbox() {
  if (::geteuid() == 0) return true;
  WARN("skipped: creating sandboxes needs root (cgroups and uid maps)");
  return false;
}

Sandbox& shared_sandbox() {
  static std::unique_ptr<Sandbox> sandbox = [] {
    auto created = Sandbox::create(SandboxConfig{});
    if (!created) FAIL("Sandbox::create: " << created.error().message());
    return std::move(created.value());
  }();
  return *sandbox;
}

Outcome run(const Spec& spec, Captured& captured, const RunOptions& options) {
  return shared_sandbox().run(spec, captured, options);
}

}  // namespace airlock::sandbox::testing
