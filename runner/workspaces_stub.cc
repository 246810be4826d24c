// TEMPORARY STUB, DELETE ON INTEGRATION: the real WorkspaceManager is written on branch
// e2b-runner (runner/workspaces.cc). This lets branch e2b-plane link before it lands: every
// workspace request is refused. Remove this file and its line in runner/CMakeLists.txt when
// merging e2b-runner.
#include "runner/workspaces.h"

namespace airlock::runner {
namespace {
SessionError not_built() {
  return {SessionRefusal::setup_failed, "", "workspaces are not built into this airlock"};
}
}  // namespace

WorkspaceManager::WorkspaceManager(sandbox::Sandbox&, const RuntimeTable&, WorkspaceSettings) {}
WorkspaceManager::~WorkspaceManager() = default;
std::variant<WorkspaceInfo, SessionError> WorkspaceManager::create(const WorkspaceRequest&) {
  return not_built();
}
std::variant<std::shared_ptr<Workspace>, SessionError> WorkspaceManager::find(
    const std::string&, const std::string&) const {
  return SessionError{SessionRefusal::not_found, "", "no such workspace"};
}
std::variant<std::shared_ptr<Workspace>, SessionError> WorkspaceManager::find_by_token(
    const std::string&, std::string_view) const {
  return SessionError{SessionRefusal::not_found, "", "no such workspace"};
}
std::optional<WorkspaceInfo> WorkspaceManager::info(const std::string&, const std::string&) const {
  return std::nullopt;
}
std::vector<WorkspaceInfo> WorkspaceManager::list(const std::string&) const { return {}; }
bool WorkspaceManager::kill(const std::string&, const std::string&) { return false; }
std::optional<SessionError> WorkspaceManager::set_timeout(const std::string&, const std::string&,
                                                          std::chrono::milliseconds) {
  return SessionError{SessionRefusal::not_found, "", "no such workspace"};
}
size_t WorkspaceManager::size() const { return 0; }
void WorkspaceManager::drain() {}

}  // namespace airlock::runner
