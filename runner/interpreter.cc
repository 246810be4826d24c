#include "runner/interpreter.h"

#include <sys/random.h>

#include <cstdio>
#include <sstream>

namespace airlock::runner {
namespace {

// A control record larger than this is not one the driver wrote.
constexpr size_t kMaxControlBytes = 64 * 1024;
constexpr int kStdout = 0;
constexpr int kStderr = 1;

// A marker no program prints by accident: control characters around 96 random bits. No
// whitespace in it, since the drivers split their frame header on spaces.
std::string new_marker() {
  std::string id = new_execution_id();  // "ex_" + 24 hex digits, from getrandom
  return std::string("\x02") + "airlock-end-" + id.substr(3) + "\x03";
}

// The length of the longest suffix of text that is a proper prefix of marker.
size_t partial_marker(const std::string& text, const std::string& marker) {
  for (size_t keep = std::min(text.size(), marker.size() - 1); keep > 0; --keep) {
    if (text.compare(text.size() - keep, keep, marker, 0, keep) == 0) return keep;
  }
  return 0;
}

}  // namespace

sandbox::Expected<std::unique_ptr<Interpreter>> Interpreter::start(
    sandbox::Sandbox& sandbox, const sandbox::Spec& spec, std::unique_ptr<GatewayLink> gateway) {
  std::unique_ptr<Interpreter> interpreter(new Interpreter());
  interpreter->gateway_ = std::move(gateway);
  auto live = sandbox.start(spec, *interpreter);
  if (!live) return live.error();
  interpreter->live_ = std::move(live.value());
  return interpreter;
}

void Interpreter::on_gateway_sockets(sandbox::GatewaySockets sockets) {
  if (gateway_) gateway_->attach(std::move(sockets));
}

sandbox::Expected<Interpreter::Forked> Interpreter::fork(sandbox::Sandbox& sandbox,
                                                         sandbox::ForkServer& server,
                                                         const sandbox::Spec& spec,
                                                         std::unique_ptr<GatewayLink> gateway) {
  std::unique_ptr<Interpreter> interpreter(new Interpreter());
  interpreter->gateway_ = std::move(gateway);
  auto forked = sandbox.fork(server, spec, *interpreter);
  if (!forked) return forked.error();
  interpreter->live_ = std::move(forked->live);
  return Forked{std::move(interpreter), std::move(forked->workspace)};
}

Interpreter::~Interpreter() {
  // The sandbox calls on_output until it is gone, so it goes first.
  live_.reset();
}

std::chrono::milliseconds Interpreter::cpu_used() const {
  if (!live_) return std::chrono::milliseconds(0);
  const sandbox::Usage usage = live_->usage_so_far();
  return usage.cpu_user + usage.cpu_system;
}

bool Interpreter::alive() const {
  return live_ && !live_->ended();
}

bool Interpreter::ready() const {
  std::lock_guard lock(mutex_);
  return ready_ && live_ && !live_->ended();
}

void Interpreter::kill() {
  if (live_) live_->kill();
}

void Interpreter::deliver(int stream, std::string_view data) {
  if (!capture_) return;
  if (!capture_->take(
          stream == kStdout ? sandbox::Stream::stdout_stream : sandbox::Stream::stderr_stream,
          data)) {
    overflowed_ = true;
  }
}

void Interpreter::on_ended() {
  std::lock_guard lock(mutex_);
  sandbox_ended_ = true;
  changed_.notify_all();
}

void Interpreter::on_blocked(const sandbox::SyscallEvent& event) {
  std::lock_guard lock(mutex_);
  if (!active_) return;  // between executions (a background process of an earlier one): none's
  if (blocked_.size() < sandbox::kMaxBlockedListed) {
    blocked_.push_back(event);
  } else {
    ++blocked_dropped_;
  }
}

bool Interpreter::on_output(sandbox::Stream stream, std::string_view data) {
  std::lock_guard lock(mutex_);
  if (stream == sandbox::Stream::control_stream) {
    // Before its first execution the driver reports that it is up; nothing else comes then.
    if (!active_ && !ready_ && data.find("ready\n") != std::string_view::npos) ready_ = true;
    if (active_ && control_.size() < kMaxControlBytes) {
      control_.append(data.substr(0, kMaxControlBytes - control_.size()));
      parse_control();
      if (complete()) changed_.notify_all();  // the waiter has nothing to do before
    }
    return true;
  }
  const int index = stream == sandbox::Stream::stdout_stream ? kStdout : kStderr;
  // Output between executions (a background process of an earlier one) belongs to none.
  if (!active_ || marked_[index]) return true;
  std::string& held = held_[index];
  held.append(data);
  if (size_t at = held.find(marker_); at != std::string::npos) {
    deliver(index, std::string_view(held).substr(0, at));
    held.clear();
    marked_[index] = true;
    if (complete()) changed_.notify_all();
  } else {
    size_t keep = partial_marker(held, marker_);
    deliver(index, std::string_view(held).substr(0, held.size() - keep));
    held.erase(0, held.size() - keep);
  }
  if (overflowed_) changed_.notify_all();
  return !overflowed_;
}

void Interpreter::parse_control() {
  if (record_) return;
  // "MARKER end STATUS EXIT_CODE OUT_MARKED ERR_MARKED REASON_BYTES\n" + reason.
  size_t start = control_.find(marker_ + " end ");
  if (start == std::string::npos) return;
  size_t newline = control_.find('\n', start);
  if (newline == std::string::npos) return;
  std::istringstream fields(
      control_.substr(start + marker_.size(), newline - start - marker_.size()));
  std::string end;
  Record record;
  int out_marked = 0, err_marked = 0;
  size_t reason_bytes = 0;
  if (!(fields >> end >> record.status >> record.exit_code >> out_marked >> err_marked >>
        reason_bytes)) {
    return;
  }
  if (control_.size() - newline - 1 < reason_bytes) return;  // the rest is still on its way
  record.reason = to_valid_utf8(std::string_view(control_).substr(newline + 1, reason_bytes));
  record.marked = {out_marked != 0, err_marked != 0};
  record_ = std::move(record);
}

bool Interpreter::complete() const {
  if (!record_) return false;
  for (int i : {kStdout, kStderr}) {
    if (record_->marked[i] && !marked_[i]) return false;
  }
  return true;
}

InterpreterResult Interpreter::execute(const InterpreterRequest& request) {
  InterpreterResult result;
  // From here the monitor holds the tree to this execution's limits and cancel fd: when one runs
  // out it ends the tree, and its outcome names the limit as a one-shot run's does.
  if (sandbox::Status begun =
          live_->begin_task({request.wall_time, request.cpu_time, request.cancel_fd});
      !begun) {
    // Nothing was sent: the interpreter is as it was.
    result.outcome = sandbox::setup_failure(begun.error());
    return result;
  }
  const std::string marker = new_marker();
  {
    std::lock_guard lock(mutex_);
    active_ = true;
    marker_ = marker;
    held_ = {};
    marked_ = {};
    capture_.emplace(request.kept_bytes, request.kill_on_overflow, request.stream_everything,
                     request.sink, *request.sequence);
    control_.clear();
    record_.reset();
    overflowed_ = false;
    blocked_.clear();
    blocked_dropped_ = 0;
  }
  if (request.sink && *request.sink) {
    (*request.sink)(Event{EventKind::started, ++*request.sequence, {}});
  }
  std::string frame = marker + " " + std::to_string(request.code.size()) + " " +
                      std::to_string(request.stdin_data.size()) + "\n";
  // A failed write means the driver is gone; its end (on_ended) is what the wait below sees.
  live_->write_stdin(frame + request.code + request.stdin_data);
  if (request.close_stdin_after_frame) live_->close_stdin();

  std::unique_lock lock(mutex_);
  // Every other end is the sandbox's: a limit or cancellation (the monitor's kill), an overflow
  // (on_output said stop), the driver's own end without a record (node's after an uncaught
  // exception), Interpreter::kill.
  changed_.wait(lock, [this] { return complete() || overflowed_ || sandbox_ended_; });
  const bool finished = complete() && !overflowed_;
  const std::optional<Record> record = record_;
  lock.unlock();

  // Never call into the sandbox with mutex_ held: its thread may be waiting in on_output.
  const sandbox::Usage used = live_->end_task();
  sandbox::Outcome& outcome = result.outcome;
  if (finished) {
    outcome.status =
        record->exit_code == 0 ? sandbox::RunStatus::ok : sandbox::RunStatus::nonzero_exit;
    outcome.exit_code = record->exit_code;
    outcome.reason = record->reason;
    outcome.usage = used;
  } else {
    // The monitor's classification, with the sandbox's whole-life peaks; the time is the task's.
    outcome = live_->wait();
    result.interpreter_ended = true;
    if (outcome.reason.empty()) outcome.reason = "the interpreter ended";
    outcome.usage.wall = used.wall;
    outcome.usage.cpu_user = used.cpu_user;
    outcome.usage.cpu_system = used.cpu_system;
  }

  lock.lock();
  // Bytes held back as a possible marker start were output after all.
  for (int i : {kStdout, kStderr}) {
    if (!marked_[i]) deliver(i, held_[i]);
  }
  result.stdout_output = capture_->kept(sandbox::Stream::stdout_stream);
  result.stderr_output = capture_->kept(sandbox::Stream::stderr_stream);
  capture_.reset();
  // This execution's refused calls, even when the sandbox ended with it (its outcome would list
  // those of the whole session).
  outcome.blocked = std::move(blocked_);
  outcome.blocked_dropped = blocked_dropped_;
  blocked_.clear();
  active_ = false;
  return result;
}

}  // namespace airlock::runner
