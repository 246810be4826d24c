// filesystem.Filesystem: file operations through the agent's fs.* operations (its directory
// watches are in envd_watch.cc).
#include <map>
#include <string>

#include "api/e2b/envd/filesystem.pb.h"
#include "api/e2b/envd_internal.h"
#include "api/e2b/envd_stream.h"

namespace airlock::api::e2b::envd {
namespace {

using connect::Error;

// A number of the agent's JSON as text (owners and groups are names, or uids without one).
std::string name_or_number(const json::Value& value, std::string_view name) {
  const json::Value* field = json::field(value, name);
  if (!field) return "";
  if (field->has_string_value()) return field->string_value();
  if (field->has_number_value()) return std::to_string(static_cast<int64_t>(field->number_value()));
  return "";
}

// The agent's entry object as envd's EntryInfo.
void read_entry(const json::Value& item, filesystem::EntryInfo& entry) {
  entry.set_name(text_field(item, "name"));
  entry.set_path(text_field(item, "path"));
  const std::string type = text_field(item, "type");
  char type_letter = '-';
  if (type == "file") {
    entry.set_type(filesystem::FILE_TYPE_FILE);
  } else if (type == "dir") {
    entry.set_type(filesystem::FILE_TYPE_DIRECTORY);
    type_letter = 'd';
  } else if (type == "symlink") {
    entry.set_type(filesystem::FILE_TYPE_SYMLINK);
    type_letter = 'L';  // as Go's os.FileMode prints it
  }
  entry.set_size(static_cast<int64_t>(number_field(item, "size")));
  entry.set_mode(static_cast<uint32_t>(number_field(item, "mode")));
  // envd prints Go's os.FileMode ("-rw-r--r--"); the agent leaves out the type letter.
  std::string permissions = text_field(item, "permissions");
  if (permissions.size() == 9) permissions.insert(permissions.begin(), type_letter);
  entry.set_permissions(permissions);
  entry.set_owner(name_or_number(item, "owner"));
  entry.set_group(name_or_number(item, "group"));
  const double modified = number_field(item, "modified_time", 0);
  if (modified > 0 && modified < 1e11) {
    auto* time = entry.mutable_modified_time();
    time->set_seconds(static_cast<int64_t>(modified));
    time->set_nanos(static_cast<int32_t>((modified - static_cast<double>(time->seconds())) * 1e9));
  }
  if (auto target = json::string_field(item, "symlink_target")) entry.set_symlink_target(*target);
}

// A reply that is an entry: the agent writes its fields beside "ok" (or, tolerated, as "entry").
const json::Value& entry_of(const json::Value& reply) {
  const json::Value* nested = json::field(reply, "entry");
  return nested && nested->has_struct_value() ? *nested : reply;
}

// Sends a request about one path and answers the entry the agent replies with.
template <class Response>
Dispatch entry_call(Rpc& rpc, const json::Value& agent) {
  auto result = call_agent(rpc, agent);
  if (auto* error = std::get_if<Error>(&result)) return fail(rpc, *error);
  Response response;
  read_entry(entry_of(std::get<json::Value>(result)), *response.mutable_entry());
  return answer(rpc, response);
}

json::Value path_op(std::string op, const std::string& path) {
  return json::object({{"op", json::string(std::move(op))}, {"path", json::string(path)}});
}

Dispatch stat(Rpc& rpc) {
  filesystem::StatRequest request;
  if (auto error = parse_request(rpc, request)) return fail(rpc, *error);
  return entry_call<filesystem::StatResponse>(rpc, path_op("fs.stat", request.path()));
}

Dispatch make_dir(Rpc& rpc) {
  filesystem::MakeDirRequest request;
  if (auto error = parse_request(rpc, request)) return fail(rpc, *error);
  return entry_call<filesystem::MakeDirResponse>(rpc, path_op("fs.mkdir", request.path()));
}

Dispatch move(Rpc& rpc) {
  filesystem::MoveRequest request;
  if (auto error = parse_request(rpc, request)) return fail(rpc, *error);
  return entry_call<filesystem::MoveResponse>(
      rpc, json::object({{"op", json::string("fs.move")},
                         {"source", json::string(request.source())},
                         {"destination", json::string(request.destination())}}));
}

Dispatch list_dir(Rpc& rpc) {
  filesystem::ListDirRequest request;
  if (auto error = parse_request(rpc, request)) return fail(rpc, *error);
  json::Value agent = path_op("fs.list", request.path());
  json::set(agent, "depth", json::number(std::max<uint32_t>(request.depth(), 1)));
  auto result = call_agent(rpc, agent);
  if (auto* error = std::get_if<Error>(&result)) return fail(rpc, *error);
  filesystem::ListDirResponse response;
  const json::Value* entries = json::field(std::get<json::Value>(result), "entries");
  if (entries && entries->has_list_value()) {
    for (const auto& item : entries->list_value().values())
      read_entry(item, *response.add_entries());
  }
  return answer(rpc, response);
}

Dispatch remove(Rpc& rpc) {
  filesystem::RemoveRequest request;
  if (auto error = parse_request(rpc, request)) return fail(rpc, *error);
  auto result = call_agent(rpc, path_op("fs.remove", request.path()));
  if (auto* error = std::get_if<Error>(&result)) return fail(rpc, *error);
  return answer(rpc, filesystem::RemoveResponse());
}

}  // namespace

std::optional<Dispatch> handle_filesystem(std::string_view method, Rpc& rpc) {
  if (method == "Stat") return stat(rpc);
  if (method == "MakeDir") return make_dir(rpc);
  if (method == "Move") return move(rpc);
  if (method == "ListDir") return list_dir(rpc);
  if (method == "Remove") return remove(rpc);
  return handle_watch(method, rpc);
}

}  // namespace airlock::api::e2b::envd
