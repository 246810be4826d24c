#include "sandbox/namespaces.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
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

namespace {

constexpr int64_t kNanosPerSecond = 1'000'000'000;

int64_t nanos(const timespec& time) {
  return time.tv_sec * kNanosPerSecond + time.tv_nsec;
}

// Parses "monotonic   S   N\nboottime   S   N\n" (the offsets of the namespace we are in, against
// the host's clocks) into nanoseconds.
bool parse_offsets(const char* text, int64_t* monotonic, int64_t* boottime) {
  bool seen_monotonic = false, seen_boottime = false;
  while (*text != '\0') {
    const char* name = text;
    while (*text != '\0' && *text != ' ') ++text;
    const size_t name_length = static_cast<size_t>(text - name);
    int64_t parts[2] = {0, 0};
    for (int64_t& part : parts) {
      while (*text == ' ') ++text;
      const bool negative = *text == '-';
      if (negative) ++text;
      if (*text < '0' || *text > '9') return false;
      while (*text >= '0' && *text <= '9') part = part * 10 + (*text++ - '0');
      if (negative) part = -part;
    }
    while (*text != '\0' && *text++ != '\n') {
    }
    const int64_t offset = parts[0] * kNanosPerSecond + parts[1];
    if (name_length == 9 && std::memcmp(name, "monotonic", 9) == 0) {
      *monotonic = offset;
      seen_monotonic = true;
    } else if (name_length == 8 && std::memcmp(name, "boottime", 8) == 0) {
      *boottime = offset;
      seen_boottime = true;
    }
  }
  return seen_monotonic && seen_boottime;
}

// Appends "NAME SECONDS NANOS\n" for an offset in nanoseconds; the kernel wants 0 <= NANOS < 1e9.
char* format_offset(char* out, const char* name, int64_t offset) {
  int64_t seconds = offset / kNanosPerSecond, rest = offset % kNanosPerSecond;
  if (rest < 0) {
    rest += kNanosPerSecond;
    --seconds;
  }
  while (*name != '\0') *out++ = *name++;
  *out++ = ' ';
  if (seconds < 0) *out++ = '-';
  for (int64_t number : {seconds < 0 ? -seconds : seconds, rest}) {
    char digits[24];
    int count = 0;
    do {
      digits[count++] = static_cast<char>('0' + number % 10);
      number /= 10;
    } while (number > 0);
    while (count > 0) *out++ = digits[--count];
    *out++ = ' ';
  }
  out[-1] = '\n';
  return out;
}

}  // namespace

bool enter_time_namespace(const char** step) {
  // Offsets are against the host's clocks; we may already be in a namespace with offsets of its
  // own (a fork server's zygote is), so read them and our clocks, and subtract both.
  *step = "read(/proc/self/timens_offsets)";
  char current[256];
  int fd = ::open("/proc/self/timens_offsets", O_RDONLY | O_CLOEXEC);
  // A kernel without time namespaces (before 5.6, or CONFIG_TIME_NS off) has no such file: the
  // host's uptime then stays readable (docs/sandbox.md), rather than no run starting at all.
  if (fd < 0 && errno == ENOENT) return true;
  if (fd < 0) return false;
  ssize_t length = ::read(fd, current, sizeof current - 1);
  ::close(fd);
  if (length <= 0) return false;
  current[length] = '\0';
  int64_t monotonic_offset = 0, boottime_offset = 0;
  if (!parse_offsets(current, &monotonic_offset, &boottime_offset)) {
    errno = EINVAL;
    return false;
  }
  timespec monotonic{}, boottime{};
  ::clock_gettime(CLOCK_MONOTONIC, &monotonic);
  ::clock_gettime(CLOCK_BOOTTIME, &boottime);
  *step = "unshare(CLONE_NEWTIME)";
  if (::unshare(CLONE_NEWTIME) != 0) return false;
  // Both clocks then read the time since this moment: the host's uptime, and the time it spent
  // suspended (boottime minus monotonic), are gone.
  char text[128];
  char* end = format_offset(text, "monotonic", monotonic_offset - nanos(monotonic));
  end = format_offset(end, "boottime", boottime_offset - nanos(boottime));
  *step = "write(/proc/self/timens_offsets)";
  fd = ::open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const ssize_t size = end - text;
  const bool written = ::write(fd, text, static_cast<size_t>(size)) == size;
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return written;
}

}  // namespace airlock::sandbox
