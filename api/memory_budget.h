// The memory the service holds on behalf of clients (request bodies being read, results kept for
// later lookups) counted against one budget, so that many clients at once get 503 with
// Retry-After instead of the service being killed for memory.
#pragma once

#include <atomic>
#include <cstdint>

namespace airlock::api {

class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t limit_bytes) : limit_(limit_bytes) {}
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // Takes `bytes` from the budget when they fit; false, taking nothing, when they do not.
  bool try_take(uint64_t bytes) {
    uint64_t used = used_.load(std::memory_order_relaxed);
    do {
      if (bytes > limit_ || used > limit_ - bytes) return false;
    } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
    return true;
  }
  void give_back(uint64_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }

  uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  uint64_t limit() const { return limit_; }

 private:
  const uint64_t limit_;
  std::atomic<uint64_t> used_{0};
};

// Bytes taken from a budget, given back when this is destroyed or reset. Move-only.
class BudgetShare {
 public:
  BudgetShare() = default;
  BudgetShare(MemoryBudget& budget, uint64_t bytes) : budget_(&budget), bytes_(bytes) {}
  BudgetShare(BudgetShare&& other) noexcept : budget_(other.budget_), bytes_(other.bytes_) {
    other.budget_ = nullptr;
  }
  BudgetShare& operator=(BudgetShare&& other) noexcept {
    if (this != &other) {
      reset();
      budget_ = other.budget_;
      bytes_ = other.bytes_;
      other.budget_ = nullptr;
    }
    return *this;
  }
  ~BudgetShare() { reset(); }
  void reset() {
    if (budget_ != nullptr) budget_->give_back(bytes_);
    budget_ = nullptr;
  }
  uint64_t bytes() const { return budget_ != nullptr ? bytes_ : 0; }
  // Takes more from `budget` (the one this share holds, if any) so that the share holds `total`
  // bytes; false, changing nothing, when they do not fit.
  bool grow_to(MemoryBudget& budget, uint64_t total) {
    const uint64_t held = bytes();
    if (total <= held) return true;
    if (!budget.try_take(total - held)) return false;
    budget_ = &budget;
    bytes_ = total;
    return true;
  }

 private:
  MemoryBudget* budget_ = nullptr;
  uint64_t bytes_ = 0;
};

}  // namespace airlock::api
