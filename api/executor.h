// What the API needs from whatever runs code: the runner's validate/run contract as an interface,
// so request handling and scheduling are tested without a sandbox (tests use a fake).
#pragma once

#include <optional>

#include "policies/policy.h"
#include "runner/runner.h"
#include "runner/runtimes.h"
#include "runner/warm_pool.h"

namespace airlock::api {

class Executor {
 public:
  virtual ~Executor() = default;

  virtual const runner::RuntimeTable& runtimes() const = 0;

  // The first problem with the request under the policy, if any (Runner::validate).
  virtual std::optional<runner::RequestError> validate(const runner::RunRequest& request,
                                                       const policies::Policy& policy) const = 0;

  // Runs to completion on the calling thread, calling sink on that thread as output arrives.
  // Writing to cancel_fd (an eventfd) from any thread stops the run (Runner::run).
  virtual runner::RunResult run(const runner::RunRequest& request, const policies::Policy& policy,
                                const runner::EventSink& sink, int cancel_fd) = 0;
};

// The production Executor: the real runner, and warm capacity when configured.
class RunnerExecutor final : public Executor {
 public:
  explicit RunnerExecutor(runner::Runner& runner, runner::WarmPool* warm = nullptr)
      : runner_(runner), warm_(warm) {}

  const runner::RuntimeTable& runtimes() const override { return runner_.runtimes(); }
  std::optional<runner::RequestError> validate(const runner::RunRequest& request,
                                               const policies::Policy& policy) const override {
    return runner_.validate(request, policy);
  }
  runner::RunResult run(const runner::RunRequest& request, const policies::Policy& policy,
                        const runner::EventSink& sink, int cancel_fd) override {
    if (warm_ != nullptr) {
      if (auto warm = warm_->try_run(request, policy, sink, cancel_fd)) return std::move(*warm);
    }
    return runner_.run(request, policy, sink, cancel_fd);
  }

 private:
  runner::Runner& runner_;
  runner::WarmPool* warm_;
};

}  // namespace airlock::api
