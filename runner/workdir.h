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
// What one result's returned files may hold in all. Past it, files are listed with their size but
// no content (truncated): 100 sparse files cost a few KB on disk but 100 MiB to return.
inline constexpr uint64_t kMaxOutputFilesTotalBytes = 8 * 1024 * 1024;
// Directory entries one collection looks at, at most: a tree of a quarter of a million empty
// directories would otherwise hold the calling thread for seconds per listing.
inline constexpr size_t kMaxWalkedEntries = 10000;

// Why `path` is not an acceptable relative path inside the working dir, or nullopt if it is.
std::optional<std::string> check_relative_path(const std::string& path);

// Writes one file (creating parent directories), owned by the sandbox's uid. Only a regular
// file is written: a FIFO or device the sandbox planted at `path` is refused without blocking.
sandbox::Status write_workspace_file(const sandbox::Workspace& workspace, const std::string& path,
                                     std::string_view content, bool executable);

// Why the request's input file files[index] could not be written, as an error in the request
// (field `files[index].path`) when the request caused it: the file does not fit `workdir` (e.g.
// "the session's working directory"), or its path collides with what is already there. nullopt
// when the failure was airlock's own, which stays a setup error.
std::optional<RequestError> refused_input_file(size_t index, const InputFile& file,
                                               const sandbox::SetupError& error,
                                               std::string_view workdir);

// Regular files below workdir whose relative path matches one of the globs (fnmatch), in path
// order, at most kMaxOutputFiles; symlinks and special files are skipped, never followed. Each
// file's content holds at most max_file_bytes, and all of them together at most max_total_bytes.
// The walk stops after max_walked_entries directory entries; *walk_cut (when given) says whether
// it stopped before it had seen the whole tree (then files past that point are missing).
std::vector<OutputFile> collect_output_files(const std::string& workdir,
                                             const std::vector<std::string>& globs,
                                             uint64_t max_file_bytes,
                                             uint64_t max_total_bytes = kMaxOutputFilesTotalBytes,
                                             bool* walk_cut = nullptr,
                                             size_t max_walked_entries = kMaxWalkedEntries);

// The regular file at `path` (relative, checked by check_relative_path) below workdir, with at
// most max_file_bytes of its content; nullopt when there is no regular file there. Opens that one
// path beneath workdir: no walk of the tree, no symlink followed, no FIFO waited on.
std::optional<OutputFile> read_workspace_file(const std::string& workdir, const std::string& path,
                                              uint64_t max_file_bytes);

// "image/png", "text/csv", ... from the file name; binary files default to
// application/octet-stream, text to text/plain.
std::string media_type_for(const std::string& path, bool binary);

}  // namespace airlock::runner
