// Cold-start cost of one sandboxed run, side by side with bare execution and bubblewrap, measured
// in interleaved rounds so that machine noise hits every variant alike. Prints a Markdown table.
//
// usage: spawn_bench [--runs N] [--airlock PATH] [--pause-ms N]
//
// Variants: bare, airlock in process (what `airlock serve` pays), the `airlock run` CLI,
// bubblewrap with every namespace (/usr/bin/bwrap), and nsjail when it is on PATH.
//
// Each run follows a pause (30 ms unless --pause-ms), so that no variant finds kernel state the
// one before it left warm: on cgroup v1, moving a process between cgroups waits for an RCU grace
// period unless another move happened within the last one, and a CLI run straight after a
// library run measured 8-9 ms where it takes 14 ms on its own.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "policies/loader.h"
#include "runner/runner.h"
#include "sandbox/sandbox.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

struct Variant {
  std::string name;
  std::function<bool()> once;  // one complete run; false on failure
  std::vector<double> samples_ms;
  int failures = 0;
};

bool spawn_and_wait(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return false;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// The first executable `name` on PATH, or "".
std::string on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/bin:/bin";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (end > start && access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * static_cast<double>(values.size() - 1) + 0.5);
  return values[index];
}

struct Discard : airlock::sandbox::OutputHandler {
  bool on_output(airlock::sandbox::Stream, std::string_view) override { return true; }
};

}  // namespace

int main(int argc, char** argv) {
  int runs = 60;
  int pause_ms = 30;
  std::string airlock = "build/airlock";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--runs")) runs = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--airlock")) airlock = argv[i + 1];
    if (!std::strcmp(argv[i], "--pause-ms")) pause_ms = std::atoi(argv[i + 1]);
  }
  const std::string python = "/usr/bin/python3";
  const bool have_bwrap = access("/usr/bin/bwrap", X_OK) == 0;
  const std::vector<std::string> bwrap = {"/usr/bin/bwrap", "--unshare-all", "--ro-bind", "/usr",
                                          "/usr", "--symlink", "usr/bin", "/bin", "--symlink",
                                          "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                                          "--proc", "/proc", "--dev", "/dev", "--die-with-parent"};
  // nsjail, when installed (Debian 12 does not package it), as bench/latency.py runs it.
  const std::string nsjail_path = on_path("nsjail");
  const std::vector<std::string> nsjail = {
      nsjail_path, "-q",     "-Mo", "--disable_proc", "-R", "/usr", "-R", "/lib",
      "-R",        "/lib64", "-R",  "/bin",           "-R", "/etc", "--"};
  auto with = [](std::vector<std::string> prefix, std::vector<std::string> rest) {
    prefix.insert(prefix.end(), rest.begin(), rest.end());
    return prefix;
  };

  // The in-process path: what `airlock serve` pays for a cold run (policy loaded once).
  auto sandbox = airlock::sandbox::Sandbox::create({});
  if (!sandbox) {
    std::fprintf(stderr, "spawn_bench: %s\n", sandbox.error().message().c_str());
    return 1;
  }
  auto loaded = airlock::policies::load_policy("default", {POLICY_DIR});
  if (!loaded.ok()) {
    std::fprintf(stderr, "spawn_bench: policy default did not load\n");
    return 1;
  }
  auto spec_for = [&](std::vector<std::string> argv) {
    airlock::sandbox::Spec spec;
    spec.argv = std::move(argv);
    for (const auto& [name, value] : loaded.policy->environment) spec.env.push_back(name + "=" + value);
    spec.limits = loaded.policy->limits;
    spec.filesystem = loaded.policy->filesystem;
    spec.seccomp = loaded.policy->syscalls;
    return spec;
  };
  auto in_process = [&](std::vector<std::string> argv) {
    auto spec = spec_for(std::move(argv));
    return [&, spec] {
      Discard discard;
      return (*sandbox)->run(spec, discard, {}).status == airlock::sandbox::RunStatus::ok;
    };
  };

  std::vector<Variant> variants;
  variants.push_back({"bare /bin/true", [] { return spawn_and_wait({"/bin/true"}); }});
  variants.push_back({"airlock (library, cold) /bin/true", in_process({"/bin/true"})});
  variants.push_back({"airlock run -- /bin/true (CLI)",
                      [&] { return spawn_and_wait({airlock, "run", "--", "/bin/true"}); }});
  if (have_bwrap) {
    variants.push_back({"bwrap --unshare-all /bin/true",
                        [&] { return spawn_and_wait(with(bwrap, {"/bin/true"})); }});
  }
  if (!nsjail_path.empty()) {
    variants.push_back(
        {"nsjail /bin/true", [&] { return spawn_and_wait(with(nsjail, {"/bin/true"})); }});
  }
  variants.push_back({"bare python print(1)",
                      [&] { return spawn_and_wait({python, "-c", "print(1)"}); }});
  variants.push_back({"airlock (library, cold) python print(1)",
                      in_process({python, "-c", "print(1)"})});
  variants.push_back({"airlock run python print(1) (CLI)", [&] {
                        return spawn_and_wait({airlock, "run", "--", python, "-c", "print(1)"});
                      }});
  if (have_bwrap) {
    variants.push_back({"bwrap --unshare-all python print(1)",
                        [&] { return spawn_and_wait(with(bwrap, {python, "-c", "print(1)"})); }});
  }
  if (!nsjail_path.empty()) {
    variants.push_back({"nsjail python print(1)", [&] {
                          return spawn_and_wait(with(nsjail, {python, "-c", "print(1)"}));
                        }});
  }

  for (Variant& v : variants) v.once();  // warm the page cache and the filter cache
  for (int round = 0; round < runs; ++round) {
    for (Variant& v : variants) {
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
      auto start = Clock::now();
      bool ok = v.once();
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      if (ok) {
        v.samples_ms.push_back(ms);
      } else {
        ++v.failures;
      }
    }
  }

  // Medians of the bare and bubblewrap rows, per program.
  double bare[2] = {0, 0}, bwrap_median[2] = {0, 0};  // [0] /bin/true, [1] python
  auto is_python = [](const Variant& v) { return v.name.find("python") != std::string::npos; };
  for (const Variant& v : variants) {
    if (v.name.rfind("bare ", 0) == 0) bare[is_python(v)] = percentile(v.samples_ms, 0.5);
    if (v.name.rfind("bwrap ", 0) == 0) bwrap_median[is_python(v)] = percentile(v.samples_ms, 0.5);
  }
  std::printf("| variant | median ms | p90 ms | over bare (median) | / bwrap | failures |\n");
  std::printf("|---|---:|---:|---:|---:|---:|\n");
  for (const Variant& v : variants) {
    const double median = percentile(v.samples_ms, 0.5);
    const double bwrap = bwrap_median[is_python(v)];
    char against_bwrap[16] = "-";  // no bubblewrap installed
    if (bwrap > 0) std::snprintf(against_bwrap, sizeof against_bwrap, "%.2f", median / bwrap);
    std::printf("| %s | %.2f | %.2f | %+.2f ms | %s | %d |\n", v.name.c_str(), median,
                percentile(v.samples_ms, 0.9), median - bare[is_python(v)], against_bwrap,
                v.failures);
  }
  std::printf("\n%d interleaved rounds, each run after a %d ms pause; medians of %d runs each.\n",
              runs, pause_ms, runs);
  return 0;
}
