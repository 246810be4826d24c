// TEMPORARY STUB, DELETE ON INTEGRATION: the real handle_envd is written on branch e2b-envd
// (api/e2b/envd.cc and friends). This lets branch e2b-plane build and route envd calls before it
// lands; remove this file and its line in api/CMakeLists.txt when merging e2b-envd.
#include "api/e2b/envd.h"

namespace airlock::api::e2b {

Dispatch handle_envd(const HttpRequest&, std::shared_ptr<runner::Workspace>) {
  return HttpResponse{501, "application/json", {},
                      R"({"code":"unimplemented","message":"envd is not built into this airlock"})"};
}

}  // namespace airlock::api::e2b
