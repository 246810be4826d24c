#include "api/e2b/files.h"

#include "api/e2b/agent.h"
#include "api/e2b/errors.h"
#include "api/e2b/query.h"
#include "api/wire/text.h"

namespace airlock::api::e2b {
namespace {

// undici's FormData escapes these in a filename.
std::string unescape_filename(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text.substr(i, 3) == "%22") {
      out += '"';
    } else if (text.substr(i, 3) == "%0D" || text.substr(i, 3) == "%0d") {
      out += '\r';
    } else if (text.substr(i, 3) == "%0A" || text.substr(i, 3) == "%0a") {
      out += '\n';
    } else {
      out += text[i];
      continue;
    }
    i += 2;
  }
  return out;
}

std::string_view header_param(std::string_view header, std::string_view name) {
  for (size_t at = header.find(name); at != std::string_view::npos;
       at = header.find(name, at + 1)) {
    // A whole parameter name: "filename=" must not match inside "xfilename=".
    if (at > 0 && header[at - 1] != ';' && header[at - 1] != ' ') continue;
    std::string_view value = header.substr(at + name.size());
    if (value.starts_with('"')) {
      const size_t close = value.find('"', 1);
      return close == std::string_view::npos ? value.substr(1) : value.substr(1, close - 1);
    }
    return value.substr(0, value.find(';'));
  }
  return {};
}

HttpResponse agent_error(const AgentResult& result) {
  return error(status_for_agent_code(result.code), result.message);
}

std::string basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

json::Value read_request(const std::string& path, uint64_t offset) {
  return json::object({{"op", json::string("fs.read")},
                       {"path", json::string(path)},
                       {"offset", json::number(static_cast<double>(offset))},
                       {"length", json::number(kFileChunkBytes)}});
}

// The bytes of an fs.read reply, and whether it reached the end.
bool read_chunk(const AgentResult& result, std::string& data, bool& eof) {
  auto encoded = json::string_field(result.body, "data");
  auto decoded = encoded ? base64_decode(*encoded) : std::nullopt;
  if (!decoded) return false;
  data = std::move(*decoded);
  const json::Value* end = json::field(result.body, "eof");
  eof = !end || !end->has_bool_value() || end->bool_value() || data.empty();
  return true;
}

// A download after its first chunk, as a chain of events: a chunk arrives (on the workspace's
// reader thread), is written, and the next is asked for at once while the client has taken all
// but kDownloadReadAheadBytes, else when it has. Nothing waits on a thread for a slow client, and
// a slow client is never cut. The chain ends with the file, a failed read, or the stream closing.
class Download : public std::enable_shared_from_this<Download> {
 public:
  // The workspace is held weakly: a reply still to come is kept by the workspace itself, and a
  // strong hold in it would keep an ended stream's workspace alive until the agent answers.
  Download(std::string path, const std::shared_ptr<runner::Workspace>& workspace, uint64_t offset,
           std::shared_ptr<ByteStreamWriter> writer)
      : path_(std::move(path)),
        workspace_(workspace),
        offset_(offset),
        writer_(std::move(writer)) {}

  // Asks for the chunk at the offset, unless the stream has closed.
  void read_next() {
    if (writer_->closed()) return;
    auto workspace = workspace_.lock();
    if (!workspace) return writer_->end();  // killed: the body ends short, as on a failed read
    workspace->call(
        json::print(read_request(path_, offset_)),
        [self = shared_from_this()](runner::AgentReply reply) { self->on_chunk(reply); });
  }

 private:
  void on_chunk(const runner::AgentReply& reply) {
    AgentResult result = parse_reply(reply);
    std::string chunk;
    bool eof = true;
    // A failure part-way ends the body early; the SDK then holds a short file.
    if (!result.ok || !read_chunk(result, chunk, eof)) return writer_->end();
    offset_ += chunk.size();
    if (!writer_->write(std::move(chunk))) return;  // the client went away, or was cut
    if (eof) return writer_->end();
    // Called once, also when the stream closes first: read_next then stops.
    writer_->when_pending_at_most(kDownloadReadAheadBytes,
                                  [self = shared_from_this()] { self->read_next(); });
  }

  const std::string path_;
  const std::weak_ptr<runner::Workspace> workspace_;
  uint64_t offset_;  // only the one step of the chain under way touches it
  const std::shared_ptr<ByteStreamWriter> writer_;
};

