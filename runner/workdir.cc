#include "runner/workdir.h"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <map>

#include "runner/output_buffer.h"
#include "sandbox/fs_ids.h"
#include "sandbox/readable.h"
#include "sandbox/unique_fd.h"

namespace airlock::runner {
namespace {

using sandbox::UniqueFd;

constexpr uint64_t kResolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
constexpr int kMaxDepth = 16;

// Set once openat2 has answered ENOSYS: a kernel before 5.6, or a seccomp filter that refuses it
// because it cannot inspect the mode inside struct open_how (systemd's RestrictSUIDSGID=, which
// airlock.service sets, and older container profiles).
std::atomic<bool> openat2_unavailable{false};

bool is_plain_name(std::string_view name) {
  return !name.empty() && name != "." && name != "..";
}

// What openat2 with kResolve does, by hand: each component opened beneath the last with
// O_NOFOLLOW, so no symlink is ever followed (a directory component that is one fails with
// ENOTDIR, the last with ELOOP) and '..' is refused as openat2 refuses an escape.
int open_by_components(int dir_fd, std::string_view path, int flags, mode_t mode) {
  UniqueFd dir;
  int current = dir_fd;
  size_t start = 0, slash = 0;
  while ((slash = path.find('/', start)) != std::string_view::npos) {
    const std::string name(path.substr(start, slash - start));
    if (!is_plain_name(name)) {
      errno = EXDEV;
      return -1;
    }
    int fd = ::openat(current, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return -1;
    dir = UniqueFd::adopt(fd);
    current = dir.get();
    start = slash + 1;
  }
  const std::string name(path.substr(start));
  if (!is_plain_name(name)) {
    errno = EXDEV;
    return -1;
  }
  int fd = ::openat(current, name.c_str(), flags | O_CLOEXEC | O_NOFOLLOW, mode);
  const int saved = errno;
  dir.reset();
  errno = saved;
  return fd;
}

int open_beneath(int dir_fd, const std::string& path, uint64_t flags, mode_t mode = 0) {
  if (!openat2_unavailable.load(std::memory_order_relaxed)) {
    struct open_how how {};
    how.flags = flags | O_CLOEXEC | O_NOFOLLOW;
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = kResolve;
    int fd = static_cast<int>(::syscall(SYS_openat2, dir_fd, path.c_str(), &how, sizeof how));
    if (fd >= 0 || errno != ENOSYS) return fd;
    openat2_unavailable.store(true, std::memory_order_relaxed);
  }
  return open_by_components(dir_fd, path, static_cast<int>(flags), (flags & O_CREAT) ? mode : 0);
}

}  // namespace

std::optional<std::string> check_relative_path(const std::string& path) {
  if (path.empty()) return "is empty";
  if (path.size() > 1024) return "is longer than 1024 bytes";
  if (path[0] == '/') return "must be relative to the working directory, not absolute";
  if (path.find('\0') != std::string::npos) return "contains a NUL byte";
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view part(path.data() + start, end - start);
    if (part.empty()) return "has an empty component ('//' or a trailing '/')";
    if (part == "." || part == "..") return "must not contain '.' or '..' components";
    start = end + 1;
  }
  return std::nullopt;
}

sandbox::Status write_workspace_file(const sandbox::Workspace& workspace, const std::string& path,
                                     std::string_view content, bool executable) {
  if (auto problem = check_relative_path(path)) {
    return sandbox::SetupError{"file path '" + path + "' " + *problem, 0};
  }
  int root = ::open(workspace.path().c_str(), O_DIRECTORY | O_PATH | O_CLOEXEC);
  if (root < 0) return sandbox::errno_error("open(workspace)");
  UniqueFd dir = UniqueFd::adopt(root);
  const sandbox::ScopedFsIds as_owner(workspace.owner_uid(), workspace.owner_gid());
  // Parent directories one component at a time, each opened beneath the last: a symlink the
  // sandbox left in the working directory is refused, never followed.
  size_t start = 0, slash = 0;
  while ((slash = path.find('/', start)) != std::string::npos) {
    const std::string name = path.substr(start, slash - start);
    const std::string parent = path.substr(0, slash);
    if (::mkdirat(dir.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
      return sandbox::errno_error("mkdir(\"" + parent + "\")");
    }
    int fd = open_beneath(dir.get(), name, O_DIRECTORY | O_PATH);
    if (fd < 0) return sandbox::errno_error("open(\"" + parent + "\")");
    dir = UniqueFd::adopt(fd);
    start = slash + 1;
  }
  const std::string name = path.substr(start);
  // Non-blocking: opening a FIFO the sandbox made here would wait for a reader forever (ENXIO
  // instead, when none is there). Not truncated before it is known to be a regular file.
  int fd = open_beneath(dir.get(), name, O_WRONLY | O_CREAT | O_NONBLOCK, executable ? 0755 : 0644);
  if (fd < 0 && errno == ENXIO) {
    return sandbox::SetupError{"'" + path + "' exists and is not a regular file", ENXIO};
  }
  if (fd < 0) return sandbox::errno_error("open(\"" + path + "\")");
  UniqueFd file = UniqueFd::adopt(fd);
  struct stat st {};
  if (::fstat(file.get(), &st) != 0) return sandbox::errno_error("fstat(\"" + path + "\")");
  if (!S_ISREG(st.st_mode)) {
    return sandbox::SetupError{"'" + path + "' exists and is not a regular file", EINVAL};
  }
  if (::ftruncate(file.get(), 0) != 0) return sandbox::errno_error("truncate(\"" + path + "\")");
  return sandbox::write_all(file.get(), content, path.c_str());
}

std::optional<RequestError> refused_input_file(size_t index, const InputFile& file,
                                               const sandbox::SetupError& error,
                                               std::string_view workdir) {
  const std::string field = "files[" + std::to_string(index) + "].path";
  switch (error.error_number) {
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
      return RequestError{field, "'" + file.path + "' (" +
                                     sandbox::format_bytes(file.content.size()) +
                                     ") does not fit " + std::string(workdir)};
    case 0:       // the path itself was refused
    case EEXIST:  // a file where the path needs a directory, or the other way round
    case ENOTDIR:
    case EISDIR:
    case EINVAL:  // something other than a regular file is there
    case ENXIO:   // a FIFO without a reader is there
    case ELOOP:   // a symlink (a session's code made it) is in the way
    case ENAMETOOLONG:
    case ETXTBSY:  // a program a session's process is running
    case EACCES:   // a directory a session's code made unwritable
      // The message names the path and what went wrong.
      return RequestError{field, error.message()};
    default:
      return std::nullopt;
  }
}

namespace {

// Reads the regular file `relative` beneath root_fd, keeping at most max_bytes of its content.
// Non-blocking: a process the run left behind may have put a FIFO where the file was, and opening
// that for reading would wait for a writer forever. Regular files ignore the flag.
std::optional<OutputFile> read_regular_file(int root_fd, const std::string& relative,
                                            uint64_t max_bytes) {
  int fd = open_beneath(root_fd, relative, O_RDONLY | O_NONBLOCK);
  if (fd < 0) return std::nullopt;
  UniqueFd file = UniqueFd::adopt(fd);
  struct stat st {};
  if (::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  OutputFile out;
  out.path = relative;
  out.size_bytes = static_cast<uint64_t>(st.st_size);
  std::string content(std::min<uint64_t>(out.size_bytes, max_bytes), '\0');
  size_t filled = 0;
  while (filled < content.size()) {
    ssize_t n = ::pread(file.get(), content.data() + filled, content.size() - filled,
                        static_cast<off_t>(filled));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    filled += static_cast<size_t>(n);
  }
  content.resize(filled);
  out.truncated = content.size() < out.size_bytes;
  // NUL bytes are valid UTF-8, but each would cost six bytes as a JSON escape: such a file goes
  // out as base64, a third larger than its bytes, like any other binary file.
  out.binary = content.find('\0') != std::string::npos || !is_valid_utf8(content);
  out.media_type = media_type_for(relative, out.binary);
  out.content = std::move(content);
  return out;
}

}  // namespace

std::vector<OutputFile> collect_output_files(const std::string& workdir,
                                             const std::vector<std::string>& globs,
                                             uint64_t max_file_bytes, uint64_t max_total_bytes,
                                             bool* walk_cut, size_t max_walked_entries) {
  std::vector<OutputFile> files;
  if (walk_cut) *walk_cut = false;
  if (globs.empty()) return files;
  int root = ::open(workdir.c_str(), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (root < 0) return files;
  UniqueFd root_fd = UniqueFd::adopt(root);
  std::map<std::string, int> found;  // sorted relative paths of matching regular files
  size_t walked = 0;
  bool cut = false;

  std::function<void(const std::string&, int)> walk = [&](const std::string& prefix, int depth) {
    if (depth > kMaxDepth || found.size() >= kMaxOutputFiles || cut) return;
    int fd = prefix.empty() ? ::dup(root_fd.get())
                            : open_beneath(root_fd.get(), prefix, O_DIRECTORY | O_RDONLY);
    if (fd < 0) return;
    DIR* dir = ::fdopendir(fd);
    if (dir == nullptr) {
      ::close(fd);
      return;
    }
    std::vector<std::pair<std::string, bool>> entries;
    while (dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      if (walked++ >= max_walked_entries) {
        cut = true;
        break;
      }
      struct stat st {};
      if (::fstatat(::dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      if (S_ISDIR(st.st_mode)) entries.push_back({name, true});
      if (S_ISREG(st.st_mode)) entries.push_back({name, false});
    }
    ::closedir(dir);
    for (const auto& [name, is_dir] : entries) {
      std::string relative = prefix.empty() ? name : prefix + "/" + name;
      if (is_dir) {
        walk(relative, depth + 1);
        continue;
      }
      for (const std::string& glob : globs) {
        if (::fnmatch(glob.c_str(), relative.c_str(), 0) == 0) {
          found.emplace(relative, 0);
          break;
        }
      }
      if (found.size() >= kMaxOutputFiles) return;
    }
  };
  walk("", 0);
  if (walk_cut) *walk_cut = cut;

  uint64_t budget = max_total_bytes;
  for (const auto& [relative, unused] : found) {
    auto file = read_regular_file(root_fd.get(), relative, std::min(max_file_bytes, budget));
    if (!file) continue;
    budget -= file->content.size();
    files.push_back(std::move(*file));
  }
  return files;
}

std::optional<OutputFile> read_workspace_file(const std::string& workdir, const std::string& path,
                                              uint64_t max_file_bytes) {
  if (check_relative_path(path)) return std::nullopt;
  int root = ::open(workdir.c_str(), O_DIRECTORY | O_PATH | O_CLOEXEC);
  if (root < 0) return std::nullopt;
  UniqueFd root_fd = UniqueFd::adopt(root);
  return read_regular_file(root_fd.get(), path, max_file_bytes);
}

std::string media_type_for(const std::string& path, bool binary) {
  static const std::map<std::string, std::string> kTypes = {
      {".png", "image/png"},   {".jpg", "image/jpeg"},       {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},   {".svg", "image/svg+xml"},    {".webp", "image/webp"},
      {".pdf", "application/pdf"}, {".json", "application/json"}, {".csv", "text/csv"},
      {".txt", "text/plain"},  {".md", "text/markdown"},     {".html", "text/html"},
      {".xml", "application/xml"}, {".zip", "application/zip"}, {".gz", "application/gzip"},
  };
  size_t dot = path.rfind('.');
  if (dot != std::string::npos && path.find('/', dot) == std::string::npos) {
    std::string extension = path.substr(dot);
    std::transform(extension.begin(), extension.end(), extension.begin(), ::tolower);
    auto it = kTypes.find(extension);
    if (it != kTypes.end()) return it->second;
  }
  return binary ? "application/octet-stream" : "text/plain";
}

}  // namespace airlock::runner
