// The janitor's thread and queue (runner/workspace_janitor.h).
#include "runner/workspace_janitor.h"

namespace airlock::runner {

WorkspaceManager::Janitor::Janitor(std::function<void(const std::string&)> remove)
    : remove_(std::move(remove)), thread_([this] { work(); }) {}

WorkspaceManager::Janitor::~Janitor() {
  stop();
}

void WorkspaceManager::Janitor::post(std::string id) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    ids_.push_back(std::move(id));
  }
  changed_.notify_one();
}

void WorkspaceManager::Janitor::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    ids_.clear();
  }
  changed_.notify_one();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void WorkspaceManager::Janitor::work() {
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, [this] { return stopping_ || !ids_.empty(); });
    if (stopping_) return;
    std::string id = std::move(ids_.front());
    ids_.pop_front();
    lock.unlock();
    remove_(id);
    lock.lock();
  }
}

}  // namespace airlock::runner
