// Dropping privileges in the child: supplementary groups, uid/gid, every capability set, and
// no_new_privs. After this the process cannot regain anything, even through exec.
#pragma once

#include <cstdint>

namespace airlock::sandbox {

// Child side (no allocation). Returns nullptr on success, else the name of the failed step
// (errno set). A forked sandbox's child has no supplementary groups to clear and may not call
// setgroups (its user namespace was made with setgroups denied): it passes clear_groups false.
const char* drop_privileges(uint32_t uid, uint32_t gid, bool clear_groups = true);

}  // namespace airlock::sandbox
