// WorkspaceManager's janitor (runner/workspaces.h): a thread that removes workspaces by id, so
// that the sandbox's thread, which learns that an agent ended, never waits for a sandbox's
// teardown. Apart from workspaces.cc, which keeps to the manager's requests.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "runner/workspaces.h"

namespace airlock::runner {

class WorkspaceManager::Janitor {
 public:
  // `remove` runs on the janitor's thread, once for each id posted.
  explicit Janitor(std::function<void(const std::string&)> remove);
  ~Janitor();

  void post(std::string id);
  // Drops what is queued and joins the thread; later posts are ignored.
  void stop();

 private:
  void work();

  const std::function<void(const std::string&)> remove_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::string> ids_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest is made
};

}  // namespace airlock::runner
