#include "api/mcp/tools.h"

#include <catch2/catch.hpp>

#include "api/wire/json.h"

using namespace airlock::api;

namespace {

v1::Event exit_event(std::string out, std::string err) {
  v1::Event event;
  v1::ExecutionResult* result = event.mutable_exit()->mutable_result();
  result->set_status("ok");
  result->set_summary("status: ok");
  result->set_stdout(std::move(out));
  result->set_stderr(std::move(err));
  return event;
}

std::vector<std::string> texts(const json::Value& tool_result) {
  std::vector<std::string> out;
  for (const json::Value& block : json::field(tool_result, "content")->list_value().values()) {
    if (auto text = json::string_field(block, "text")) out.push_back(*text);
  }
  return out;
}

}  // namespace

TEST_CASE("an MCP result holds about 16 KiB of output, head and tail") {
  std::string out;
  for (int i = 0; i < 100000; ++i) out += "line " + std::to_string(i) + "\n";  // ~1 MB
  auto blocks = texts(run_tool_result(exit_event(out, "")));
  REQUIRE(blocks.size() == 2);
  CHECK(blocks[1].size() < 17 * 1024);
  CHECK(blocks[1].starts_with("stdout:\nline 0\nline 1\n"));
  CHECK(blocks[1].ends_with("line 99999\n"));
  CHECK(blocks[1].find("bytes dropped: this result holds 16 KiB of output (run_code's "
                       "max_output)") != std::string::npos);

  auto larger = texts(run_tool_result(exit_event(out, ""), 64 * 1024));
  CHECK(larger[1].size() > 60 * 1024);
  CHECK(larger[1].size() < 65 * 1024);
}

TEST_CASE("stdout and stderr share the budget; short output is whole") {
  auto blocks = texts(run_tool_result(exit_event("hello\n", std::string(40000, 'e'))));
  REQUIRE(blocks.size() == 3);
  CHECK(blocks[1] == "stdout:\nhello\n");
  CHECK(blocks[2].size() < 17 * 1024);
  CHECK(blocks[2].size() > 15 * 1024);
}

TEST_CASE("a file too large to return is a one-line note") {
  v1::Event event = exit_event("", "");
  v1::OutputFile* file = event.mutable_exit()->mutable_result()->add_files();
  file->set_path("data.bin");
  file->set_encoding("base64");
  file->set_content(std::string(100000, 'A'));
  file->set_size_bytes(3 * 1024 * 1024);
  file->set_truncated(true);
  file->set_media_type("application/octet-stream");
  auto blocks = texts(run_tool_result(event));
  REQUIRE(blocks.size() == 2);
  CHECK(blocks[1] ==
        "file data.bin (3 MiB, application/octet-stream) is too large to return here; read the "
        "part you need with code (e.g. its first lines, or a summary of it)");
}
