// Text for security reviewers: the effective policy as `airlock policy show --effective` prints
// it (groups expanded, the floor listed, every rule with its origin), and the list of unsafe
// entries that `policy check` flags.
#pragma once

#include <string>
#include <string_view>

#include "policies/policy.h"

namespace airlock::policies {

// YAML-like text, values spelled as in policy files, origins as comments; ends with the hash.
std::string render_effective(const Policy& policy);

// One line per unsafe entry: `UNSAFE policy "NAME": syscall ptrace — <justification>`; empty when
// there is none.
std::string render_unsafe(const Policy& policy);

// `text` safe to print on a terminal: control characters (C0 but newline and tab, DEL, and C1
// such as U+009B, the one-byte CSI) written as \xNN or \uNNNN, so that policy text cannot move
// the cursor, retitle the window or hide a line from a reviewer. Newlines are escaped too unless
// keep_newlines.
std::string terminal_safe(std::string_view text, bool keep_newlines = false);

}  // namespace airlock::policies
