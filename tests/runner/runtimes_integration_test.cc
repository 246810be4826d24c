// Real runtimes under the shipped policies, through the runner, as the service runs them.
#include <catch2/catch.hpp>

#include <unistd.h>

#include "test_env.h"

namespace airlock::runner {
namespace {

using namespace testing;

RunResult run(const std::string& language, const std::string& code, const std::string& policy_name,
              std::vector<Event>* events = nullptr, RunRequest request = {}) {
  request.runtime = language;
  request.code = code;
  auto chosen = policy(policy_name);
  if (auto problem = env().runner->validate(request, *chosen)) FAIL(problem->message);
  EventSink sink = [events](const Event& event) {
    if (events) events->push_back(event);
  };
  return env().runner->run(request, *chosen, sink);
}

}  // namespace

TEST_CASE("hello world runs in every shipped language", "[root]") {
  if (!can_run()) return;
  struct Case {
    const char *language, *policy, *code;
  };
  for (Case c :
       {Case{"python", "python", "print('hello')"}, Case{"node", "node", "console.log('hello')"},
        Case{"bash", "bash", "echo hello"}, Case{"sh", "bash", "echo hello"},
        Case{"perl", "default", "print \"hello\\n\";"},
        Case{"c", "default", "#include <stdio.h>\nint main(void){puts(\"hello\");}"},
        Case{"cpp", "default", "#include <iostream>\nint main(){std::cout<<\"hello\\n\";}"}}) {
    INFO(c.language);
    RunResult result = run(c.language, c.code, c.policy);
    INFO(result.summary << result.stderr_output.text);
    CHECK(result.status_name() == "ok");
    CHECK(result.stdout_output.text == "hello\n");
  }
}

TEST_CASE("a realistic python program: json, sqlite3, threads, multiprocessing, subprocess",
          "[root]") {
  if (!can_run()) return;
  const char* code = R"py(
import json, sqlite3, tempfile, threading, multiprocessing, subprocess, os
db = sqlite3.connect(os.path.join(tempfile.mkdtemp(), "t.db"))
db.execute("create table t (x int)")
db.executemany("insert into t values (?)", [(i,) for i in range(100)])
total = db.execute("select sum(x) from t").fetchone()[0]
results = []
threads = [threading.Thread(target=lambda i=i: results.append(i * i)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
with multiprocessing.Pool(2) as pool:
    squares = pool.map(abs, [-1, -2, -3])
shell = subprocess.run(["/bin/sh", "-c", "echo from-sh"], capture_output=True, text=True).stdout
print(json.dumps({"sum": total, "threads": sorted(results), "pool": squares, "sh": shell.strip()}))
)py";
  RunResult result = run("python", code, "python");
  INFO(result.summary << result.stderr_output.text);
  CHECK(result.status_name() == "ok");
  CHECK(result.stdout_output.text ==
        "{\"sum\": 4950, \"threads\": [0, 1, 4, 9], \"pool\": [1, 2, 3], \"sh\": \"from-sh\"}\n");
}

TEST_CASE("a compile error comes back as compile_error with the compiler's words", "[root]") {
  if (!can_run()) return;
  RunResult result = run("c", "int main(void) { return undefined_name; }", "default");
  CHECK(result.status_name() == "compile_error");
  CHECK_THAT(result.stderr_output.text, Catch::Contains("undefined_name"));
  CHECK_THAT(result.summary, Catch::Contains("fix the compile errors"));
}

TEST_CASE("compiler diagnostics stream as stderr events and the error line is the reason",
          "[root]") {
  if (!can_run()) return;
  std::vector<Event> events;
  RunResult result =
      run("c", "int main(void) { return undefined_name; }", "default", &events);
  CHECK(result.status_name() == "compile_error");
  CHECK_THAT(result.outcome.reason, Catch::StartsWith("main.c:1:"));
  CHECK_THAT(result.outcome.reason, Catch::Contains(": error: "));
  CHECK_THAT(result.outcome.reason, Catch::Contains("undefined_name"));
  CHECK_THAT(result.summary, Catch::StartsWith("status: compile_error — the compiler rejected "
                                               "the program: main.c:1:"));
  std::string streamed;
  for (const Event& event : events) {
    if (event.kind == EventKind::stderr_data) streamed += event.data;
  }
  CHECK_THAT(streamed, Catch::Contains("undefined_name"));
  REQUIRE_FALSE(events.empty());
  CHECK(events.front().kind == EventKind::started);
  for (size_t i = 0; i < events.size(); ++i) CHECK(events[i].sequence == i + 1);
}

TEST_CASE("a compiler's warnings come before the program's own stderr", "[root]") {
  if (!can_run()) return;
  std::vector<Event> events;
  RunResult result = run("c",
                         "#include <stdio.h>\n#warning look here\n"
                         "int main(void) { fputs(\"ran\\n\", stderr); return 0; }",
                         "default", &events);
  CHECK(result.status_name() == "ok");
  CHECK_THAT(result.stderr_output.text, Catch::Contains("warning: #warning look here"));
  CHECK_THAT(result.stderr_output.text, Catch::EndsWith("ran\n"));
  size_t started = 0;
  for (const Event& event : events) started += event.kind == EventKind::started;
  CHECK(started == 1);
}

TEST_CASE("java's compile errors are compile_error", "[root]") {
  if (!can_run() || ::access("/usr/bin/java", X_OK) != 0) return;
  RunResult result =
      run("java", "public class Main { public static void main(String[] a) { int x = ; } }",
          "default");
  INFO(result.summary << result.stderr_output.text);
  CHECK(result.status_name() == "compile_error");
  CHECK_THAT(result.outcome.reason, Catch::StartsWith("Main.java:1: error:"));
  // The JVM's socket probes at start-up did not make it fail: not in the summary.
  CHECK_THAT(result.summary, !Catch::Contains("blocked:"));
}

TEST_CASE("a failed one-shot run's summary quotes its error line", "[root]") {
  if (!can_run()) return;
  RunResult python = run("python", "def f():\n    return 1 / 0\nf()", "default");
  CHECK(python.status_name() == "nonzero_exit");
  CHECK(python.outcome.reason == "ZeroDivisionError: division by zero");
  CHECK_THAT(python.summary,
             Catch::StartsWith("status: nonzero_exit — ZeroDivisionError: division by zero\n"));
  RunResult bash = run("bash", "echo fine\nls /no/such/dir", "default");
  CHECK_THAT(bash.outcome.reason, Catch::Contains("No such file or directory"));
}

TEST_CASE("refused calls of a run that succeeded stay out of its summary", "[root]") {
  if (!can_run()) return;
  RunResult result = run(
      "python", "import socket\ntry:\n  socket.socket(socket.AF_INET)\nexcept OSError:\n  pass",
      "default");
  CHECK(result.status_name() == "ok");
  CHECK_FALSE(result.outcome.blocked.empty());
  CHECK_THAT(result.summary, !Catch::Contains("blocked:"));
}

TEST_CASE("the compile step gets no more room than the request allows", "[root]") {
  if (!can_run()) return;
  // Two processes: the sandbox's init and gcc, which cannot start cc1. Before the fix the compile step ran with the compile
  // policy's 128 processes and 1 GiB whatever the request said, and this compiled.
  RunRequest request;
  request.limits.max_processes = 2;
  RunResult result = run("c", "int main(void) { return 0; }", "default", nullptr, request);
  INFO(result.summary << result.stderr_output.text);
  CHECK(result.compile_error);
  CHECK(result.status_name() == "compile_error");
}

TEST_CASE("input files arrive in the working dir and requested outputs come back", "[root]") {
  if (!can_run()) return;
  RunRequest request;
  request.files.push_back({"data/input.csv", "a,b\n1,2\n3,4\n"});
  request.output_globs = {"*.png", "out/*.txt"};
  const char* code = R"py(
import csv, os
rows = list(csv.DictReader(open("data/input.csv")))
os.makedirs("out", exist_ok=True)
open("out/sum.txt", "w").write(str(sum(int(r["b"]) for r in rows)))
open("chart.png", "wb").write(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
os.symlink("/etc/passwd", "leak.png")
)py";
  RunResult result = run("python", code, "python", nullptr, request);
  INFO(result.summary << result.stderr_output.text);
  REQUIRE(result.status_name() == "ok");
  REQUIRE(result.files.size() == 2);
  CHECK(result.files[0].path == "chart.png");
  CHECK(result.files[0].binary);
  CHECK(result.files[0].size_bytes == 264);
  CHECK(result.files[1].path == "out/sum.txt");
  CHECK(result.files[1].content == "6");
}

TEST_CASE("a flood of output keeps its head and tail and says how much was cut", "[root]") {
  if (!can_run()) return;
  RunRequest request;
  request.limits.output_kept_bytes = 1000;
  RunResult result = run("python", "print('START'); print('x' * 3_000_000); print('END')", "python",
                         nullptr, request);
  CHECK(result.status_name() == "ok");
  CHECK(result.stdout_output.total_bytes == 3'000'000 + 1 + 6 + 4);
  CHECK(result.stdout_output.dropped_bytes == result.stdout_output.total_bytes - 1000);
  CHECK_THAT(result.stdout_output.text, Catch::StartsWith("START\n"));
  CHECK_THAT(result.stdout_output.text, Catch::EndsWith("xxx\nEND\n"));
  CHECK_THAT(result.stdout_output.text, Catch::Contains("bytes dropped"));
}

TEST_CASE("a blocked network call is recorded with the rule that blocked it", "[root]") {
  if (!can_run()) return;
  RunResult result =
      run("python",
          "import socket\ntry:\n  socket.socket(socket.AF_INET)\nexcept OSError as e:"
          "\n  print(e.errno)",
          "python");
  CHECK(result.status_name() == "ok");
  CHECK(result.stdout_output.text == "1\n");  // EPERM
  REQUIRE_FALSE(result.outcome.blocked.empty());
  const sandbox::SyscallEvent& blocked = result.outcome.blocked.front();
  CHECK_THAT(blocked.detail, Catch::StartsWith("socket(AF_INET"));
  CHECK_THAT(blocked.origin, Catch::Contains("(network: none)"));
}

TEST_CASE("calls common software probes fail with an errno under the shipped policies", "[root]") {
  if (!can_run()) return;
  // What Chromium and bubblewrap (namespaces), libuv (io_uring), profilers (perf_event_open) and
  // Kerberos libraries (keyctl) try before falling back: each must fail and the run go on.
  const char* code = R"py(
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
for name, number, args in [("unshare", 272, [0x10000000]), ("io_uring_setup", 425, [4, 0]),
                           ("perf_event_open", 298, [0, 0, -1, -1, 0]),
                           ("keyctl", 250, [0, -1, 0])]:
    rc = libc.syscall(number, *args)
    print(name, rc, errno.errorcode.get(ctypes.get_errno()))
)py";
  for (const char* policy_name : {"python", "default"}) {
    INFO(policy_name);
    RunResult result = run("python", code, policy_name);
    INFO(result.summary << result.stderr_output.text);
    CHECK(result.status_name() == "ok");
    CHECK(result.stdout_output.text ==
          "unshare -1 EPERM\nio_uring_setup -1 ENOSYS\nperf_event_open -1 EPERM\n"
          "keyctl -1 EPERM\n");
    std::vector<std::string> blocked;
    for (const auto& event : result.outcome.blocked) blocked.push_back(event.syscall);
    CHECK(blocked ==
          std::vector<std::string>{"unshare", "io_uring_setup", "perf_event_open", "keyctl"});
  }
}

TEST_CASE("python has the data stack: pandas in, a matplotlib chart out as a PNG file", "[root]") {
  if (!can_run()) return;
  const char* code = R"py(
import os, matplotlib, numpy, scipy.special  # scipy.stats is heavier: 10 s on a busy machine
import pandas as pd
import matplotlib.pyplot as plt
frame = pd.DataFrame({"day": range(10), "sales": numpy.arange(10) ** 2})
frame.plot(x="day", y="sales", title="sales")
plt.savefig("chart.png")
print(matplotlib.get_backend(), round(float(scipy.special.ndtr(0)), 2))
print(sorted(os.listdir("/tmp/matplotlib")))
)py";
  for (const char* policy_name : {"python", "default"}) {
    INFO(policy_name);
    RunRequest request;
    request.output_globs = {"*.png"};
    std::vector<Event> events;
    RunResult result = run("python", code, policy_name, &events, request);
    INFO(result.summary << result.stderr_output.text);
    REQUIRE(result.status_name() == "ok");
    // Headless, and the font list read from the one built ahead: none is built or written here.
    CHECK(result.stdout_output.text == "agg 0.5\n[]\n");
    CHECK(result.stderr_output.text.empty());
    REQUIRE(result.files.size() == 1);
    const OutputFile& chart = result.files.front();
    CHECK(chart.path == "chart.png");
    CHECK(chart.media_type == "image/png");
    CHECK(chart.content.substr(0, 8) == "\x89PNG\r\n\x1a\n");
    CHECK_FALSE(chart.truncated);
    // The chart is also an event, before the exit.
    std::vector<std::string> files;
    for (const Event& e : events) {
      if (e.kind == EventKind::file) files.push_back(e.file->path);
    }
    CHECK(files == std::vector<std::string>{"chart.png"});
    CHECK(events.back().kind == EventKind::exit);
  }
}

