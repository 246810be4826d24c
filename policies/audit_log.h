// The audit log: one JSON object per line, appended, recording which policy (name and hash) every
// run used, how it ended, and every syscall a rule stopped or logged. Safe to share between
// threads; each record reaches the file in a single write so lines never interleave.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "policies/errors.h"
#include "policies/policy.h"
#include "sandbox/error.h"
#include "sandbox/outcome.h"
#include "sandbox/unique_fd.h"

namespace airlock::policies {

class AuditLog {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  // Opens `path` for appending (creating it with mode 0600). `clock` is for tests.
  static sandbox::Expected<std::unique_ptr<AuditLog>> open(const std::string& path,
                                                           Clock clock = nullptr);

  // One "run" line (time, run id, the API key's name, policy, hash, status, exit code, signal,
  // reason), then one "violation" line for the call that ended the run and one "blocked" line per
  // refused or logged call, each naming the run and the key. The run line also counts the blocked
  // calls, and those the outcome had to drop.
  sandbox::Status record_run(const std::string& run_id, const std::string& key,
                             const Policy& policy, const sandbox::Outcome& outcome);

  // One "policy_error" line per error, e.g. when a reload kept an old version in force.
  sandbox::Status record_policy_errors(const std::vector<PolicyError>& errors);

  const std::string& path() const { return path_; }

 private:
  AuditLog(std::string path, sandbox::UniqueFd fd, Clock clock);
  sandbox::Status append(const std::string& lines);
  std::string now_text() const;

  std::string path_;
  sandbox::UniqueFd fd_;
  Clock clock_;
  std::mutex mutex_;
};

// A JSON string literal for arbitrary bytes: quotes, backslashes and control characters escaped,
// invalid UTF-8 replaced by U+FFFD so that every line stays valid JSON.
std::string json_string(std::string_view bytes);

}  // namespace airlock::policies
