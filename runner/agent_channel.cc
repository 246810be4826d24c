#include "runner/agent_channel.h"

#include <charconv>
#include <vector>

namespace airlock::runner {

// One subscription's state, shared by its handle and the channel. Its mutex is held while an
// event or the end is delivered, and by the handle's destructor, so that once the handle is gone
// no callback runs; recursive, so that a callback may drop its own handle.
struct AgentChannel::Subscriber {
  std::recursive_mutex mutex;
  bool alive = true;
  std::function<void(std::string_view)> on_event;
  std::function<void()> on_end;

  void deliver(std::string_view event) {
    std::lock_guard lock(mutex);
    if (alive) on_event(event);
  }
  void end() {
    std::lock_guard lock(mutex);
    if (!alive) return;
    alive = false;
    if (on_end) on_end();
  }
};

class AgentChannel::Handle final : public Workspace::Subscription {
 public:
  Handle(std::weak_ptr<AgentChannel> channel, std::string key,
         std::shared_ptr<Subscriber> subscriber)
      : channel_(std::move(channel)), key_(std::move(key)), subscriber_(std::move(subscriber)) {}
  ~Handle() override {
    {
      std::lock_guard lock(subscriber_->mutex);
      subscriber_->alive = false;
    }
    if (auto channel = channel_.lock()) channel->unsubscribe(key_, subscriber_.get());
  }

