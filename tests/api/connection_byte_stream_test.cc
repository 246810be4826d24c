// A StreamingResponse through the real transport (api/transport/connection_byte_stream.cc): a
// connection on loopback, a client that reads when the test says, and a producer the test drives
// through the writer the transport hands it.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
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
// Socket buffers kept small, so that what the client does not read stays pending in the writer.
constexpr int kSmallSocketBuffer = 16 * 1024;

// An Api that answers every request with the stream the test made.
class StreamingApi final : public Api {
 public:
  using Api::Api;
  Dispatch handle(const HttpRequest&) const override { return stream; }
  StreamingResponse stream;
};

// One connection of the real transport, served on its own I/O thread, with a raw client socket.
class Harness : public ApiParts {
 public:
  explicit Harness(StreamingResponse stream) : api(context()) {
    api.stream = std::move(stream);
    ServerOptions options;
    options.header_timeout = 10s;
    options.idle_timeout = 10s;
    shared = std::make_shared<ConnectionShared>(api, service, metrics, log, options,
                                                blocking.get_executor(), blocking.get_executor());
    net::ip::tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
    client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(client >= 0);
    ::setsockopt(client, SOL_SOCKET, SO_RCVBUF, &kSmallSocketBuffer, sizeof kSmallSocketBuffer);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(acceptor.local_endpoint().port());
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    net::ip::tcp::socket accepted(io);
    acceptor.accept(accepted);
    accepted.set_option(net::socket_base::send_buffer_size(kSmallSocketBuffer));
    start_connection(std::move(accepted), shared);
    io_thread = std::thread([this] { io.run(); });
  }

  ~Harness() {
    if (client >= 0) ::close(client);
    work.reset();
    io.stop();
    io_thread.join();
    blocking.join();
  }

  void send(const std::string& bytes) {
    REQUIRE(::send(client, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(bytes.size()));
  }

  void request() {
    send("GET /v1/stream HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer test-key\r\n\r\n");
  }

  // Reads what has arrived, waiting at most `wait` for the first of it; false at the end.
  bool read_some(std::chrono::milliseconds wait) {
    pollfd ready{client, POLLIN, 0};
    if (::poll(&ready, 1, static_cast<int>(wait.count())) <= 0) return true;
    char buffer[64 * 1024];
    const ssize_t got = ::recv(client, buffer, sizeof buffer, 0);
    if (got <= 0) return false;
    received.append(buffer, static_cast<size_t>(got));
    return true;
  }

  // Reads until `done` holds, or kPatience has passed; false then.
  bool read_until(const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + kPatience;
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline || !read_some(50ms)) return done();
    }
    return true;
  }

  bool read_head() {
    return read_until([&] { return received.find("\r\n\r\n") != std::string::npos; });
  }

  // The head and the decoded body of what arrived; true once the body's last chunk is in.
  bool response(std::string& head, std::string& body) const {
    const size_t head_end = received.find("\r\n\r\n");
    if (head_end == std::string::npos) return false;
    head = received.substr(0, head_end);
    body.clear();
    for (size_t at = head_end + 4;;) {
      const size_t line_end = received.find("\r\n", at);
      if (line_end == std::string::npos) return false;
      const size_t size = std::stoul(received.substr(at, line_end - at), nullptr, 16);
      if (size == 0) return true;
      if (received.size() < line_end + 2 + size + 2) return false;
      body += received.substr(line_end + 2, size);
      at = line_end + 2 + size + 2;
    }
  }

  // Everything of the body that has arrived so far.
  std::string body_so_far() const {
    std::string head, body;
    response(head, body);
    return body;
  }

  StreamingApi api;
  std::shared_ptr<ConnectionShared> shared;
  // Last, so that they end first: handlers and connections before what they refer to.
  net::thread_pool blocking{2};
  net::io_context io;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work{
      net::make_work_guard(io)};
  std::thread io_thread;
  int client = -1;
  std::string received;
};

// A stream whose writer the test takes (from the worker thread the transport starts it on).
struct Producer {
  std::promise<std::shared_ptr<ByteStreamWriter>> started;
  std::promise<void> gone;

