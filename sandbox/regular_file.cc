#include "sandbox/regular_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/unique_fd.h"

namespace airlock::sandbox {
namespace {

std::string size_text(size_t bytes) {
  constexpr size_t kMiB = 1024 * 1024;
  if (bytes >= kMiB && bytes % kMiB == 0) return std::to_string(bytes / kMiB) + " MiB";
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes / 1024) + " KiB";
  return std::to_string(bytes) + " bytes";
}

std::string kind_of(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  return "something else";
}

}  // namespace

Expected<std::string> read_regular_file(const std::string& path, size_t max_bytes) {
  auto fd = open_fd(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
  if (!fd) return fd.error();
  struct stat status {};
  if (::fstat(fd->get(), &status) != 0) return errno_error("fstat(\"" + path + "\")");
  if (!S_ISREG(status.st_mode)) {
    return SetupError{"\"" + path + "\" is " + kind_of(status.st_mode) + ", not a regular file", 0};
  }
  const std::string too_large = "\"" + path + "\" is larger than " + size_text(max_bytes);
  if (static_cast<uint64_t>(status.st_size) > max_bytes) return SetupError{too_large, 0};
  std::string content;
  char buffer[16384];
  // Up to one chunk over the limit: a file that grew since fstat is refused too.
  while (content.size() <= max_bytes) {
    const ssize_t n = ::read(fd->get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("read(\"" + path + "\")");
    if (n == 0) break;
    content.append(buffer, static_cast<size_t>(n));
  }
  if (content.size() > max_bytes) return SetupError{too_large, 0};
  return content;
}

}  // namespace airlock::sandbox
