// Where airlock's own files are: found from the running executable, never compiled in.
//
// An install puts the binary at <prefix>/bin/airlock and everything it reads beside it:
//   <prefix>/etc/airlock/         policies/*.yaml, runtimes.yaml, airlock.yaml (the serve config);
//                                 /etc/airlock when the prefix is /usr, as for the .deb
//   <prefix>/lib/airlock/         drivers/ (bound read-only into session and warm sandboxes) and
//                                 libairlock_fork.so (loaded by warm pools' fork servers)
// The build tree has the same shape: the binary is build/bin/airlock (build/airlock links to
// it), and CMake stages build/etc/airlock and build/lib/airlock with links to the sources, so
// `./build/airlock serve` and an installed /usr/bin/airlock find their files by one rule.
//
// Every path can be overridden: the serve config (policy_dirs, runtimes_file, drivers_dir,
// fork_library), `airlock run --runtimes`, and the environment (AIRLOCK_POLICY_DIR,
// AIRLOCK_RUNTIMES).
#pragma once

#include <string>
#include <vector>

namespace airlock::cli {

struct Layout {
  std::string executable;  // the binary these were found from, for messages
  std::string config_dir;  // <prefix>/etc/airlock, or /etc/airlock for /usr
  std::string lib_dir;     // <prefix>/lib/airlock

  std::string policy_dir() const { return config_dir + "/policies"; }
  std::string runtimes_file() const { return config_dir + "/runtimes.yaml"; }
  std::string drivers_dir() const { return lib_dir + "/drivers"; }
  std::string fork_library() const { return lib_dir + "/libairlock_fork.so"; }
};

// The layout around an executable at <prefix>/bin/<name> (a path with symlinks resolved): the
// prefix is the parent of the directory that holds it, whatever that directory is called.
Layout layout_of(const std::string& executable);

// The layout of this process's own executable (/proc/self/exe).
const Layout& own_layout();

// The runtimes file: $AIRLOCK_RUNTIMES if set, else the layout's.
std::string default_runtimes_file();

// The policy search path: $AIRLOCK_POLICY_DIR (colon-separated), then the layout's policies.
std::vector<std::string> default_policy_dirs();

// "" when `path` exists; else one line naming it and how to point elsewhere, e.g. "runtimes file
// /opt/x/etc/airlock/runtimes.yaml not found (installed beside /opt/x/bin/airlock; set
// runtimes_file)". `installed`: the path is the layout's, not one the user gave.
std::string missing(const std::string& path, const std::string& what,
                    const std::string& override_hint, bool installed);

// As missing(), when none of `dirs` exists (one is enough: the others may be optional).
std::string missing_all(const std::vector<std::string>& dirs, const std::string& what,
                        const std::string& override_hint);

}  // namespace airlock::cli
