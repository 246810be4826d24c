// probe MODE [ARG]: does exactly one hostile or benign thing inside the sandbox, so that a test
// can assert the outcome. Prints what happened on stdout when it survives.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

static int report(long rc) {
  if (rc < 0) {
    printf("%s\n", strerrorname_np(errno));
    return 1;
  }
  printf("OK\n");
  return 0;
}

static void* thread_main(void* arg) { return arg; }

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const char* mode = argv[1];
  if (!strcmp(mode, "survive")) {  // survive MODE [ARG]: does MODE, then says it is still here
    main(argc - 1, argv + 1);
    printf("survived\n");
    return 0;
  }
  const char* arg = argc > 2 ? argv[2] : "";
  if (!strcmp(mode, "read")) return report(open(arg, O_RDONLY));
  if (!strcmp(mode, "write")) return report(open(arg, O_WRONLY | O_CREAT, 0644));
  if (!strcmp(mode, "cat")) {  // copies file ARG to stdout, byte for byte
    int fd = open(arg, O_RDONLY);
    if (fd < 0) return report(-1);
    char buffer[4096];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof buffer)) > 0) fwrite(buffer, 1, (size_t)n, stdout);
    return n < 0 ? report(-1) : 0;
  }
  if (!strcmp(mode, "interfaces")) {
    struct if_nameindex* names = if_nameindex();
    for (struct if_nameindex* n = names; n && n->if_index; ++n) printf("%s\n", n->if_name);
    return 0;
  }
  if (!strcmp(mode, "status")) {  // prints the lines of /proc/self/status that start with ARG
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
      if (!strncmp(line, arg, strlen(arg))) fputs(line, stdout);
    }
    return 0;
  }
  if (!strcmp(mode, "env")) {
    for (char** e = environ; *e; ++e) printf("%s\n", *e);
    return 0;
  }
  if (!strcmp(mode, "fds")) {  // lists open fds
    for (int fd = 0; fd < 4096; ++fd) {
      if (fcntl(fd, F_GETFD) >= 0) printf("%d\n", fd);
    }
    return 0;
  }
  if (!strcmp(mode, "ptrace")) return report(ptrace(PTRACE_TRACEME, 0, 0, 0));
  if (!strcmp(mode, "mount")) return report(mount("none", "/tmp", "tmpfs", 0, NULL));
  if (!strcmp(mode, "unshare-user")) return report(unshare(CLONE_NEWUSER));
  if (!strcmp(mode, "unshare-files")) return report(unshare(CLONE_FILES));
  if (!strcmp(mode, "clone-newuser")) {
    return report(syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
  }
  if (!strcmp(mode, "bpf")) {
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    return report(syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr));
  }
  if (!strcmp(mode, "perf")) {
    struct perf_event_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_SOFTWARE;
    attr.config = PERF_COUNT_SW_CPU_CLOCK;
    return report(syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0));
  }
  if (!strcmp(mode, "keyctl")) return report(syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -1, 0));
  if (!strcmp(mode, "tiocsti")) {
    char c = 'x';
    return report(syscall(SYS_ioctl, 0, (unsigned long)TIOCSTI | (1UL << 32), &c));
  }
  if (!strcmp(mode, "seccomp-listener")) {
    return report(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, NULL));
  }
  if (!strcmp(mode, "clone3")) {
    struct clone_args args;
    memset(&args, 0, sizeof args);
    args.exit_signal = SIGCHLD;
    return report(syscall(SYS_clone3, &args, sizeof args));
  }
  if (!strcmp(mode, "io-uring")) {
    struct io_uring_params params;
    memset(&params, 0, sizeof params);
    return report(syscall(SYS_io_uring_setup, 4, &params));
  }
  if (!strcmp(mode, "int80")) {  // getpid through the i386 ABI
    long rc;
    // The kernel zeroes r8-r11 on the way back from int 0x80.
    __asm__ volatile("int $0x80" : "=a"(rc) : "a"(20) : "memory", "r8", "r9", "r10", "r11");
    printf("returned %ld\n", rc);
    return 0;
  }
  if (!strcmp(mode, "x32")) return report(syscall(0x40000000 | SYS_getpid));
  if (!strcmp(mode, "socket-inet")) return report(socket(AF_INET, SOCK_STREAM, 0));
  if (!strcmp(mode, "connect")) {  // connect IPV4 PORT: a TCP connection, closed at once
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(atoi(argc > 3 ? argv[3] : "0"))};
    if (inet_pton(AF_INET, arg, &address.sin_addr) != 1) return 2;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return report(-1);
    return report(connect(fd, (struct sockaddr*)&address, sizeof address));
  }
  if (!strcmp(mode, "bind")) {  // bind PORT: a TCP socket on 0.0.0.0:PORT
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(atoi(arg))};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return report(-1);
    return report(bind(fd, (struct sockaddr*)&address, sizeof address));
  }
  if (!strcmp(mode, "fork-bomb")) {
    for (;;) fork();
  }
  if (!strcmp(mode, "memory-bomb")) {
    for (;;) {
      char* block = malloc(1 << 20);
      if (block) memset(block, 1, 1 << 20);
    }
  }
  if (!strcmp(mode, "busy")) {
    for (volatile unsigned long i = 0;; ++i) {
    }
  }
  if (!strcmp(mode, "named-sleep")) {  // sleeps a minute under the process name ARG
    prctl(PR_SET_NAME, arg);
    sleep(60);
    return 0;
  }
  if (!strcmp(mode, "sleep")) {
    sleep((unsigned)atoi(arg));
    return 0;
  }
  if (!strcmp(mode, "daemon")) {  // a double-forked setsid daemon named ARG; the parent exits
    if (fork() == 0) {
      setsid();
      if (fork() == 0) {
        prctl(PR_SET_NAME, arg);
        for (;;) pause();
      }
      _exit(0);
    }
    wait(NULL);
    printf("parent done\n");
    return 0;
  }
  if (!strcmp(mode, "flood")) {
    static char block[65536];
    memset(block, 'x', sizeof block);
    for (;;) {
      if (write(1, block, sizeof block) < 0) return 1;
    }
  }
  if (!strcmp(mode, "open-many")) {
    int count = 0;
    while (open("/dev/null", O_RDONLY) >= 0) ++count;
    printf("%s after %d\n", strerrorname_np(errno), count);
    return 0;
  }
  if (!strcmp(mode, "threads")) {
    pthread_t threads[8];
    for (int i = 0; i < 8; ++i) {
      if (pthread_create(&threads[i], NULL, thread_main, NULL) != 0) return 1;
    }
    for (int i = 0; i < 8; ++i) pthread_join(threads[i], NULL);
    printf("8 threads\n");
    return 0;
  }
  if (!strcmp(mode, "stdin")) {  // echoes stdin to stdout
    char buffer[4096];
    ssize_t n;
    while ((n = read(0, buffer, sizeof buffer)) > 0) fwrite(buffer, 1, (size_t)n, stdout);
    return 0;
  }
  if (!strcmp(mode, "channel")) {  // writes ARG to fd 3, the control channel
    return report(write(3, arg, strlen(arg)));
  }
  if (!strcmp(mode, "lines")) {  // answers each stdin line with "got LINE" at once
    char line[4096];
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) printf("got %s", line);
    return 0;
  }
  if (!strcmp(mode, "exit")) return atoi(arg);
  if (!strcmp(mode, "abort")) abort();
  if (!strcmp(mode, "write-big")) {  // writes ARG MiB into /tmp/big
    int fd = open("/tmp/big", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    static char block[1 << 20];
    for (int i = 0; i < atoi(arg); ++i) {
      if (write(fd, block, sizeof block) < 0) return report(-1);
    }
    return report(0);
  }
  fprintf(stderr, "probe: unknown mode %s\n", mode);
  return 2;
}
