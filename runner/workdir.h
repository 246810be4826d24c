// Files in and out of a run's working directory. The sandboxed program may have planted symlinks
// there, so every access resolves beneath the directory without following any link.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runner/runner.h"
#include "sandbox/sandbox.h"

namespace airlock::runner {

inline constexpr size_t kMaxOutputFiles = 100;

// Why `path` is not an acceptable relative path inside the working dir, or nullopt if it is.
std::optional<std::string> check_relative_path(const std::string& path);

// Writes one file (creating parent directories), owned by the sandbox's uid.
sandbox::Status write_workspace_file(const sandbox::Workspace& workspace, const std::string& path,
                                     std::string_view content, bool executable);

// Regular files below workdir whose relative path matches one of the globs (fnmatch), in path
// order, at most kMaxOutputFiles; symlinks and special files are skipped, never followed.
std::vector<OutputFile> collect_output_files(const std::string& workdir,
                                             const std::vector<std::string>& globs,
                                             uint64_t max_file_bytes);

// "image/png", "text/csv", ... from the file name; binary files default to
// application/octet-stream, text to text/plain.
std::string media_type_for(const std::string& path, bool binary);

}  // namespace airlock::runner