 private:
  std::weak_ptr<AgentChannel> channel_;
  std::string key_;
  std::shared_ptr<Subscriber> subscriber_;
};

std::shared_ptr<AgentChannel> AgentChannel::create(AgentChannelLimits limits,
                                                   std::function<void()> on_end) {
  return std::shared_ptr<AgentChannel>(new AgentChannel(limits, std::move(on_end)));
}

AgentChannel::AgentChannel(AgentChannelLimits limits, std::function<void()> on_end)
    : limits_(limits), on_end_(std::move(on_end)) {}

std::optional<AgentChannel::Call> AgentChannel::begin_call(
    std::string_view request_json, std::function<void(AgentReply)> on_reply) {
  std::string refused;
  bool busy = false;
  {
    std::lock_guard lock(mutex_);
    if (ended_) {
      refused = end_reason_;
    } else if (pending_.size() >= limits_.max_pending) {
      busy = true;
      refused = "too many requests in flight (" + std::to_string(limits_.max_pending) +
                "); wait for some to finish";
    } else if (request_json.find_first_of("\r\n") != std::string_view::npos ||
               request_json.size() + 32 > limits_.max_line_bytes) {
      refused = "the request is not one line of at most " + std::to_string(limits_.max_line_bytes) +
                " bytes";
    } else {
      const uint64_t id = ++next_id_;
      pending_.emplace(id, std::move(on_reply));
      std::string line = std::to_string(id);
      line.reserve(line.size() + request_json.size() + 2);
      line += ' ';
      line += request_json;
      line += '\n';
      return Call{id, std::move(line)};
    }
  }
  on_reply(AgentReply{false, {}, std::move(refused), busy});
  return std::nullopt;
}

void AgentChannel::fail_call(uint64_t id, const std::string& why, bool busy) {
  std::function<void(AgentReply)> on_reply;
  {
    std::lock_guard lock(mutex_);
    auto found = pending_.find(id);
    if (found == pending_.end()) return;
    on_reply = std::move(found->second);
    pending_.erase(found);
  }
  on_reply(AgentReply{false, {}, why, busy});
}

std::unique_ptr<Workspace::Subscription> AgentChannel::subscribe(
    std::string key, std::function<void(std::string_view)> on_event, std::function<void()> on_end) {
  auto subscriber = std::make_shared<Subscriber>();
  subscriber->on_event = std::move(on_event);
  subscriber->on_end = std::move(on_end);
  bool ended = false;
  {
    std::lock_guard lock(mutex_);
    ended = ended_;
    if (!ended) subscribers_.emplace(key, subscriber);
  }
  if (ended) subscriber->end();
  return std::make_unique<Handle>(weak_from_this(), std::move(key), std::move(subscriber));
}

void AgentChannel::unsubscribe(const std::string& key, const Subscriber* subscriber) {
  std::shared_ptr<Subscriber> removed;  // freed (with its callbacks) after the lock
  std::lock_guard lock(mutex_);
  auto [first, last] = subscribers_.equal_range(key);
  for (auto it = first; it != last; ++it) {
    if (it->second.get() == subscriber) {
      removed = std::move(it->second);
      subscribers_.erase(it);
      return;
    }
  }
}

bool AgentChannel::wait_ready(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ready_changed_.wait_for(lock, timeout, [this] { return ready_ || ended_; });
  return ready_ && !ended_;
}

bool AgentChannel::ended() const {
  std::lock_guard lock(mutex_);
  return ended_;
}

std::string AgentChannel::diagnostics() const {
  std::lock_guard lock(mutex_);
  return tail_.size() > limits_.tail_bytes ? tail_.substr(tail_.size() - limits_.tail_bytes)
                                           : tail_;
}

uint64_t AgentChannel::bad_lines() const {
  std::lock_guard lock(mutex_);
  return bad_lines_;
}

void AgentChannel::end(const std::string& why) {
  std::map<uint64_t, std::function<void(AgentReply)>> pending;
  std::multimap<std::string, std::shared_ptr<Subscriber>> subscribers;
  {
    std::lock_guard lock(mutex_);
    if (ended_) return;
    ended_ = true;
    end_reason_ = why;
    pending.swap(pending_);
    subscribers.swap(subscribers_);
  }
  ready_changed_.notify_all();
  for (auto& [id, on_reply] : pending) on_reply(AgentReply{false, {}, why});
  for (auto& [key, subscriber] : subscribers) subscriber->end();
}

void AgentChannel::keep_tail(std::string_view data) {
  tail_.append(
      data.substr(data.size() > limits_.tail_bytes ? data.size() - limits_.tail_bytes : 0));
  // Trimmed in steps, not at every chunk: at most twice the tail is kept.
  if (tail_.size() > 2 * limits_.tail_bytes) tail_.erase(0, tail_.size() - limits_.tail_bytes);
}

void AgentChannel::bad_line(const std::string& why) {
  std::lock_guard lock(mutex_);
  ++bad_lines_;
  keep_tail("\n[airlock: the agent wrote " + why + "]\n");
}

bool AgentChannel::on_output(sandbox::Stream stream, std::string_view data) {
  reader_ = std::this_thread::get_id();
  if (stream != sandbox::Stream::control_stream) {
    std::lock_guard lock(mutex_);
    keep_tail(data);
    return true;
  }
  while (!data.empty()) {
    const size_t newline = data.find('\n');
    if (discarding_) {  // the rest of a line too long to keep
      if (newline == std::string_view::npos) return true;
      data.remove_prefix(newline + 1);
      discarding_ = false;
      continue;
    }
    const std::string_view piece = data.substr(0, newline);
    if (partial_.size() + piece.size() > limits_.max_line_bytes) {
      partial_.clear();
      partial_.shrink_to_fit();
      bad_line("a line longer than " + std::to_string(limits_.max_line_bytes) + " bytes");
      if (newline == std::string_view::npos) {
        discarding_ = true;
        break;
      }
      data.remove_prefix(newline + 1);
      continue;
    }
    if (newline == std::string_view::npos) {
      partial_.append(piece);
      break;
    }
    if (partial_.empty()) {
      handle_line(piece);
    } else {
      partial_.append(piece);
      const std::string line = std::move(partial_);
      partial_.clear();
      handle_line(line);
    }
    data.remove_prefix(newline + 1);
  }
  std::lock_guard lock(mutex_);
  return bad_lines_ <= limits_.max_bad_lines;
}

void AgentChannel::handle_line(std::string_view line) {
  // "R <id> <json>" or "E <key> <json>".
  const size_t space =
      line.size() > 2 && line[1] == ' ' ? line.find(' ', 2) : std::string_view::npos;
  if (space == std::string_view::npos || (line[0] != 'R' && line[0] != 'E')) {
    bad_line("a line that is neither a reply nor an event");
    return;
  }
  const std::string_view name = line.substr(2, space - 2);
  const std::string_view json = line.substr(space + 1);
  if (line[0] == 'R') {
    uint64_t id = 0;
    auto [end, error] = std::from_chars(name.data(), name.data() + name.size(), id);
    if (error != std::errc() || end != name.data() + name.size()) {
      bad_line("a reply without a request id");
      return;
    }
    std::function<void(AgentReply)> on_reply;
    {
      std::lock_guard lock(mutex_);
      auto found = pending_.find(id);
      if (found == pending_.end()) return;  // its caller gave up waiting
      on_reply = std::move(found->second);
      pending_.erase(found);
    }
    on_reply(AgentReply{true, std::string(json), {}});
    return;
  }
  std::vector<std::shared_ptr<Subscriber>> subscribers;
  {
    std::lock_guard lock(mutex_);
    if (name == "ready") {
      ready_ = true;
      ready_changed_.notify_all();
      return;
    }
    auto [first, last] = subscribers_.equal_range(std::string(name));
    for (auto it = first; it != last; ++it) subscribers.push_back(it->second);
  }
  // Delivered without the channel's lock: a callback may call or subscribe.
  for (auto& subscriber : subscribers) subscriber->deliver(json);
}

void AgentChannel::on_ended() {
  reader_ = std::this_thread::get_id();
  end("the workspace ended");
  if (gateway_) gateway_->finish();  // its network's last report (GatewayLink::on_finished)
  if (on_end_) on_end_();
}

}  // namespace airlock::runner
