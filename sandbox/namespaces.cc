#include "sandbox/namespaces.h"

#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "sandbox/unique_fd.h"

namespace airlock::sandbox {

unsigned long sandbox_clone_flags() {
  return CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
}

std::string uid_map_line(const IdMap& map) {
  return std::to_string(map.inside_uid) + " " + std::to_string(map.host_uid) + " 1\n";
}

std::string gid_map_line(const IdMap& map) {
  return std::to_string(map.inside_gid) + " " + std::to_string(map.host_gid) + " 1\n";
}

Status write_id_maps(pid_t child, const IdMap& map) {
  if (map.host_uid == 0 || map.host_gid == 0) {
    return SetupError{"the sandbox must not map to host uid or gid 0", 0};
  }
  const std::string proc = "/proc/" + std::to_string(child);
  if (Status s = write_file(proc + "/uid_map", uid_map_line(map)); !s) return s;
  return write_file(proc + "/gid_map", gid_map_line(map));
}

bool bring_up_loopback() {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  struct ifreq request;
  std::memset(&request, 0, sizeof request);
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  request.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
  bool ok = ::ioctl(fd, SIOCSIFFLAGS, &request) == 0;
  int saved = errno;
  ::close(fd);
  errno = saved;
  return ok;
}

}  // namespace airlock::sandbox
