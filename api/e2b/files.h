// envd's /files: GET downloads one file (streamed in chunks of at most kFileChunkBytes read by the
// agent's fs.read), POST uploads one or more (multipart/form-data, one part per file, its
// filename the destination when no ?path= is given; or a raw application/octet-stream body),
// written with fs.write in chunks of at most kFileChunkBytes.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "api/handler.h"
#include "runner/workspaces.h"

namespace airlock::api::e2b {

inline constexpr size_t kFileChunkBytes = 1024 * 1024;
// A download reads ahead at most this much of what the client has not yet taken.
inline constexpr size_t kDownloadReadAheadBytes = 2 * kFileChunkBytes;
// Files one upload may carry.
inline constexpr size_t kMaxUploadParts = 1000;

struct UploadPart {
  std::string filename;   // as the client named it (E2B's SDK: the destination path)
  std::string_view data;  // into the request body
};

// The parts of a multipart/form-data body, or what is wrong with it.
std::variant<std::vector<UploadPart>, std::string> parse_multipart(std::string_view content_type,
                                                                   std::string_view body);

// GET /files?path=: a small file in one response; a larger one streamed, each chunk read only
// once the client has taken all but kDownloadReadAheadBytes (on a worker thread: it waits for
// the first chunk; the rest arrive as the agent answers, and no thread waits for them).
Dispatch download(const std::string& path, std::shared_ptr<runner::Workspace> workspace);

// Handles /files for an admitted workspace (on a worker thread: it waits for the agent).
Dispatch handle_files(const ApiContext& context, const HttpRequest& request,
                      std::shared_ptr<runner::Workspace> workspace);

}  // namespace airlock::api::e2b
