#include "cli/layout.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace airlock::cli {
namespace {

// Relative to the prefix; the same names the install rules use (CMakeLists.txt).
constexpr const char* kConfigSubdir = AIRLOCK_INSTALL_CONFIG_SUBDIR;  // etc/airlock
constexpr const char* kLibSubdir = AIRLOCK_INSTALL_LIB_SUBDIR;        // lib/airlock

std::string own_executable() {
  std::string path(4096, '\0');
  const ssize_t length = ::readlink("/proc/self/exe", path.data(), path.size());
  if (length <= 0 || static_cast<size_t>(length) >= path.size()) return {};
  path.resize(static_cast<size_t>(length));
  // A binary replaced while it runs (a package upgrade) reads as "<path> (deleted)".
  const std::string deleted = " (deleted)";
  if (path.size() > deleted.size() && path.ends_with(deleted))
    path.resize(path.size() - deleted.size());
  return path;
}

}  // namespace

Layout layout_of(const std::string& executable) {
  const std::filesystem::path prefix =
      std::filesystem::path(executable).parent_path().parent_path();
  Layout layout;
  layout.executable = executable;
  // Debian and the FHS keep /usr's configuration in /etc, as GNUInstallDirs does.
  layout.config_dir =
      prefix == "/usr" ? std::string("/") + kConfigSubdir : (prefix / kConfigSubdir).string();
  layout.lib_dir = (prefix / kLibSubdir).string();
  return layout;
}

const Layout& own_layout() {
  // Without /proc (it is not mounted) the files are looked for where the .deb puts them.
  static const Layout layout = [] {
    const std::string executable = own_executable();
    return executable.empty() ? layout_of("/usr/bin/airlock") : layout_of(executable);
  }();
  return layout;
}

std::string default_runtimes_file() {
  if (const char* configured = std::getenv("AIRLOCK_RUNTIMES"); configured && *configured) {
    return configured;
  }
  return own_layout().runtimes_file();
}

std::vector<std::string> default_policy_dirs() {
  std::vector<std::string> dirs;
  if (const char* configured = std::getenv("AIRLOCK_POLICY_DIR"); configured && *configured) {
    const std::string value = configured;
    size_t start = 0;
    while (start <= value.size()) {
      const size_t end = std::min(value.find(':', start), value.size());
      if (end > start) dirs.push_back(value.substr(start, end - start));
      start = end + 1;
    }
  }
  dirs.push_back(own_layout().policy_dir());
  return dirs;
}

std::string missing(const std::string& path, const std::string& what,
                    const std::string& override_hint, bool installed) {
  std::error_code error;
  if (std::filesystem::exists(path, error)) return "";
  const std::string where = installed ? "installed beside " + own_layout().executable + "; " : "";
  return what + " " + path + " not found (" + where + override_hint + ")";
}

std::string missing_all(const std::vector<std::string>& dirs, const std::string& what,
                        const std::string& override_hint) {
  std::string names;
  for (const std::string& dir : dirs) {
    std::error_code error;
    if (std::filesystem::exists(dir, error)) return "";
    names += (names.empty() ? "" : ", ") + dir;
  }
  return "no " + what + " found: " + names + " (" + override_hint + ")";
}

}  // namespace airlock::cli
