// How the real transport (api/transport/connection.cc) reads requests from clients that send
// less, or more, than they announce: the body budget, refusals before a body is read, limits on
// what Beast does not bound, and eviction at the connection limit. Clients are raw sockets on
// loopback; the Api answers every request with the size of the body it got.
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <catch2/catch.hpp>

#include <condition_variable>
#include <future>
#include <memory>
#include <sstream>
#include <thread>

#include "api/handler.h"
#include "api/transport/connection.h"
#include "api_parts.h"

using namespace airlock;
using namespace airlock::api;
using namespace airlock::api::testing;
using namespace std::chrono_literals;
namespace net = boost::asio;

namespace {

// How long anything the test waits for may take before the test fails (never how fast it is).
constexpr auto kPatience = 10s;
constexpr uint64_t kMaxBody = 1024 * 1024;

const std::string kEchoHead =
    "POST /v1/echo HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer test-key\r\n"
    "Content-Type: application/json\r\n";

// Answers every request with the size of its body; GET /v1/slow stands for sandbox traffic whose
// agent does not answer: it waits until released.
class EchoApi final : public Api {
 public:
  using Api::Api;
  Dispatch handle(const HttpRequest& request) const override {
    if (request.path() == "/v1/slow") {
      std::unique_lock lock(mutex_);
      ++slow_inside_;
      changed_.notify_all();
      changed_.wait_for(lock, 3 * kPatience,
                        [this] { return released_; });  // past a client's patience
      return HttpResponse{200, "text/plain", {}, "slow"};
    }
    return HttpResponse{200, "text/plain", {}, std::to_string(request.body.size())};
  }
  bool waits_on_sandbox(const HttpRequest& head) const override {
    return head.path() == "/v1/slow";
  }

  // Waits at most kPatience until `count` slow requests are being handled.
  bool slow_inside(int count) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, kPatience, [&] { return slow_inside_ >= count; });
  }
  void release() const {
    std::lock_guard lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }

 private:
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  mutable int slow_inside_ = 0;
  mutable bool released_ = false;
};

// A raw client socket that reads whole responses (their bodies have a Content-Length).
class Client {
 public:
  explicit Client(int fd) : fd_(fd) {
    timeval patience{std::chrono::seconds(kPatience).count(), 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
  }
  ~Client() { ::close(fd_); }

  // Sends all of `bytes`; false when the server no longer takes them.
  bool send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (sent <= 0) return false;
      bytes.remove_prefix(static_cast<size_t>(sent));
    }
    return true;
  }

  // The next response, head and body; empty when the connection ends or kPatience passes first.
  std::string response() {
    size_t head_end;
    while ((head_end = received_.find("\r\n\r\n")) == std::string::npos) {
      if (!read_more()) return "";
    }
    size_t length = 0;
    if (size_t at = received_.find("Content-Length: "); at != std::string::npos && at < head_end) {
      length = std::stoul(received_.substr(at + 16));
    }
    while (received_.size() < head_end + 4 + length) {
      if (!read_more()) return "";
    }
    std::string out = received_.substr(0, head_end + 4 + length);
    received_.erase(0, out.size());
    return out;
  }

  // True when the server closed the connection (before kPatience passed).
  bool closed() {
    while (read_more()) {
    }
    return errno_ == 0;
  }

 private:
  bool read_more() {
    char buffer[64 * 1024];
    const ssize_t got = ::recv(fd_, buffer, sizeof buffer, 0);
    errno_ = got < 0 ? errno : 0;
    if (got <= 0) return false;
    received_.append(buffer, static_cast<size_t>(got));
    return true;
  }

  int fd_;
  int errno_ = 0;
  std::string received_;
};

// The real transport on its own I/O thread, with a small body limit and body budget; `timeout`
// is its header and idle timeout.
class Harness : public ApiParts {
 public:
  explicit Harness(uint64_t body_budget, std::chrono::milliseconds timeout = 10s) : api(context()) {
    ServerOptions options;
    options.max_body_bytes = kMaxBody;
    options.body_budget_bytes = body_budget;
    options.header_timeout = timeout;
    options.idle_timeout = timeout;
    shared = std::make_shared<ConnectionShared>(api, service, metrics, log, options,
                                                blocking.get_executor(), sandbox.get_executor());
    io_thread = std::thread([this] { io.run(); });
  }

  ~Harness() {
    clients.clear();
    work.reset();
    io.stop();
    io_thread.join();
    api.release();
    blocking.join();
    sandbox.join();
  }

