// The audit log: one JSON object per line, appended, recording which policy (name and hash) every
// run used, who asked for it, how it ended, and every syscall a rule stopped or logged; requests
// refused for who sent them; policy reloads with old and new hashes. Safe to share between
// threads; each record reaches the file in a single write so lines never interleave.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policies/audit_file.h"
#include "policies/errors.h"
#include "policies/policy.h"
#include "sandbox/error.h"
#include "sandbox/outcome.h"

namespace airlock::policies {

// Who asked for a run and where it ran, as the API knew it.
struct RunRecord {
  std::string run_id;
  std::string key;         // the API key's name ("anonymous" without keys)
  std::string runtime;
  std::string session_id;  // empty for a one-shot run
  std::string client;      // "address:port" of the connection
  // Under a policy with egress: what its egress gateway allowed, refused and carried.
  struct Network {
    bool used = false;
    uint32_t connections = 0;
    uint32_t refused = 0;
    uint64_t bytes_sent = 0;
    uint64_t bytes_received = 0;
    std::vector<std::pair<std::string, std::string>> refused_destinations;  // destination, reason
  } network;
};

// A request turned away because of who sent it (401, 403).
struct RefusalRecord {
  int status = 0;
  std::string code;    // e.g. "unauthorized", "policy_forbidden"
  std::string key;     // the key's name when it was known (a 403), else empty
  std::string client;  // "address:port"
  std::string method;
  std::string path;
};

// A workspace (E2B sandbox) made or ended at a client's request.
struct WorkspaceRecord {
  // "workspace_created", "workspace_killed"; "workspace_process" (a command started in it),
  // "workspace_code" (a code-interpreter run) and "workspace_connection_refused" (egress)
  std::string event;
  std::string workspace_id;
  std::string key;     // the API key's name
  std::string policy;  // with its hash, when created
  std::string policy_hash;
  std::string template_id;
  std::string client;  // "address:port"
  // What ran: a process's command line (at most 4 KiB of it), or a run's language, size and the
  // sha256 of its code; for a refused connection, "destination: reason".
  std::string detail;
};

// One policy whose hash a reload changed; an empty hash: it was added (old) or removed (new).
struct PolicyChange {
  std::string name;
  std::string old_hash;
  std::string new_hash;
};

class AuditLog {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  // Opens `path` for appending (creating it with mode 0600; see AuditFile for rotation and
  // the writer thread). `clock` is for tests.
  static sandbox::Expected<std::unique_ptr<AuditLog>> open(const std::string& path,
                                                           AuditFileOptions options = {},
                                                           Clock clock = nullptr);

  // Each record below is queued and written by the log's own thread: recording never blocks.

  // One "run" line (time, run id, key, runtime, session, client, policy, hash, status, exit
  // code, signal, reason), then one "violation" line for the call that ended the run and one
  // "blocked" line per refused or logged call, each naming the run, key and policy. The run line
  // also counts the blocked calls, and those the outcome had to drop.
  void record_run(const RunRecord& run, const Policy& policy, const sandbox::Outcome& outcome);

  // One "refused" line.
  void record_refusal(const RefusalRecord& refusal);

  // One line for a workspace made or killed (its event names which).
  void record_workspace(const WorkspaceRecord& workspace);

  // One "policy_reload" line per policy whose hash changed, then one "reload" line with the
  // number of policies in force, changed, and errors.
  void record_reload(const std::vector<PolicyChange>& changes, size_t policies, size_t errors);

  // One "api_keys_reload" line: the key names in force before and after, and when the reload
  // was refused (the old keys stay), why. Names only: digests never reach the log.
  void record_keys_reload(const std::vector<std::string>& before,
                          const std::vector<std::string>& after, const std::string& problem);

  // One "start" line: the version and every policy in force with its hash.
  void record_start(const std::string& version, const std::vector<PolicyChange>& policies);

  // One "policy_error" line per error, e.g. when a reload kept an old version in force.
  void record_policy_errors(const std::vector<PolicyError>& errors);

  // Waits until every record made before the call is written.
  void flush() { file_->flush(); }

  const std::string& path() const { return file_->path(); }

 private:
  AuditLog(std::unique_ptr<AuditFile> file, Clock clock);
  std::string now_text() const;

  std::unique_ptr<AuditFile> file_;
  Clock clock_;
};

// The log's spelling of a time, UTC to the millisecond: "2026-12-02T13:05:00.000Z". Records
// compare by time as text.
std::string audit_time(std::chrono::system_clock::time_point time);

// A JSON string literal for arbitrary bytes: quotes, backslashes and control characters escaped,
// invalid UTF-8 replaced by U+FFFD so that every line stays valid JSON.
std::string json_string(std::string_view bytes);

}  // namespace airlock::policies
