// One interpreter, a session's or a warm pool's: a driver program (runner/drivers.h) running in a
// live sandbox that runs one execution at a time and keeps its state in between. Each execution's
// end is known from a record on the control channel (fd 3) and a marker on stdout and stderr, so
// that every byte of output is attributed to the execution that wrote it.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runner/output_capture.h"
#include "runner/runner.h"
#include "sandbox/sandbox.h"

namespace airlock::runner {

// One execution's part of a request, with the limits already resolved.
struct InterpreterRequest {
  std::string code;
  std::string stdin_data;
  std::chrono::milliseconds wall_time{0};
  std::chrono::milliseconds cpu_time{0};
  uint64_t kept_bytes = 0;        // per stream
  bool kill_on_overflow = false;  // the policy's output_overflow: kill
  bool stream_everything = false;
  const EventSink* sink = nullptr;  // may be null
  uint64_t* sequence = nullptr;     // the execution's event counter
  int cancel_fd = -1;
  // The driver's frame pipe is the program's stdin: closed after the frame, the code then reads
  // an empty stdin, as in a cold run.
  bool close_stdin_after_frame = false;
};

struct InterpreterResult {
  sandbox::Outcome outcome;
  KeptOutput stdout_output;
  KeptOutput stderr_output;
  bool interpreter_ended = false;  // its state is gone; the next execution needs a fresh one
};

class Interpreter final : public sandbox::OutputHandler {
 public:
  // Starts the driver under spec (which must set control_channel). With gateway ports in spec,
  // gateway links the sandbox's network to the egress gateway for the interpreter's life.
  static sandbox::Expected<std::unique_ptr<Interpreter>> start(
      sandbox::Sandbox& sandbox, const sandbox::Spec& spec,
      std::unique_ptr<GatewayLink> gateway = nullptr);
  // Forks the driver from a fork server (started from a spec with the driver in zygote mode),
  // with spec's limits and policy; the working directory comes with it.
  struct Forked;
  static sandbox::Expected<Forked> fork(sandbox::Sandbox& sandbox, sandbox::ForkServer& server,
                                        const sandbox::Spec& spec,
                                        std::unique_ptr<GatewayLink> gateway = nullptr);
  // Kills the sandbox and waits for it to be cleaned up.
  ~Interpreter() override;

  // Runs one execution to its end, a limit, cancellation, or the interpreter's death. Not to be
  // called from two threads at once (a session's lease ensures that).
  InterpreterResult execute(const InterpreterRequest& request);

  // True while the driver runs and can take executions.
  bool alive() const;
  // True once the driver has said it finished starting (imports done): an execution sent now
  // starts at once rather than waiting for the interpreter to come up.
  bool ready() const;
  // CPU its sandbox has used over its life (all of it, once ended).
  std::chrono::milliseconds cpu_used() const;
  // Memory charged to its sandbox now.
  uint64_t memory_usage_bytes() const { return live_ ? live_->memory_usage_bytes() : 0; }
  // Gives a sandbox started in the background (sandbox::Spec::background) its full CPU weight.
  sandbox::Status to_foreground() { return live_ ? live_->to_foreground() : sandbox::Status{}; }
  // Ends the interpreter from any thread; a running execute() returns as cancelled.
  void kill();
  // Its link to the egress gateway, when its policy has egress; else null.
  GatewayLink* gateway() const { return gateway_.get(); }

  bool on_output(sandbox::Stream stream, std::string_view data) override;
  void on_ended() override;
  void on_blocked(const sandbox::SyscallEvent& event) override;
  void on_gateway_sockets(sandbox::GatewaySockets sockets) override;

 private:
  Interpreter() = default;
  struct Record {
    std::string status;  // ok, error, exit
    int exit_code = 0;
    std::array<bool, 2> marked{};
    std::string reason;
  };
  void deliver(int stream, std::string_view data);  // with mutex_ held
  void parse_control();                             // with mutex_ held
  bool complete() const;                            // with mutex_ held

  std::unique_ptr<GatewayLink> gateway_;  // finished after the sandbox has ended
  std::unique_ptr<sandbox::LiveSandbox> live_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  // The running execution, if any.
  bool active_ = false;
  bool ready_ = false;  // the driver's "ready" line arrived
  std::string marker_;
  std::array<std::string, 2> held_;  // bytes that may be the start of the marker
  std::array<bool, 2> marked_{};
  std::optional<OutputCapture> capture_;  // the running execution's
  std::string control_;
  std::optional<Record> record_;
  bool overflowed_ = false;
  // Calls refused (or logged) during the running execution: its result reports them, not the
  // sandbox's outcome, which a session's interpreter reaches only at its end.
  std::vector<sandbox::SyscallEvent> blocked_;
  uint64_t blocked_dropped_ = 0;
  bool sandbox_ended_ = false;  // on_ended was called
};

struct Interpreter::Forked {
  std::unique_ptr<Interpreter> interpreter;
  std::unique_ptr<sandbox::Workspace> workspace;
};

}  // namespace airlock::runner
