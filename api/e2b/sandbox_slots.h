// Counted slots per sandbox, per API key and service-wide, for what a sandbox's traffic can hold
// for long: a handler thread waiting on its agent (which code inside can stop with kill -STOP,
// so that every wait runs to its timeout), and an open server stream (a connection each). Past
// a cap the request is refused at once instead of queueing behind the ones already held.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <variant>

#include "api/transport/server.h"
#include "runner/workspaces.h"

namespace airlock::api::e2b {

// Sandbox-traffic threads (kSandboxTrafficThreads, apart from the REST API's, MCP's and the control
// plane's) that may wait on agents: two always stay free for the sandbox traffic that does not.
inline constexpr size_t kMaxAgentWaitsPerSandbox = 3;
inline constexpr size_t kMaxAgentWaitsPerOwner = 4;
inline constexpr size_t kMaxAgentWaits = kSandboxTrafficThreads - 2;
// envd server streams (process Start and Connect, WatchDir) open at once.
inline constexpr size_t kMaxStreamsPerSandbox = 32;
inline constexpr size_t kMaxStreamsPerOwner = 128;
inline constexpr size_t kMaxStreams = kMaxConnections / 2;

struct SlotCaps {
  size_t per_sandbox;
  size_t per_owner;
  size_t total;
};

class SlotTable {
 public:
  explicit SlotTable(SlotCaps caps) : caps_(caps) {}

  // One slot held; given back when destroyed. Move-only.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept { *this = std::move(other); }
    Slot& operator=(Slot&& other) noexcept;
    ~Slot() { release(); }
    void release();

   private:
    friend class SlotTable;
    SlotTable* table_ = nullptr;
    std::string sandbox_;
    std::string owner_;
  };
  // Which cap refused a slot, and its value.
  struct Refusal {
    std::string scope;  // "sandbox", "API key" or "service"
    size_t cap = 0;
  };
  // A slot on `workspace` (its id and owner), or the cap that is reached.
  std::variant<Slot, Refusal> take(const runner::Workspace& workspace);
  size_t held(const std::string& sandbox) const;

 private:
  void give_back(const std::string& sandbox, const std::string& owner);

  const SlotCaps caps_;
  mutable std::mutex mutex_;
  std::map<std::string, size_t> by_sandbox_;
  std::map<std::string, size_t> by_owner_;
  size_t total_ = 0;
};

// The service's tables: handler threads waiting on agents, and open envd server streams.
SlotTable& agent_waits();
SlotTable& server_streams();

// A wait on the workspace's agent, or the message refusing it (for 429 / resource_exhausted).
std::variant<SlotTable::Slot, std::string> begin_agent_wait(const runner::Workspace& workspace);

}  // namespace airlock::api::e2b
