// airlock: run model-written code in a sandbox. One binary; the subcommand picks the job.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "cli/commands.h"

namespace {

constexpr const char* kUsage =
    "usage: airlock <command> [options]\n"
    "\n"
    "commands:\n"
    "  run      run a program or a snippet in a sandbox      (airlock run --help)\n"
    "  serve    serve the execution API over HTTP             (airlock serve --help)\n"
    "  policy   check, show and compare policies              (airlock policy --help)\n"
    "  audit    find a run, blocked calls, refused requests   (airlock audit --help)\n"
    "  version  print the version\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string_view command = argv[1];
  if (command == "run") return airlock::cli::run_command(argc - 1, argv + 1);
  if (command == "serve") return airlock::cli::serve_command(argc - 1, argv + 1);
  if (command == "policy") return airlock::cli::policy_command(argc - 1, argv + 1);
  if (command == "audit") return airlock::cli::audit_command(argc - 1, argv + 1);
  if (command == "version" || command == "--version") {
    if (argc > 2 && (std::strcmp(argv[2], "--help") == 0 || std::strcmp(argv[2], "-h") == 0)) {
      std::puts("usage: airlock version\n\nPrints airlock's version (GET /version asks a service).");
      return 0;
    }
    std::puts("airlock " AIRLOCK_VERSION);
    return 0;
  }
  if (command == "help" || command == "--help" || command == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "airlock: unknown command '%s'\n\n%s", argv[1], kUsage);
  return 2;
}
