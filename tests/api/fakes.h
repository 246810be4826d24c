// Test doubles for the API: an executor that follows a tiny script instead of running code, a fixed
// policy set, and an observer that collects events. The service and handler are tested with these
// exactly as the transport drives them, without a sandbox.
#pragma once

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "api/execution_service.h"
#include "api/executor.h"
#include "api/policy_source.h"

namespace airlock::api::testing {

inline std::shared_ptr<const policies::Policy> make_policy(const std::string& name,
                                                           std::vector<std::string> runtimes) {
  auto policy = std::make_shared<policies::Policy>();
  policy->name = name;
  policy->description = "test policy " + name;
  policy->runtimes = std::move(runtimes);
  policy->extends_chain = {name};
  policy->canonical = "name: " + name + "\n";
  policy->hash = "sha256:" + std::string(64, name.empty() ? '0' : 'a');
  return policy;
}

class StaticPolicySource final : public PolicySource {
 public:
  void add(std::shared_ptr<const policies::Policy> policy) { policies_[policy->name] = policy; }
  std::shared_ptr<const policies::Policy> get(const std::string& name) const override {
    auto found = policies_.find(name);
    return found == policies_.end() ? nullptr : found->second;
  }
  std::vector<std::string> names() const override {
    std::vector<std::string> out;
    for (const auto& [name, policy] : policies_) out.push_back(name);
    return out;
  }
  std::vector<std::string> reload() override { return {}; }

 private:
  std::map<std::string, std::shared_ptr<const policies::Policy>> policies_;
};

// Runs "programs" written as lines of commands:
//   out TEXT / err TEXT   write TEXT (with "\n" for a line break) to stdout / stderr
//   raw HEX               write the bytes given in hex to stdout
//   file PATH TEXT        produce an output file
//   wait                  block until cancelled or the test calls release()
//   exit N                end with exit code N (default 0)
//   throw TEXT            fail inside airlock (an exception)
//   reject FIELD MESSAGE  stop as the runner does when carrying out the request shows it at fault
//                         (a setup_error with RunResult::rejected set)
class FakeExecutor final : public Executor {
 public:
  FakeExecutor() {
    for (const char* name : {"python", "bash"}) {
      runner::Runtime runtime;
      runtime.name = name;
      runtime.description = std::string("fake ") + name;
      runtime.source_file = "main";
      runtime.run = {name};
      runtimes_[name] = runtime;
    }
    gate_ = ::eventfd(0, EFD_CLOEXEC);
  }
  ~FakeExecutor() override { ::close(gate_); }

  const runner::RuntimeTable& runtimes() const override { return runtimes_; }

  std::optional<runner::RequestError> validate(const runner::RunRequest& request,
                                               const policies::Policy&) const override {
    for (const auto& file : request.files) {
      if (file.path.find("..") != std::string::npos) {
        return runner::RequestError{"files", "a path may not contain \"..\""};
      }
    }
    return std::nullopt;
  }

  runner::RunResult run(const runner::RunRequest& request, const policies::Policy& policy,
                        const runner::EventSink& sink, int cancel_fd) override {
    runner::RunResult result;
    result.policy_name = policy.name;
    result.policy_hash = policy.hash;
    result.runtime = request.runtime;
    result.outcome.status = sandbox::RunStatus::ok;
    result.outcome.exit_code = 0;
    uint64_t sequence = 0;
    sink({runner::EventKind::started, ++sequence, "", nullptr});
    {
      std::lock_guard lock(mutex_);
      ++started_;
    }
    started_changed_.notify_all();
    std::istringstream lines(request.code);
    std::string line;
    while (std::getline(lines, line)) {
      std::string command = line.substr(0, line.find(' '));
      std::string rest = line.size() > command.size() ? line.substr(command.size() + 1) : "";
      rest = unescape(rest);
      if (command == "out" || command == "err") {
        bool is_out = command == "out";
        (is_out ? result.stdout_output : result.stderr_output).text += rest;
        (is_out ? result.stdout_output : result.stderr_output).total_bytes += rest.size();
        sink({is_out ? runner::EventKind::stdout_data : runner::EventKind::stderr_data, ++sequence,
              rest, nullptr});
      } else if (command == "raw") {
        std::string bytes;
        for (size_t i = 0; i + 1 < rest.size(); i += 2) {
          bytes += static_cast<char>(std::stoi(rest.substr(i, 2), nullptr, 16));
        }
        result.stdout_output.text += bytes;
        sink({runner::EventKind::stdout_data, ++sequence, bytes, nullptr});
      } else if (command == "file") {
        runner::OutputFile file;
        file.path = rest.substr(0, rest.find(' '));
        file.content = rest.substr(rest.find(' ') + 1);
        file.size_bytes = file.content.size();
        file.media_type = "text/plain";
        result.files.push_back(file);
        sink({runner::EventKind::file, ++sequence, "", &result.files.back()});
      } else if (command == "wait") {
        pollfd fds[2] = {{cancel_fd, POLLIN, 0}, {gate_, POLLIN, 0}};
        ::poll(fds, 2, -1);
        if (fds[0].revents & POLLIN) {
          result.outcome.status = sandbox::RunStatus::cancelled;
          result.outcome.exit_code = -1;
          result.outcome.reason = "cancelled";
          break;
        }
      } else if (command == "exit") {
        result.outcome.exit_code = std::stoi(rest);
        if (result.outcome.exit_code != 0) result.outcome.status = sandbox::RunStatus::nonzero_exit;
      } else if (command == "throw") {
        throw std::runtime_error(rest);
      } else if (command == "reject") {
        const size_t space = rest.find(' ');
        runner::RequestError rejected{rest.substr(0, space), rest.substr(space + 1)};
        result.outcome = sandbox::setup_failure({rejected.field + ": " + rejected.message, 0});
        result.rejected = std::move(rejected);
        break;
      }
    }
    result.summary = std::string(sandbox::to_string(result.outcome.status));
    sink({runner::EventKind::exit, ++sequence, "", nullptr});
    return result;
  }

  // Lets every run blocked in `wait` go on (the gate stays open).
  void release() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(gate_, &one, sizeof one);
  }

  // Blocks until `count` runs have started.
  void wait_started(int count) {
    std::unique_lock lock(mutex_);
    started_changed_.wait(lock, [&] { return started_ >= count; });
  }

 private:
  static std::string unescape(const std::string& text) {
    std::string out;
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == 'n') {
        out += '\n';
        ++i;
      } else {
        out += text[i];
      }
    }
    return out;
  }

  runner::RuntimeTable runtimes_;
  int gate_ = -1;
  std::mutex mutex_;
  std::condition_variable started_changed_;
  int started_ = 0;
};

// Collects the events of one execution; wait() blocks until the final one.
class CollectingObserver final : public ExecutionObserver {
 public:
  void on_event(const v1::Event& event) override {
    std::lock_guard lock(mutex_);
    events_.push_back(event);
    if (event.has_exit() || event.has_error()) done_.notify_all();
  }
  std::vector<v1::Event> wait() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] {
      return !events_.empty() && (events_.back().has_exit() || events_.back().has_error());
    });
    return events_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_;
  std::vector<v1::Event> events_;
};

}  // namespace airlock::api::testing
