#include "runner/egress/connection.h"

#include "runner/egress/http_head.h"
#include "runner/egress/rules.h"

namespace airlock::egress {

Connection::Connection(std::shared_ptr<AttachmentState> owner, tcp::socket client)
    : owner_(std::move(owner)),
      config_(owner_->config()),
      client_(std::move(client)),
      upstream_(owner_->io()),
      timer_(owner_->io()) {}

Connection::~Connection() {
  owner_->forget(this);
}

void Connection::start() {
  ErrorCode ec;
  const tcp::endpoint local = client_.local_endpoint(ec);
  if (ec) {
    close();
    return;
  }
  head_deadline_ = Clock::now() + kHeadTimeout;
  const std::string text = local.address().to_string();
  const auto is_gateway = [](const net::ip::address& address) {
    if (!address.is_v4()) return false;
    const auto bytes = address.to_v4().to_bytes();
    return Ipv4{bytes[0], bytes[1], bytes[2], bytes[3]} == kGatewayAddress;
  };
  if (is_gateway(local.address())) {  // the explicit proxy: CONNECT or an absolute-form request
    phase_ = Phase::proxy_request;
    http_ = true;
    host_ = text;
    port_ = local.port();
    arm(kHeadTimeout, [this] { close(); });
    read_client();
    return;
  }
  if (set_destination(text, local.port())) start_sniffing();
}

void Connection::read_client() {
  if (read_pending_) return;
  read_pending_ = true;
  client_.async_read_some(
      net::buffer(up_buffer_), [self = shared_from_this()](ErrorCode ec, size_t n) {
        self->read_pending_ = false;
        if (self->closed_ || self->phase_ == Phase::closing) return;
        self->head_.append(self->up_buffer_.data(), n);
        switch (self->phase_) {
          case Phase::connecting:  // the first-bytes wait ended, and this read with it
            if (ec == net::error::eof) {
              self->client_done_ = true;
            } else if (ec && ec != net::error::operation_aborted) {
              self->close();
              return;
            }
            if (self->connected_) self->after_connect();
            return;
          case Phase::late_sniffing:
            if (ec == net::error::eof && (self->head_.empty() || self->upstream_spoke_)) {
              self->client_done_ = true;
              self->start_copying();
            } else if (ec) {
              self->close();
            } else if (self->upstream_spoke_) {
              self->start_copying();  // a server-first protocol: the client answers, unchecked
            } else {
              self->on_sniffed();
            }
            return;
          case Phase::proxy_request:
          case Phase::sniffing:
            if (ec) {  // the client went away (or only half-closed) before it said enough
              self->close();
            } else if (self->phase_ == Phase::proxy_request) {
              self->on_proxy_request();
            } else {
              self->on_sniffed();
            }
            return;
          case Phase::copying:
          case Phase::closing:
            return;
        }
      });
}

void Connection::after_connect() {
  if (!sniff_after_connect_) {
    start_copying();
    return;
  }
  phase_ = Phase::late_sniffing;
  head_deadline_ = Clock::now() + kHeadTimeout;
  start_downstream();  // the server may speak first
  last_activity_ = Clock::now();
  watch_idle();
  if (!head_.empty()) {
    on_sniffed();
  } else if (client_done_) {
    start_copying();
  } else {
    read_client();
  }
}

void Connection::start_downstream() {
  if (downstream_started_) return;
  downstream_started_ = true;
  copy(upstream_, client_, down_buffer_, false);
}

void Connection::start_copying() {
  phase_ = Phase::copying;
  last_activity_ = Clock::now();
  watch_idle();
  start_downstream();
  const auto after_head = [self = shared_from_this()] {
    if (self->client_done_) {
      ErrorCode ignored;
      self->upstream_.shutdown(tcp::socket::shutdown_send, ignored);
    } else {
      self->copy(self->client_, self->upstream_, self->up_buffer_, true);
    }
  };
  if (head_.empty()) {
    after_head();
    return;
  }
  if (!owner_->transfer(head_.size(), true, destination())) return;
  net::async_write(upstream_, net::buffer(head_),
                   [self = shared_from_this(), after_head](ErrorCode ec, size_t) {
                     if (self->closed_) return;
                     if (ec) {
                       self->close();
                       return;
                     }
                     self->head_ = std::string();  // the secrets in it are not kept around
                     after_head();
                   });
}

void Connection::copy(tcp::socket& from, tcp::socket& to,
                      std::array<char, kCopyBufferBytes>& buffer, bool to_upstream) {
  from.async_read_some(net::buffer(buffer), [self = shared_from_this(), &from, &to, &buffer,
                                             to_upstream](ErrorCode ec, size_t n) {
    // Closing: the gateway's own response is being written; this copy has no say any more.
    if (self->closed_ || self->phase_ == Phase::closing) return;
    if (ec == net::error::eof) {  // a half-close travels on
      ErrorCode ignored;
      to.shutdown(tcp::socket::shutdown_send, ignored);
      (to_upstream ? self->client_done_ : self->upstream_done_) = true;
      if (self->client_done_ && self->upstream_done_) {
        self->close();
      } else if (self->client_ignored_ && self->upstream_done_) {
        self->linger_then_close();
      }
      return;
    }
    if (ec) {
      self->close();
      return;
    }
    self->last_activity_ = Clock::now();
    if (to_upstream && self->request_body_left_) {  // past the request's body: dropped
      const size_t forwarded =
          static_cast<size_t>(std::min<uint64_t>(n, *self->request_body_left_));
      *self->request_body_left_ -= forwarded;
      self->dropped_after_body_ += n - forwarded;
      if (forwarded == 0) {
        // Enough is read to see a client's half-close after a pipelined request. Past that the
        // client is not read any more: a sandbox that streams after its request must keep
        // neither the gateway's thread busy nor, once the upstream is done, the connection.
        if (self->dropped_after_body_ > kMaxDroppedAfterBody) {
          self->client_ignored_ = true;
          if (self->upstream_done_) self->linger_then_close();
          return;
        }
        self->copy(from, to, buffer, to_upstream);
        return;
      }
      n = forwarded;
    }
    if (!self->owner_->transfer(n, to_upstream, self->destination())) return;
    if (!to_upstream) self->upstream_spoke_ = true;
    net::async_write(to, net::buffer(buffer.data(), n),
                     [self, &from, &to, &buffer, to_upstream](ErrorCode write_ec, size_t) {
                       if (self->closed_ || self->phase_ == Phase::closing) return;
                       if (write_ec) {
                         self->close();
                         return;
                       }
                       self->last_activity_ = Clock::now();
                       self->copy(from, to, buffer, to_upstream);
                     });
  });
}

void Connection::watch_idle() {
  arm(last_activity_ + config_->idle_timeout - Clock::now(), [this] {
    if (Clock::now() - last_activity_ >= config_->idle_timeout) {
      close();
    } else {
      watch_idle();
    }
  });
}

void Connection::refuse(const std::string& reason, int status) {
  owner_->refuse(destination(), reason);
  if (!http_) {
    close();
    return;
  }
  respond_and_close(
      gateway_response(status, http_status_phrase(status),
                       "airlock egress: " + destination() + " is blocked: " + reason));
}

void Connection::fail(const std::string& text) {
  if (!http_) {
    close();
    return;
  }
  respond_and_close(gateway_response(502, http_status_phrase(502), "airlock egress: " + text));
}

void Connection::respond_and_close(std::string response) {
  phase_ = Phase::closing;
  ErrorCode ignored;
  upstream_.close(ignored);
  head_ = std::string();
  response_ = std::move(response);
  arm(kLingerAfterResponse, [this] { close(); });
  net::async_write(client_, net::buffer(response_),
                   [self = shared_from_this()](ErrorCode ec, size_t) {
                     if (self->closed_) return;
                     if (ec) {
                       self->close();
                       return;
                     }
                     ErrorCode ignored_shutdown;
                     self->client_.shutdown(tcp::socket::shutdown_send, ignored_shutdown);
                     self->drain();
                   });
}

void Connection::linger_then_close() {
  phase_ = Phase::closing;
  arm(kLingerAfterResponse, [this] { close(); });
  drain();
}

// Reads and drops what the client still sends until it closes (or the linger timer ends it):
// closing with unread bytes would reset the connection and could destroy the response.
void Connection::drain() {
  if (read_pending_) return;
  read_pending_ = true;
  client_.async_read_some(net::buffer(up_buffer_),
                          [self = shared_from_this()](ErrorCode ec, size_t) {
                            self->read_pending_ = false;
                            if (self->closed_) return;
                            if (ec) {
                              self->close();
                            } else {
                              self->drain();
                            }
                          });
}

void Connection::arm(Clock::duration after, std::function<void()> on_expiry) {
  const uint64_t generation = ++timer_generation_;
  timer_.expires_after(after);
  timer_.async_wait(
      [self = shared_from_this(), generation, on_expiry = std::move(on_expiry)](ErrorCode ec) {
        if (ec || self->closed_ || generation != self->timer_generation_) return;
        on_expiry();
      });
}

std::string Connection::destination() const {
  return destination_text(host_, port_);
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  ErrorCode ignored;
  client_.close(ignored);
  upstream_.close(ignored);
  timer_.cancel();
  owner_->forget(this);
}

}  // namespace airlock::egress
