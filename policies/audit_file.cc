#include "policies/audit_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace airlock::policies {
namespace {

// Never through a symlink: whoever could plant one in the log's directory would choose which
// file the service, as root, appends to.
sandbox::Expected<sandbox::UniqueFd> open_append(const std::string& path) {
  return sandbox::open_fd(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
}

}  // namespace

std::vector<std::string> AuditFile::files_of(const std::string& path, size_t keep) {
  std::vector<std::string> files;
  for (size_t i = keep; i >= 1; --i) {
    const std::string rotated = path + "." + std::to_string(i);
    if (::access(rotated.c_str(), F_OK) == 0) files.push_back(rotated);
  }
  if (::access(path.c_str(), F_OK) == 0) files.push_back(path);
  return files;
}

sandbox::Expected<std::unique_ptr<AuditFile>> AuditFile::open(const std::string& path,
                                                              AuditFileOptions options) {
  if (path.empty()) return sandbox::SetupError{"audit log: the path is empty", 0};
  auto fd = open_append(path);
  if (!fd) return fd.error();
  struct stat status {};
  if (::fstat(fd->get(), &status) != 0) return sandbox::errno_error("fstat(\"" + path + "\")");
  if (!S_ISREG(status.st_mode)) {
    return sandbox::SetupError{"audit log " + path + ": not a regular file", 0};
  }
  return std::unique_ptr<AuditFile>(new AuditFile(path, std::move(fd.value()),
                                                  static_cast<uint64_t>(status.st_size),
                                                  std::move(options)));
}

AuditFile::AuditFile(std::string path, sandbox::UniqueFd fd, uint64_t size,
                     AuditFileOptions options)
    : path_(std::move(path)), options_(std::move(options)), fd_(std::move(fd)), size_(size) {
  writer_ = std::thread([this] { run(); });
}

AuditFile::~AuditFile() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  writer_.join();
}

void AuditFile::append(std::string lines) {
  if (lines.empty()) return;
  {
    std::lock_guard lock(mutex_);
    if (pending_bytes_ + lines.size() > options_.max_pending_bytes) {
      ++dropped_;
      return;
    }
    pending_bytes_ += lines.size();
    queue_.push_back(std::move(lines));
    ++appended_;
  }
  wake_.notify_one();
}

void AuditFile::flush() {
  std::unique_lock lock(mutex_);
  const uint64_t wanted = appended_;
  written_.wait(lock, [&] { return done_ >= wanted; });
}

void AuditFile::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty() || dropped_ > 0; });
    if (queue_.empty() && dropped_ == 0) return;  // stopping, and all written
    std::deque<std::string> batch;
    batch.swap(queue_);
    const uint64_t dropped = dropped_;
    dropped_ = 0;
    pending_bytes_ = 0;
    lock.unlock();

    if (dropped > 0 && options_.dropped_line) write(options_.dropped_line(dropped));
    for (const std::string& lines : batch) write(lines);

    lock.lock();
    done_ += batch.size();
    written_.notify_all();
  }
}

void AuditFile::write(const std::string& lines) {
  auto report = [this](const std::string& problem) {
    if (options_.on_error) options_.on_error(problem);
  };
  if (size_ > 0 && size_ + lines.size() > options_.max_bytes) {
    if (auto rotated = rotate(); !rotated) report(rotated.error().message());
  }
  if (!fd_.valid()) return;  // a reopen failed; reported then, tried again at the next rotation
  if (auto written = sandbox::write_all(fd_.get(), lines, "write(audit log)"); !written) {
    report(written.error().message());
    return;
  }
  size_ += lines.size();
}

sandbox::Status AuditFile::rotate() {
  // PATH.keep falls off; each older name moves one up; PATH becomes PATH.1.
  if (options_.keep == 0) {
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
      return sandbox::errno_error("unlink(\"" + path_ + "\")");
    }
  } else {
    for (size_t i = options_.keep; i >= 1; --i) {
      const std::string to = path_ + "." + std::to_string(i);
      const std::string from = i == 1 ? path_ : path_ + "." + std::to_string(i - 1);
      if (::rename(from.c_str(), to.c_str()) != 0 && errno != ENOENT) {
        return sandbox::errno_error("rename(\"" + from + "\", \"" + to + "\")");
      }
    }
  }
  auto fd = open_append(path_);
  if (!fd) {
    fd_ = sandbox::UniqueFd();
    return fd.error();
  }
  fd_ = std::move(fd.value());
  size_ = 0;
  return {};
}

}  // namespace airlock::policies