  StreamingResponse stream(std::string head_body = {}) {
    StreamingResponse response;
    response.head = HttpResponse{200, "application/octet-stream", {}, std::move(head_body)};
    response.start = [this](std::shared_ptr<ByteStreamWriter> writer) {
      started.set_value(std::move(writer));
    };
    response.on_client_gone = [this] { gone.set_value(); };
    return response;
  }

  std::shared_ptr<ByteStreamWriter> writer() {
    auto future = started.get_future();
    REQUIRE(future.wait_for(kPatience) == std::future_status::ready);
    return future.get();
  }
};

// Writes `total` bytes in pieces, as a file download would; all of them must be taken.
void write_pieces(ByteStreamWriter& writer, size_t total, std::string& written) {
  constexpr size_t kPiece = 64 * 1024;
  for (size_t at = 0; at < total; at += kPiece) {
    std::string piece(kPiece, static_cast<char>('a' + (at / kPiece) % 26));
    written += piece;
    REQUIRE(writer.write(std::move(piece)));
  }
}

// Waits at most kPatience for `count` to reach `expected`.
bool eventually(const std::atomic<int>& count, int expected) {
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (count.load() != expected) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

}  // namespace

TEST_CASE("a stream's bytes reach the client in order, and end() ends the body") {
  Producer producer;
  Harness harness(producer.stream("head;"));
  harness.request();
  auto writer = producer.writer();
  std::string expected = "head;";
  for (int i = 0; i < 100; ++i) {
    const std::string piece = "piece-" + std::to_string(i) + ";";
    expected += piece;
    REQUIRE(writer->write(piece));
  }
  writer->end();
  CHECK_FALSE(writer->write("late"));
  std::string head, body;
  REQUIRE(harness.read_until([&] { return harness.response(head, body); }));
  CHECK(head.starts_with("HTTP/1.1 200"));
  CHECK(head.find("Transfer-Encoding: chunked") != std::string::npos);
  CHECK(body == expected);
  CHECK(writer->closed());
}

TEST_CASE("a producer waiting for a slow reader is called when it has drained") {
  Producer producer;
  Harness harness(producer.stream());
  harness.request();
  REQUIRE(harness.read_head());
  auto writer = producer.writer();
  std::string written;
  write_pieces(*writer, 3 * 1024 * 1024, written);  // under the cut, over what sockets hold

  std::atomic<int> calls{0};
  std::atomic<size_t> pending_when_called{0};
  constexpr size_t kLow = 64 * 1024;
  writer->when_pending_at_most(kLow, [&] {
    pending_when_called = writer->pending_bytes();
    ++calls;
  });
  // The client reads nothing: what the sockets cannot hold stays pending, and nobody is called.
  std::this_thread::sleep_for(200ms);
  CHECK(calls == 0);
  CHECK(writer->pending_bytes() > kLow);

  REQUIRE(harness.read_until([&] { return calls > 0; }));
  CHECK(calls == 1);
  CHECK(pending_when_called <= kLow);
  // Already low: called at once, on this thread.
  bool at_once = false;
  writer->when_pending_at_most(kLow, [&] { at_once = true; });
  CHECK(at_once);

  writer->end();
  std::string head, body;
  REQUIRE(harness.read_until([&] { return harness.response(head, body); }));
  CHECK(body == written);
  CHECK(calls == 1);
}

TEST_CASE("a client that goes away calls on_client_gone and the producers waiting") {
  Producer producer;
  Harness harness(producer.stream());
  harness.request();
  REQUIRE(harness.read_head());
  auto writer = producer.writer();
  std::string written;
  write_pieces(*writer, 3 * 1024 * 1024, written);

  std::atomic<int> calls{0};
  auto held = std::make_shared<int>(0);  // shows whether the writer still keeps the callback
  writer->when_pending_at_most(0, [&calls, held] { ++calls; });
  REQUIRE(held.use_count() == 2);
  ::close(harness.client);
  harness.client = -1;

  auto gone = producer.gone.get_future();
  REQUIRE(gone.wait_for(kPatience) == std::future_status::ready);
  REQUIRE(eventually(calls, 1));
  CHECK(writer->closed());
  CHECK_FALSE(writer->write("more"));
  // Closed: a later wait is answered at once and kept by nobody.
  bool at_once = false;
  writer->when_pending_at_most(0, [&] { at_once = true; });
  CHECK(at_once);
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (held.use_count() > 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  CHECK(held.use_count() == 1);
  CHECK(calls == 1);
}
