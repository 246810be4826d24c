// Acting as the sandbox's user on the file system, for the calling thread only.
#pragma once

#include <sys/fsuid.h>
#include <sys/types.h>

namespace airlock::sandbox {

// A forked sandbox's working directory is a tmpfs mounted inside the sandbox's user namespace:
// the kernel lets only ids mapped there create files in it, and host root is not. The runner
// creates input files with the fs ids set to the sandbox's host ids (which suits every working
// directory: each belongs to them). setfsuid/setfsgid act on the calling thread alone, and going
// back to 0 restores the thread's capabilities.
class ScopedFsIds {
 public:
  ScopedFsIds(uid_t uid, gid_t gid) : uid_(::setfsuid(uid)), gid_(::setfsgid(gid)) {}
  ~ScopedFsIds() {
    ::setfsgid(gid_);
    ::setfsuid(uid_);
  }
  ScopedFsIds(const ScopedFsIds&) = delete;
  ScopedFsIds& operator=(const ScopedFsIds&) = delete;

 private:
  uid_t uid_;  // the previous ids, as setfsuid/setfsgid return them
  gid_t gid_;
};

}  // namespace airlock::sandbox
