#include <cstdio>

#include "cli/commands.h"

int airlock::cli::serve_command(int, char**) {
  std::fprintf(stderr, "airlock: this subcommand is not built yet\n");
  return 2;
}
