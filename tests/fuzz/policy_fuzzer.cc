// Fuzzes the policy loader with YAML text: the input is written as a policy file and loaded the
// way `airlock policy check` and the service load one (its `extends` resolved against the shipped
// policies), then a loaded policy is rendered and compared with its parent as reviewers see it.
// A policy that loads must lift no floor syscall without a justified `unsafe` entry.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "policies/diff.h"
#include "policies/loader.h"
#include "policies/render.h"

namespace {

// A directory of this process's own, so that parallel fuzzing jobs do not share the file, removed
// with what is in it when the process exits: libFuzzer ends a run (-runs, -max_total_time, a replay
// of input files) with exit(), which runs the destructors of statics. A crash leaves it behind.
class FuzzDir {
 public:
  FuzzDir() {
    char dir[] = "/tmp/airlock-policy-fuzz.XXXXXX";
    if (::mkdtemp(dir) == nullptr) std::abort();
    path_ = dir;
  }
  ~FuzzDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  FuzzDir(const FuzzDir&) = delete;
  FuzzDir& operator=(const FuzzDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const std::string& policy_path() {
  static const FuzzDir dir;
  static const std::string path = dir.path() + "/fuzzed.yaml";
  return path;
}

const std::vector<std::string>& shipped_dirs() {
  static const auto* dirs = new std::vector<std::string>{AIRLOCK_SOURCE_DIR "/policies"};
  return *dirs;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  {
    std::ofstream file(policy_path(), std::ios::binary | std::ios::trunc);
    file.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  airlock::policies::LoadResult result = airlock::policies::load_policy(policy_path(), shipped_dirs());
  for (const auto& error : result.errors) (void)error.format();
  if (!result.ok()) return 0;
  const auto& policy = *result.policy;
  for (const auto& lifted : policy.syscalls.floor_exemptions) {
    bool justified = std::any_of(policy.unsafe.begin(), policy.unsafe.end(), [&](const auto& entry) {
      return entry.what == "syscall " + lifted && !entry.justification.empty();
    });
    if (!justified) {
      std::cerr << "floor syscall " << lifted << " lifted without a justified unsafe entry\n";
      std::abort();
    }
  }
  (void)airlock::policies::render_effective(policy);
  (void)airlock::policies::render_unsafe(policy);
  static const auto* shipped_default =
      new airlock::policies::LoadResult(airlock::policies::load_policy("default", shipped_dirs()));
  if (!shipped_default->ok()) std::abort();
  (void)airlock::policies::diff_policies(*shipped_default->policy, policy);
  return 0;
}