TEST_CASE("pip install says at once that the sandbox has no network", "[root]") {
  if (!can_run()) return;
  const char* code = R"py(
import subprocess, sys
for command in (["pip", "install", "requests"],
                [sys.executable, "-m", "pip", "install", "-q", "requests"]):
    done = subprocess.run(command, capture_output=True, text=True)
    print(done.returncode, "no network access" in done.stderr, "externally-managed" in done.stderr)
listed = subprocess.run([sys.executable, "-m", "pip", "list"], capture_output=True, text=True)
print("pandas" in listed.stdout)
)py";
  RunResult result = run("python", code, "python");
  INFO(result.summary << result.stderr_output.text);
  REQUIRE(result.status_name() == "ok");
  CHECK(result.stdout_output.text == "1 True False\n1 True False\nTrue\n");

  RunResult shell = run("bash", "pip install requests", "bash");  // as an agent's shell step
  CHECK(shell.status_name() == "nonzero_exit");
  CHECK_THAT(shell.stderr_output.text, Catch::StartsWith("ERROR: pip: no network access"));
}

TEST_CASE("events come in order: started, output as written, exit last", "[root]") {
  if (!can_run()) return;
  std::vector<Event> events;
  RunResult result =
      run("python", "import sys\nprint('a')\nprint('b', file=sys.stderr)", "python", &events);
  REQUIRE(result.status_name() == "ok");
  REQUIRE(events.size() >= 3);
  CHECK(events.front().kind == EventKind::started);
  CHECK(events.back().kind == EventKind::exit);
  for (size_t i = 0; i < events.size(); ++i) CHECK(events[i].sequence == i + 1);
  std::string out, err;
  for (const Event& e : events) {
    if (e.kind == EventKind::stdout_data) out += e.data;
    if (e.kind == EventKind::stderr_data) err += e.data;
  }
  CHECK(out == "a\n");
  CHECK(err == "b\n");
}

}  // namespace airlock::runner
