#include "api/e2b/sandbox_slots.h"

#include <utility>

namespace airlock::api::e2b {

SlotTable::Slot& SlotTable::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    release();
    table_ = std::exchange(other.table_, nullptr);
    sandbox_ = std::move(other.sandbox_);
    owner_ = std::move(other.owner_);
  }
  return *this;
}

void SlotTable::Slot::release() {
  if (auto* table = std::exchange(table_, nullptr)) table->give_back(sandbox_, owner_);
}

std::variant<SlotTable::Slot, SlotTable::Refusal> SlotTable::take(
    const runner::Workspace& workspace) {
  const std::string& sandbox = workspace.id();
  const std::string& owner = workspace.owner();
  {
    std::lock_guard lock(mutex_);
    if (total_ >= caps_.total) return Refusal{"service", caps_.total};
    auto in_sandbox = by_sandbox_.find(sandbox);
    if (in_sandbox != by_sandbox_.end() && in_sandbox->second >= caps_.per_sandbox) {
      return Refusal{"sandbox", caps_.per_sandbox};
    }
    auto of_owner = by_owner_.find(owner);
    if (of_owner != by_owner_.end() && of_owner->second >= caps_.per_owner) {
      return Refusal{"API key", caps_.per_owner};
    }
    ++total_;
    ++by_sandbox_[sandbox];
    ++by_owner_[owner];
  }
  Slot slot;
  slot.table_ = this;
  slot.sandbox_ = sandbox;
  slot.owner_ = owner;
  return slot;
}

size_t SlotTable::held(const std::string& sandbox) const {
  std::lock_guard lock(mutex_);
  auto found = by_sandbox_.find(sandbox);
  return found == by_sandbox_.end() ? 0 : found->second;
}

void SlotTable::give_back(const std::string& sandbox, const std::string& owner) {
  std::lock_guard lock(mutex_);
  --total_;
  if (auto found = by_sandbox_.find(sandbox); found != by_sandbox_.end() && --found->second == 0) {
    by_sandbox_.erase(found);
  }
  if (auto found = by_owner_.find(owner); found != by_owner_.end() && --found->second == 0) {
    by_owner_.erase(found);
  }
}

SlotTable& agent_waits() {
  static SlotTable table({kMaxAgentWaitsPerSandbox, kMaxAgentWaitsPerOwner, kMaxAgentWaits});
  return table;
}

SlotTable& server_streams() {
  static SlotTable table({kMaxStreamsPerSandbox, kMaxStreamsPerOwner, kMaxStreams});
  return table;
}

std::variant<SlotTable::Slot, std::string> begin_agent_wait(const runner::Workspace& workspace) {
  auto taken = agent_waits().take(workspace);
  if (auto* slot = std::get_if<SlotTable::Slot>(&taken)) return std::move(*slot);
  const auto& refusal = std::get<SlotTable::Refusal>(taken);
  const std::string count = std::to_string(refusal.cap);
  if (refusal.scope == "sandbox") {
    return "the sandbox's agent is not answering: " + count +
           " requests already wait for it; try again once they are answered";
  }
  return count + " requests of this " + refusal.scope +
         " already wait for sandbox agents that are slow to answer; try again later";
}

}  // namespace airlock::api::e2b