  Client& connect() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    auto& client = *clients.emplace_back(std::make_unique<Client>(fd));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(acceptor.local_endpoint().port());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    net::ip::tcp::socket accepted(io);
    acceptor.accept(accepted);
    start_connection(std::move(accepted), shared);
    settle();
    return client;
  }

  // Waits until what the I/O thread was given so far has run (it runs handlers in order): a
  // connection just started is then waiting for its request.
  void settle() {
    std::promise<void> done;
    net::post(io, [&done] { done.set_value(); });
    REQUIRE(done.get_future().wait_for(kPatience) == std::future_status::ready);
  }

  // Waits at most kPatience for the body budget to hold `bytes`.
  bool budget_holds(uint64_t bytes) const {
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (shared->body_budget.used() != bytes) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  EchoApi api;
  std::shared_ptr<ConnectionShared> shared;
  // Last, so that they end first: handlers and connections before what they refer to.
  net::thread_pool blocking{2};
  net::thread_pool sandbox{2};  // the sandbox traffic's threads
  net::io_context io;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work{
      net::make_work_guard(io)};
  net::ip::tcp::acceptor acceptor{io, {net::ip::make_address("127.0.0.1"), 0}};
  std::thread io_thread;
  std::vector<std::unique_ptr<Client>> clients;
};

std::string length_header(uint64_t bytes) {
  return "Content-Length: " + std::to_string(bytes) + "\r\n";
}

}  // namespace

TEST_CASE("clients that announce large bodies and send none hold none of the body budget") {
  // A budget of two bodies: when the announced size was taken at the header, two silent
  // claimers locked every other client's body out until their idle timeout.
  Harness harness(2 * kMaxBody);
  for (int i = 0; i < 4; ++i) {
    Client& claimer = harness.connect();
    REQUIRE(claimer.send(kEchoHead + length_header(kMaxBody) + "Expect: 100-continue\r\n\r\n"));
    // The interim answer comes once the header was admitted: the body would be read now.
    CHECK(claimer.response().starts_with("HTTP/1.1 100 Continue"));
  }
  CHECK(harness.shared->body_budget.used() == 0);
  Client& client = harness.connect();
  REQUIRE(client.send(kEchoHead + length_header(2) + "\r\n{}"));
  const std::string answer = client.response();
  CHECK(answer.starts_with("HTTP/1.1 200"));
  CHECK(answer.ends_with("\r\n\r\n2"));
}

TEST_CASE("bodies being sent hold the budget as they arrive, and past it the next gets 503") {
  Harness harness(2 * kMaxBody);
  for (int i = 0; i < 2; ++i) {
    Client& sender = harness.connect();
    REQUIRE(sender.send(kEchoHead + length_header(kMaxBody) + "\r\n"));
    REQUIRE(sender.send(std::string(kMaxBody / 2 + 1, ' ')));  // the rest never comes
  }
  // More than half of a body holds all of it: the string grows by doubling, up to its length.
  REQUIRE(harness.budget_holds(2 * kMaxBody));
  Client& client = harness.connect();
  REQUIRE(client.send(kEchoHead + length_header(100) + "\r\n" + std::string(100, ' ')));
  const std::string answer = client.response();
  INFO(answer);
  CHECK(answer.starts_with("HTTP/1.1 503"));
  CHECK(answer.find("Retry-After: 1") != std::string::npos);
  CHECK(answer.find("as many request bodies as it may") != std::string::npos);
  harness.clients.clear();
  CHECK(harness.budget_holds(0));
}

