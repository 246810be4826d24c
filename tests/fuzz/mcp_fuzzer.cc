// Fuzzes the MCP endpoint's JSON-RPC handling: the body of a POST /mcp, with the headers an MCP
// client sends, admitted as the Api admits it and then handed to handle_mcp directly (so that an
// exception is a finding rather than a 500). Every answer must itself be JSON a client parses.
#include <cstdint>
#include <cstdlib>
#include <iostream>

#include "api/transport/admission.h"
#include "api/wire/json.h"
#include "api/mcp/endpoint.h"
#include "fuzz_api.h"

namespace {

airlock::fuzz::FuzzApi& fuzz_api() {
  static auto* instance = new airlock::fuzz::FuzzApi(/*with_key=*/false);
  return *instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& fuzz = fuzz_api();
  airlock::api::HttpRequest request;
  request.method = "POST";
  request.target = "/mcp";
  request.headers = {{"Content-Type", "application/json"},
                     {"Accept", "application/json, text/event-stream"},
                     {"MCP-Protocol-Version", "2025-06-18"}};
  request.body.assign(reinterpret_cast<const char*>(data), size);
  request.peer = "127.0.0.1:1";

  airlock::api::ApiContext context{fuzz.config,  fuzz.executor, fuzz.policies, fuzz.service,
                                   fuzz.auth,    fuzz.metrics,  nullptr};
  auto admitted = airlock::api::admit(fuzz.config, fuzz.auth, request);
  auto* identity = std::get_if<airlock::api::Identity>(&admitted);
  if (identity == nullptr) std::abort();  // the harness's own headers are always admitted
  airlock::api::Dispatch dispatch = airlock::api::handle_mcp(context, request, *identity);
  if (auto* response = std::get_if<airlock::api::HttpResponse>(&dispatch)) {
    if (!response->body.empty()) {
      std::string problem;
      if (!airlock::api::json::parse(response->body, problem)) {
        std::cerr << "an MCP answer is not JSON (" << problem << "):\n" << response->body << "\n";
        std::abort();
      }
    }
  }
  return 0;
}
