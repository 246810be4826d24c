// The subcommands of the airlock binary. Each takes the arguments after its own name.
#pragma once

namespace airlock::cli {

int run_command(int argc, char** argv);
int policy_command(int argc, char** argv);
int serve_command(int argc, char** argv);
int audit_command(int argc, char** argv);

}  // namespace airlock::cli
