// The file under the audit log: lines appended by a thread of its own, so that whoever records
// (a worker, an I/O thread turning a request away) only queues text and never waits for a disk.
// The file is size-capped: past max_bytes it is renamed to PATH.1 (PATH.1 to PATH.2, ...) and
// a new one started, keeping `keep` old files.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "sandbox/error.h"
#include "sandbox/unique_fd.h"

namespace airlock::policies {

inline constexpr uint64_t kDefaultAuditMaxBytes = 64ULL * 1024 * 1024;
inline constexpr size_t kDefaultAuditKeep = 5;
// Text queued and not yet written beyond which new records are dropped (and counted in a
// "dropped" line once the writer catches up), so a stuck disk cannot grow the service's memory.
inline constexpr uint64_t kMaxAuditPendingBytes = 16ULL * 1024 * 1024;

struct AuditFileOptions {
  uint64_t max_bytes = kDefaultAuditMaxBytes;  // rotate once the file would pass this
  size_t keep = kDefaultAuditKeep;             // rotated files kept: PATH.1 .. PATH.keep
  uint64_t max_pending_bytes = kMaxAuditPendingBytes;
  // Told (on the writer thread) when a write, rotation or reopen fails; the record is lost.
  std::function<void(const std::string& problem)> on_error;
  // Makes the line that reports `count` records dropped while the queue was full (on the
  // writer thread); none is written when unset.
  std::function<std::string(uint64_t count)> dropped_line;
};

class AuditFile {
 public:
  // Opens (creating with mode 0600; never through a symlink) `path` for appending, and starts
  // the writer thread.
  static sandbox::Expected<std::unique_ptr<AuditFile>> open(const std::string& path,
                                                            AuditFileOptions options);
  // Writes what is queued, then stops the writer.
  ~AuditFile();
  AuditFile(const AuditFile&) = delete;
  AuditFile& operator=(const AuditFile&) = delete;

  // Queues whole lines (each ending in '\n'); they reach the file together, never interleaved
  // with another append and never split across a rotation. Never blocks on I/O.
  void append(std::string lines);

  // Waits until everything appended before the call has been written (or failed).
  void flush();

  const std::string& path() const { return path_; }

  // The files of a log at `path`, oldest first: PATH.keep .. PATH.1, PATH (those that exist).
  static std::vector<std::string> files_of(const std::string& path, size_t keep);

 private:
  AuditFile(std::string path, sandbox::UniqueFd fd, uint64_t size, AuditFileOptions options);
  void run();
  void write(const std::string& lines);
  sandbox::Status rotate();

  const std::string path_;
  const AuditFileOptions options_;
  sandbox::UniqueFd fd_;  // only the writer thread touches it after open
  uint64_t size_ = 0;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable written_;
  std::deque<std::string> queue_;
  uint64_t pending_bytes_ = 0;
  uint64_t dropped_ = 0;
  uint64_t appended_ = 0;  // appends accepted, numbered
  uint64_t done_ = 0;      // appends written (or failed)
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace airlock::policies
