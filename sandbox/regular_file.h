// Reading a file someone else provides (a config, a policy, a runtimes table, a program's source)
// without trusting what it is: a directory, a FIFO, /dev/zero or a huge file is refused unread.
#pragma once

#include <cstddef>
#include <string>

#include "sandbox/error.h"

namespace airlock::sandbox {

// The contents of `path` when it is a regular file of at most max_bytes; otherwise an error that
// names the file and says why ("\"x\" is a directory, not a regular file", "... is larger than
// 1 MiB"). Opened with O_NONBLOCK, so that a FIFO cannot hang the open, and checked with fstat on
// the open descriptor. Symlinks are followed: configs mounted from a Kubernetes ConfigMap are ones.
Expected<std::string> read_regular_file(const std::string& path, size_t max_bytes);

}  // namespace airlock::sandbox
