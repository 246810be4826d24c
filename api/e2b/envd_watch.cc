// filesystem.Filesystem's directory watches: streamed (WatchDir), or buffered for polling
// (CreateWatcher, GetWatcherEvents, RemoveWatcher), from the agent's w:<watch_id> events.
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>

#include "api/e2b/envd/filesystem.pb.h"
#include "api/e2b/envd_internal.h"
#include "api/e2b/envd_stream.h"
#include "api/e2b/sandbox_slots.h"

namespace airlock::api::e2b::envd {
namespace {

using connect::Error;

// Polling watchers: events a watcher holds until fetched, and watchers per workspace. Beyond
// the first bound the watcher is ended (its next fetch says so), never silently thinned.
constexpr size_t kMaxBufferedWatcherEvents = 1024;
constexpr size_t kMaxWatchersPerWorkspace = 16;

// One w:<id> event as envd's FilesystemEvent; false for a type envd has no name for.
bool read_watch_event(std::string_view text, filesystem::FilesystemEvent& event) {
  std::string error;
  auto value = json::parse(text, error);
  if (!value || !value->has_struct_value()) return false;
  static const std::map<std::string, filesystem::EventType, std::less<>> kTypes = {
      {"create", filesystem::EVENT_TYPE_CREATE},
      {"write", filesystem::EVENT_TYPE_WRITE},
      {"remove", filesystem::EVENT_TYPE_REMOVE},
      {"rename", filesystem::EVENT_TYPE_RENAME},
      {"chmod", filesystem::EVENT_TYPE_CHMOD}};
  auto type = kTypes.find(text_field(*value, "type"));
  if (type == kTypes.end()) return false;
  event.set_type(type->second);
  event.set_name(text_field(*value, "name"));
  return true;
}

json::Value watch_start(const std::string& path, bool recursive) {
  json::Value agent =
      json::object({{"op", json::string("fs.watch_start")}, {"path", json::string(path)}});
  json::set(agent, "recursive", json::boolean(recursive));
  return agent;
}

void stop_watch(runner::Workspace& workspace, const std::string& watch_id) {
  workspace.call(json::print(json::object({{"op", json::string("fs.watch_stop")},
                                           {"watch_id", json::string(watch_id)}})),
                 [](runner::AgentReply) {});
}

Dispatch watch_dir(Rpc& rpc) {
  filesystem::WatchDirRequest request;
  if (auto error = parse_request(rpc, request)) return fail(rpc, *error);
  auto stream = std::make_shared<ServerStream>(rpc.encoding, rpc.deadline);
  filesystem::WatchDirResponse keepalive;
  keepalive.mutable_keepalive();
  auto workspace = rpc.workspace;
  const std::string text = json::print(watch_start(request.path(), request.recursive()));
  return ServerStream::response(stream, rpc, keepalive, [workspace, text](auto stream) {
    workspace->call(text, [stream, workspace](runner::AgentReply reply) {
      auto result = read_reply(reply);
      if (auto* error = std::get_if<Error>(&result)) return stream->finish(*error);
      const std::string watch_id = text_field(std::get<json::Value>(result), "watch_id");
      if (watch_id.empty()) return stream->finish(Error{"internal", "the agent named no watch"});
      // Registered first: when the client has left already, the watch stops at once.
      stream->on_client_gone([weak = std::weak_ptr<runner::Workspace>(workspace), watch_id] {
        if (auto workspace = weak.lock()) stop_watch(*workspace, watch_id);
      });
      if (!stream->open()) return;
      stream->hold(workspace->subscribe(
          "w:" + watch_id,
          weakly(stream,
                 [](ServerStream& s, std::string_view text) {
                   filesystem::WatchDirResponse response;
                   if (read_watch_event(text, *response.mutable_filesystem())) s.send(response);
                 }),
          weakly(stream, [](ServerStream& s) {
            s.finish(Error{"unavailable", "the sandbox ended while it was watched"});
          })));
      filesystem::WatchDirResponse start;
      start.mutable_start();
      stream->send(start);
    });
  });
}

// A polling watcher: the agent's events for one watch, held until fetched.
struct Watcher {
  std::mutex mutex;
  std::deque<filesystem::FilesystemEvent> events;
  bool overflowed = false;
  bool ended = false;  // the workspace ended
  std::unique_ptr<runner::Workspace::Subscription> subscription;
  std::weak_ptr<runner::Workspace> workspace;
};

// Buffers the events of watch `id` in the watcher, up to kMaxBufferedWatcherEvents.
void subscribe_watcher(runner::Workspace& workspace, const std::string& id,
                       const std::shared_ptr<Watcher>& watcher) {
  std::weak_ptr<Watcher> weak = watcher;
  watcher->subscription = workspace.subscribe(
      "w:" + id,
      [weak](std::string_view text) {
        auto watcher = weak.lock();
        filesystem::FilesystemEvent event;
        if (!watcher || !read_watch_event(text, event)) return;
        std::lock_guard lock(watcher->mutex);
        if (watcher->events.size() >= kMaxBufferedWatcherEvents) {
          watcher->overflowed = true;
        } else if (!watcher->overflowed) {
          watcher->events.push_back(std::move(event));
        }
      },
      [weak] {
        if (auto watcher = weak.lock()) {
          std::lock_guard lock(watcher->mutex);
          watcher->ended = true;
        }
      });
}

// Every workspace's polling watchers, by "<workspace id>/<watch id>". Process-wide, because
// handle_envd is a free function; watchers of workspaces that ended are pruned as others come.
class WatcherTable {
 public:
  // False when the workspace has kMaxWatchersPerWorkspace already.
  bool add(const std::string& key, const std::string& workspace_id,
           std::shared_ptr<Watcher> watcher) {
    std::vector<std::shared_ptr<Watcher>> dead;  // destroyed outside the lock
    std::lock_guard lock(mutex_);
    size_t same_workspace = 0;
    for (auto it = watchers_.begin(); it != watchers_.end();) {
      auto workspace = it->second->workspace.lock();
      if (!workspace || !workspace->alive()) {
        dead.push_back(std::move(it->second));
        it = watchers_.erase(it);
        continue;
      }
      if (it->first.compare(0, workspace_id.size() + 1, workspace_id + "/") == 0) ++same_workspace;
      ++it;
    }
    if (same_workspace >= kMaxWatchersPerWorkspace) return false;
    watchers_[key] = std::move(watcher);
    return true;
  }
  std::shared_ptr<Watcher> find(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = watchers_.find(key);
    return it == watchers_.end() ? nullptr : it->second;
  }
  std::shared_ptr<Watcher> take(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = watchers_.find(key);
    if (it == watchers_.end()) return nullptr;
    auto watcher = std::move(it->second);
    watchers_.erase(it);
    return watcher;
  }

