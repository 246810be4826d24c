// E2B's envd API (the process and filesystem Connect-RPC services that E2B's SDKs call on a
// sandbox), served by a workspace's agent: each call becomes agent requests (runner/workspaces.h)
// and the agent's replies and events become Connect messages.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "api/handler.h"
#include "runner/workspaces.h"

namespace airlock::api::e2b {

// Told each thing that starts in a workspace, for the audit log: the event ("workspace_process",
// "workspace_code") and what ran (policies::WorkspaceRecord::detail). May be empty.
using AuditWorkspace = std::function<void(const std::string& event, const std::string& detail)>;

// Answers one envd RPC, POST <any prefix>/process.Process/<Method> or
// .../filesystem.Filesystem/<Method>, for an admitted workspace (the caller checked the access
// token). Unary calls wait for the agent (call this on a worker thread) and answer an
// HttpResponse; server streams (Process.Start, Process.Connect, Filesystem.WatchDir) answer a
// StreamingResponse. The transport must keep the StreamingResponse's on_client_gone until the
// stream ends or the client goes away: it holds the stream's subscription to the agent's events.
// Never throws; unknown methods answer 404 with Connect's unimplemented.
// `audit` is told of each process started.
Dispatch handle_envd(const HttpRequest& request, std::shared_ptr<runner::Workspace> workspace,
                     AuditWorkspace audit = {});

}  // namespace airlock::api::e2b
