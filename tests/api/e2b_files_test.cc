// envd's /files downloads (api/e2b/files.cc): a large file arrives whole and in order, read
// ahead of the client only by kDownloadReadAheadBytes, ended early by a failed read, and no
// longer read once the client has gone.
#include "api/e2b/files.h"

#include <catch2/catch.hpp>

#include "api/wire/text.h"
#include "e2b_fakes.h"

using namespace airlock;
using namespace airlock::api;
using namespace airlock::api::e2b;
using namespace airlock::api::testing;

namespace {

const std::string kPath = "/home/user/big.bin";

// Chunk i of a test file: a whole chunk of one letter, so that order shows.
std::string chunk(int i) {
  return std::string(kFileChunkBytes, static_cast<char>('a' + i));
}

std::string read_reply(const std::string& data, bool eof) {
  return R"({"ok":true,"data":")" + base64_encode(data) + R"(","eof":)" + (eof ? "true" : "false") +
         "}";
}

// A workspace whose agent reads a file of `chunks` chunks, one reply a read, in turn.
std::shared_ptr<FakeWorkspace> workspace_with_file(int chunks) {
  auto workspace = std::make_shared<FakeWorkspace>();
  for (int i = 0; i < chunks; ++i) {
    workspace->replies_in_turn["fs.read"].push_back(read_reply(chunk(i), i + 1 == chunks));
  }
  return workspace;
}

std::string file_of(int chunks) {
  std::string file;
  for (int i = 0; i < chunks; ++i) file += chunk(i);
  return file;
}

std::string read_at(uint64_t offset) {
  return R"({"op":"fs.read","path":")" + kPath + R"(","offset":)" + std::to_string(offset) +
         R"(,"length":)" + std::to_string(kFileChunkBytes) + "}";
}

// Reads made before the client takes anything: the first (for the head), then one more each
// time what the client has not taken is at most the read-ahead.
constexpr size_t kReadsAhead = 1 + kDownloadReadAheadBytes / kFileChunkBytes + 1;

}  // namespace

TEST_CASE("a small file is answered in one response") {
  auto workspace = workspace_with_file(1);
  HttpResponse response = plain(download(kPath, workspace));
  CHECK(response.status == 200);
  CHECK(response.body == chunk(0));
  CHECK(workspace->requests.size() == 1);
}

TEST_CASE("a file of many chunks arrives whole and in order") {
  constexpr int kChunks = 5;
  auto workspace = workspace_with_file(kChunks);
  StreamingResponse response = streaming(download(kPath, workspace));
  CHECK(response.head.body == chunk(0));
  auto writer = std::make_shared<FakeWriter>();
  response.start(writer);
  CHECK(writer->ended);
  CHECK(response.head.body + writer->bytes == file_of(kChunks));
  REQUIRE(workspace->requests.size() == kChunks);
  for (size_t i = 0; i < kChunks; ++i) {
    CHECK(same_json(workspace->requests[i], read_at(i * kFileChunkBytes)));
  }
}

TEST_CASE("a client that stops reading is read ahead of by a bounded amount") {
  constexpr int kChunks = 8;
  auto workspace = workspace_with_file(kChunks);
  StreamingResponse response = streaming(download(kPath, workspace));
  auto writer = std::make_shared<FakeWriter>();
  writer->hold = true;
  response.start(writer);
  CHECK(workspace->requests.size() == kReadsAhead);
  CHECK(writer->pending_bytes() <= kDownloadReadAheadBytes + kFileChunkBytes);
  CHECK(writer->waiters() == 1);
  CHECK_FALSE(writer->ended);

  writer->take();  // the client catches up: reading goes on, as far ahead again
  CHECK(workspace->requests.size() == kReadsAhead + (kReadsAhead - 1));
  CHECK(writer->waiters() == 1);
  writer->take();
  CHECK(workspace->requests.size() == kChunks);
  CHECK(writer->ended);
  CHECK(writer->waiters() == 0);
  CHECK(response.head.body + writer->bytes == file_of(kChunks));
}

TEST_CASE("a read that fails part-way ends the body early") {
  auto workspace = workspace_with_file(0);
  auto& reads = workspace->replies_in_turn["fs.read"];
  reads.push_back(read_reply(chunk(0), false));
  reads.push_back(read_reply(chunk(1), false));
  SECTION("the agent refuses") {
    reads.push_back(R"({"ok":false,"error":{"code":"io","message":"the disk went away"}})");
  }
  SECTION("the workspace ends before the agent answers") {
    workspace->replies["fs.read"] = FakeWorkspace::kNoReply;
  }
  SECTION("the agent answers something unreadable") {
    reads.push_back(R"({"ok":true,"data":"not base64!","eof":false})");
  }
  StreamingResponse response = streaming(download(kPath, workspace));
  auto writer = std::make_shared<FakeWriter>();
  response.start(writer);
  CHECK(writer->ended);
  CHECK(response.head.body + writer->bytes == chunk(0) + chunk(1));
  CHECK(workspace->requests.size() == 3);
}

TEST_CASE("a client that goes away stops the reads and lets the download go") {
  constexpr int kChunks = 8;
  auto workspace = workspace_with_file(kChunks);
  StreamingResponse response = streaming(download(kPath, workspace));
  auto writer = std::make_shared<FakeWriter>();

  SECTION("while a read is under way") {
    workspace->hold_replies = true;
    response.start(writer);
    REQUIRE(workspace->held() == 1);
    writer->leave();
    workspace->answer();  // its chunk is refused by the closed stream
    CHECK(workspace->held() == 0);
    CHECK(workspace->requests.size() == 2);
    CHECK(writer->bytes.empty());
  }
  SECTION("while it waits for the client to take what was read") {
    writer->hold = true;
    response.start(writer);
    REQUIRE(writer->waiters() == 1);
    writer->leave();
    CHECK(writer->waiters() == 0);
    CHECK(workspace->requests.size() == kReadsAhead);
  }
  CHECK_FALSE(writer->ended);
  // Nothing of the download is left holding the stream: no chain, no waiting callback.
  CHECK(writer.use_count() == 1);
}