 private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Watcher>> watchers_;
};

WatcherTable& watchers() {
  static WatcherTable table;
  return table;
}

std::string watcher_key(const Rpc& rpc, const std::string& watch_id) {
  return rpc.workspace->id() + "/" + watch_id;
}

Dispatch create_watcher(Rpc& rpc) {
  filesystem::CreateWatcherRequest request;
  if (auto error = parse_request(rpc, request)) return fail(rpc, *error);
  auto wait = begin_agent_wait(*rpc.workspace);
  if (auto* refused = std::get_if<std::string>(&wait)) {
    return fail(rpc, {"resource_exhausted", std::move(*refused)});
  }
  auto watcher = std::make_shared<Watcher>();
  watcher->workspace = rpc.workspace;
  // Subscribed in the reply's callback, so no event after the reply is lost; this thread waits
  // for that callback. One that comes after the wait gave up stops the watch it started.
  struct Pending {
    std::mutex mutex;
    std::condition_variable replied;
    std::optional<AgentResult> result;
    bool abandoned = false;
  };
  auto pending = std::make_shared<Pending>();
  std::weak_ptr<runner::Workspace> weak_workspace = rpc.workspace;
  rpc.workspace->call(json::print(watch_start(request.path(), request.recursive())),
                      [pending, watcher, weak_workspace](runner::AgentReply reply) {
                        AgentResult read = read_reply(reply);
                        auto workspace = weak_workspace.lock();
                        std::lock_guard lock(pending->mutex);
                        const auto* value = std::get_if<json::Value>(&read);
                        const std::string id = value ? text_field(*value, "watch_id") : "";
                        if (pending->abandoned) {
                          if (workspace && !id.empty()) stop_watch(*workspace, id);
                          return;
                        }
                        if (workspace && !id.empty()) subscribe_watcher(*workspace, id, watcher);
                        pending->result = std::move(read);
                        pending->replied.notify_all();
                      });
  std::optional<AgentResult> result;
  {
    std::unique_lock lock(pending->mutex);
    if (!pending->replied.wait_for(lock, rpc.wait, [&] { return pending->result.has_value(); })) {
      pending->abandoned = true;
      return fail(rpc, {"deadline_exceeded", "the sandbox did not start the watch in time"});
    }
    result = std::move(pending->result);
  }
  if (auto* error = std::get_if<Error>(&*result)) return fail(rpc, *error);
  const std::string watch_id = text_field(std::get<json::Value>(*result), "watch_id");
  if (watch_id.empty()) return fail(rpc, {"internal", "the sandbox's agent named no watch"});
  if (!watchers().add(watcher_key(rpc, watch_id), rpc.workspace->id(), watcher)) {
    stop_watch(*rpc.workspace, watch_id);
    return fail(rpc,
                {"resource_exhausted", "a sandbox may have at most " +
                                           std::to_string(kMaxWatchersPerWorkspace) + " watchers"});
  }
  filesystem::CreateWatcherResponse response;
  response.set_watcher_id(watch_id);
  return answer(rpc, response);
}

Dispatch get_watcher_events(Rpc& rpc) {
  filesystem::GetWatcherEventsRequest request;
  if (auto error = parse_request(rpc, request)) return fail(rpc, *error);
  const std::string key = watcher_key(rpc, request.watcher_id());
  auto watcher = watchers().find(key);
  if (!watcher) return fail(rpc, {"not_found", "no watcher " + request.watcher_id()});
  filesystem::GetWatcherEventsResponse response;
  bool overflowed = false, ended = false;
  {
    std::lock_guard lock(watcher->mutex);
    overflowed = watcher->overflowed;
    ended = watcher->ended;
    if (!overflowed) {
      for (auto& event : watcher->events) *response.add_events() = std::move(event);
      watcher->events.clear();
    }
  }
  if (ended && response.events_size() == 0) {
    watchers().take(key);
    return fail(rpc, {"unavailable", "the sandbox ended"});
  }
  if (overflowed) {
    watchers().take(key);
    stop_watch(*rpc.workspace, request.watcher_id());
    return fail(
        rpc, {"resource_exhausted", "the watcher missed events: more than " +
                                        std::to_string(kMaxBufferedWatcherEvents) +
                                        " waited to be fetched; it was removed, create another"});
  }
  return answer(rpc, response);
}

Dispatch remove_watcher(Rpc& rpc) {
  filesystem::RemoveWatcherRequest request;
  if (auto error = parse_request(rpc, request)) return fail(rpc, *error);
  auto watcher = watchers().take(watcher_key(rpc, request.watcher_id()));
  if (!watcher) return fail(rpc, {"not_found", "no watcher " + request.watcher_id()});
  watcher.reset();  // unsubscribes, on this worker thread
  auto result = call_agent(rpc, json::object({{"op", json::string("fs.watch_stop")},
                                              {"watch_id", json::string(request.watcher_id())}}));
  if (auto* error = std::get_if<Error>(&result)) return fail(rpc, *error);
  return answer(rpc, filesystem::RemoveWatcherResponse());
}

}  // namespace

std::optional<Dispatch> handle_watch(std::string_view method, Rpc& rpc) {
  if (method == "WatchDir") return watch_dir(rpc);
  if (method == "CreateWatcher") return create_watcher(rpc);
  if (method == "GetWatcherEvents") return get_watcher_events(rpc);
  if (method == "RemoveWatcher") return remove_watcher(rpc);
  return std::nullopt;
}

}  // namespace airlock::api::e2b::envd