TEST_CASE("a request no handler takes is refused before its body is sent") {
  Harness harness(2 * kMaxBody);
  const std::string kJson = "Content-Type: application/json\r\n";
  struct Case {
    std::string head;
    std::string status;
  };
  for (const Case& refused :
       {Case{"POST /nowhere HTTP/1.1\r\nHost: localhost\r\n" + kJson + length_header(1000), "404"},
        Case{"POST /version HTTP/1.1\r\nHost: localhost\r\n" + kJson + length_header(1000), "405"},
        Case{"GET /version HTTP/1.1\r\nHost: localhost\r\n" + length_header(1000), "413"},
        Case{"PUT /e2b/sandbox/files HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n",
             "501"}}) {
    INFO(refused.head);
    Client& client = harness.connect();
    REQUIRE(client.send(refused.head + "\r\n"));
    CHECK(client.response().starts_with("HTTP/1.1 " + refused.status));
  }
  // Without a body, the refusal leaves the connection open for the next request.
  Client& client = harness.connect();
  REQUIRE(client.send("GET /nowhere HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  CHECK(client.response().starts_with("HTTP/1.1 404"));
  REQUIRE(client.send("GET /nowhere/else HTTP/1.1\r\nHost: localhost\r\n\r\n"));
  CHECK(client.response().find("no such path: /nowhere/else") != std::string::npos);
}

TEST_CASE("a chunk extension or trailer without end is refused, not held") {
  Harness harness(2 * kMaxBody);
  const std::string endless(4 * 1024 * 1024, 'x');
  for (const std::string& body : {"5;" + endless, "0\r\nX-Trailer: " + endless}) {
    Client& client = harness.connect();
    REQUIRE(client.send(kEchoHead + "Transfer-Encoding: chunked\r\n\r\n"));
    // The server stops taking bytes once it has answered (it drains a while, then closes).
    std::thread sender([&client, &body] { client.send(body); });
    const std::string answer = client.response();
    sender.join();
    CHECK(answer.starts_with("HTTP/1.1 400"));
    CHECK(answer.find("\"chunk_too_large\"") != std::string::npos);
    CHECK(answer.find("or the trailer is longer than 81920 bytes") != std::string::npos);
  }
}

TEST_CASE("at the connection limit an idle connection goes first; one sending a body hears 503") {
  Harness harness(2 * kMaxBody);
  Client& sending = harness.connect();
  REQUIRE(sending.send(kEchoHead + length_header(100) + "Expect: 100-continue\r\n\r\n"));
  REQUIRE(sending.response().starts_with("HTTP/1.1 100 Continue"));
  REQUIRE(sending.send(std::string(10, ' ')));
  harness.settle();
  Client& idle = harness.connect();
  REQUIRE(harness.shared->evict_oldest_waiting());
  // The idle one is closed although it is younger; the one sending its body goes on.
  CHECK(idle.closed());
  REQUIRE(sending.send(std::string(90, ' ')));
  CHECK(sending.response().ends_with("\r\n\r\n100"));
  harness.settle();  // `sending` waits for its next request

  Client& another = harness.connect();
  REQUIRE(another.send(kEchoHead + length_header(100) + "Expect: 100-continue\r\n\r\n"));
  REQUIRE(another.response().starts_with("HTTP/1.1 100 Continue"));
  REQUIRE(another.send(std::string(10, ' ')));
  harness.settle();                                 // `another` reads its body
  REQUIRE(harness.shared->evict_oldest_waiting());  // `sending`, between requests, goes first
  CHECK(sending.closed());
  REQUIRE(harness.shared->evict_oldest_waiting());
  const std::string answer = another.response();
  CHECK(answer.starts_with("HTTP/1.1 503"));
  CHECK(answer.find("Retry-After: 1") != std::string::npos);
  CHECK(answer.find("connection limit") != std::string::npos);
}

TEST_CASE("a header or a body that does not arrive in time is answered 408, then closed") {
  Harness harness(2 * kMaxBody, 200ms);
  Client& slow_header = harness.connect();
  REQUIRE(slow_header.send("POST /v1/echo HTTP/1.1\r\nHost: localhost\r\n"));
  std::string answer = slow_header.response();
  CHECK(answer.starts_with("HTTP/1.1 408"));
  CHECK(answer.find("header did not arrive within header_timeout (200 ms)") != std::string::npos);
  CHECK(slow_header.closed());

  Client& slow_body = harness.connect();
  REQUIRE(slow_body.send(kEchoHead + length_header(100) + "\r\n" + std::string(10, ' ')));
  answer = slow_body.response();
  CHECK(answer.starts_with("HTTP/1.1 408"));
  CHECK(answer.find("body did not arrive within idle_timeout (200 ms)") != std::string::npos);
  CHECK(slow_body.closed());

  // Between requests nothing was asked: an idle connection is closed without an answer.
  Client& idle = harness.connect();
  CHECK(idle.response().empty());
  CHECK(idle.closed());
}

TEST_CASE("requests that wait on sandboxes take none of the threads that answer the others") {
  Harness harness(kMaxBody);
  // Both sandbox-traffic threads wait on agents that do not answer, and one more request queues.
  std::vector<Client*> waiting;
  for (int i = 0; i < 3; ++i) {
    Client& client = harness.connect();
    REQUIRE(
        client.send("GET /v1/slow HTTP/1.1\r\nHost: localhost\r\n"
                    "Authorization: Bearer test-key\r\n\r\n"));
    waiting.push_back(&client);
  }
  REQUIRE(harness.api.slow_inside(2));
  // Every other request is still answered, more of them than there are threads (with one pool
  // for both, each would wait for the agents).
  for (int i = 0; i < 4; ++i) {
    Client& client = harness.connect();
    REQUIRE(client.send(kEchoHead + length_header(2) + "\r\n{}"));
    CHECK(client.response().starts_with("HTTP/1.1 200 OK"));
  }
  harness.api.release();
  for (Client* client : waiting) CHECK(client->response().ends_with("slow"));
}