HttpResponse upload(const HttpRequest& request, const std::optional<std::string>& path,
                    runner::Workspace& workspace) {
  std::vector<UploadPart> parts;
  const std::string content_type(request.header("Content-Type").value_or(""));
  if (content_type.find("multipart/form-data") != std::string::npos) {
    auto parsed = parse_multipart(content_type, request.body);
    if (auto* problem = std::get_if<std::string>(&parsed)) return error(400, *problem);
    parts = std::move(std::get<std::vector<UploadPart>>(parsed));
    if (parts.empty()) return error(400, "the upload has no file part");
  } else if (path) {
    parts.push_back({*path, request.body});  // a raw body (application/octet-stream)
  } else {
    return error(400, "an upload without ?path= must be multipart/form-data");
  }
  std::vector<json::Value> written;
  for (const UploadPart& part : parts) {
    const std::string destination = path && parts.size() == 1 ? *path : part.filename;
    if (destination.empty()) return error(400, "a file part has no filename and there is no ?path=");
    std::string entry_path = destination;
    size_t at = 0;
    do {
      const std::string_view chunk = part.data.substr(at, kFileChunkBytes);
      AgentResult result = ask(workspace, json::object({{"op", json::string("fs.write")},
                                                        {"path", json::string(destination)},
                                                        {"data", json::string(base64_encode(chunk))},
                                                        {"truncate", json::boolean(at == 0)}}));
      if (!result.ok) return agent_error(result);
      if (const json::Value* entry = json::field(result.body, "entry")) {
        entry_path = json::string_field(*entry, "path").value_or(entry_path);
      }
      at += chunk.size();
    } while (at < part.data.size());
    written.push_back(json::object({{"name", json::string(basename(entry_path))},
                                    {"type", json::string("file")},
                                    {"path", json::string(entry_path)}}));
  }
  return HttpResponse{200, "application/json", {}, json::print(json::array(std::move(written)))};
}

}  // namespace

Dispatch download(const std::string& path, std::shared_ptr<runner::Workspace> workspace) {
  // The first chunk decides the answer (an error, or the whole of a small file), so it is waited
  // for here, on the handler's worker thread.
  AgentResult first = ask(*workspace, read_request(path, 0));
  if (!first.ok) return agent_error(first);
  std::string data;
  bool eof = true;
  if (!read_chunk(first, data, eof)) return error(502, "the sandbox sent an unreadable file chunk");
  if (eof) return HttpResponse{200, "application/octet-stream", {}, std::move(data)};

  StreamingResponse stream;
  stream.head = HttpResponse{200, "application/octet-stream", {}, std::move(data)};
  const uint64_t offset = stream.head.body.size();
  stream.start = [path, workspace = std::move(workspace),
                  offset](std::shared_ptr<ByteStreamWriter> writer) {
    std::make_shared<Download>(path, workspace, offset, std::move(writer))->read_next();
  };
  return stream;
}

std::variant<std::vector<UploadPart>, std::string> parse_multipart(std::string_view content_type,
                                                                   std::string_view body) {
  const std::string_view boundary = header_param(content_type, "boundary=");
  if (boundary.empty() || boundary.size() > 200) return "multipart: no usable boundary";
  const std::string delimiter = "--" + std::string(boundary);
  size_t at = body.find(delimiter);
  if (at == std::string_view::npos) return "multipart: the body has no boundary line";
  std::vector<UploadPart> parts;
  for (;;) {
    at += delimiter.size();
    if (body.substr(at, 2) == "--") return parts;  // the closing delimiter
    if (body.substr(at, 2) != "\r\n") return "multipart: a boundary line is malformed";
    at += 2;
    const size_t headers_end = body.find("\r\n\r\n", at);
    if (headers_end == std::string_view::npos) return "multipart: a part's headers do not end";
    const std::string_view headers = body.substr(at, headers_end - at);
    const size_t data_start = headers_end + 4;
    const size_t next = body.find("\r\n" + delimiter, data_start);
    if (next == std::string_view::npos) return "multipart: a part does not end";
    if (parts.size() >= kMaxUploadParts) {
      return "multipart: more than " + std::to_string(kMaxUploadParts) + " files in one upload";
    }
    UploadPart part;
    part.data = body.substr(data_start, next - data_start);
    // Header names are case-insensitive; E2B's SDK names the file in Content-Disposition.
    for (size_t line = 0; line < headers.size();) {
      size_t end = headers.find("\r\n", line);
      if (end == std::string_view::npos) end = headers.size();
      std::string_view text = headers.substr(line, end - line);
      std::string lower(text.substr(0, 20));
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower.starts_with("content-disposition:")) {
        part.filename = unescape_filename(header_param(text, "filename="));
      }
      line = end + 2;
    }
    parts.push_back(std::move(part));
    at = next + 2;
  }
}

Dispatch handle_files(const ApiContext& context, const HttpRequest& request,
                      std::shared_ptr<runner::Workspace> workspace) {
  bool malformed = false;
  auto path = query_param(request.target, "path", malformed);
  if (malformed) return error(400, "path: a malformed %-escape");
  if (auto user = query_param(request.target, "username", malformed); user && *user != "user") {
    return error(400, "username: airlock runs everything in a sandbox as \"user\"");
  }
  if (request.method == "GET") {
    if (!path || path->empty()) return error(400, "path: required");
    return download(*path, std::move(workspace));
  }
  if (request.method == "POST") {
    if (request.body.size() > context.config.max_body_bytes) {
      return error(413, "the upload is larger than max_body_size");
    }
    return upload(request, path, *workspace);
  }
  return error(405, "use GET or POST on /files");
}

}  // namespace airlock::api::e2b
