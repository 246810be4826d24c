// Drives airlock's E2B-compatible endpoints (docs/e2b.md) with the official E2B SDKs from npm,
// unmodified: `e2b` and `@e2b/code-interpreter`, pinned in package-lock.json. It starts
// `airlock serve` on a free port with two API keys of its own, points the SDKs at it through
// E2B_API_URL / E2B_SANDBOX_URL / E2B_API_KEY exactly as a user would, runs the cases below one by
// one (a failing case does not stop the others), and finally checks that the service left nothing
// behind: no processes, no cgroups of a run, no working directories.
// Usage: node e2b_sdk_test.mjs AIRLOCK_BINARY
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync,
  writeFileSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { startServe } from "../helpers/airlock_serve.mjs";

// Keys of the E2B form (the JS SDKs do not check the form; the Python SDK does).
const KEY_A = "e2b_0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const KEY_B = "e2b_f9e8d7c6b5a4938271605f4e3d2c1b0a";
// Bounds on waiting; how long a case gives up after, never something it asserts.
const STARTUP_LIMIT_MS = 60_000;
const GONE_LIMIT_MS = 20_000;
const REQUEST_TIMEOUT_MS = 30_000;
// The workspace settings' defaults (runner/workspaces.h): 4 per key, 16 in the service.
const SERVICE_CAP = 16;

const sha256 = (text) => createHash("sha256").update(text).digest("hex");

function startServer(airlock) {
  const dir = mkdtempSync(join(tmpdir(), "airlock-e2b-test-"));
  chmodSync(dir, 0o755);  // the sandboxed programs run as another user
  const stateDir = join(dir, "state");
  mkdirSync(stateDir);
  const config = join(dir, "serve.yaml");
  writeFileSync(config, [
    'listen: "127.0.0.1:0"',
    `state_dir: "${stateDir}"`,
    "warm_pool: []",  // no fork servers: every process below the service is a workspace's
    "e2b:",
    "  spares: 1",
    "api_keys:",
    "  - name: e2b-a",
    `    sha256: ${sha256(KEY_A)}`,
    "    policies: [default]",
    "  - name: e2b-b",
    `    sha256: ${sha256(KEY_B)}`,
    "    policies: [default]",
  ].join("\n") + "\n");
  const { child, port, logs } = startServe(airlock, config, STARTUP_LIMIT_MS);
  return { child, dir, stateDir, port, logs };
}

// ---- what the host shows of the service: processes, cgroups, working directories ----

function parentOf(pid) {
  try {
    return Number(readFileSync(`/proc/${pid}/stat`, "utf8").split(")").pop().trim().split(/\s+/)[1]);
  } catch {
    return 0;
  }
}

function descendantsOf(ancestor) {
  const found = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    let pid = Number(name);
    if (pid === ancestor) continue;
    for (let hops = 0; pid > 1 && hops < 64; hops++) {
      pid = parentOf(pid);
      if (pid === ancestor) {
        let cmdline = "";
        try { cmdline = readFileSync(`/proc/${name}/cmdline`, "utf8").replaceAll("\0", " ").trim(); } catch {}
        found.push(`${name} ${cmdline}`);
        break;
      }
    }
  }
  return found;
}

// The directories below the service's cgroup home (the parent of its own cgroup) that belong to
// this service's instance: named "<pid>-<start ticks>-<n>" (sandbox/cgroup.h), holding "run-N".
function runCgroupsOf(serverPid) {
  const found = [];
  let lines = [];
  try { lines = readFileSync(`/proc/${serverPid}/cgroup`, "utf8").trim().split("\n"); } catch { return found; }
  for (const line of lines) {
    const [, controllers, path] = line.split(":");
    if (path === undefined || path === "/" || controllers.startsWith("name=")) continue;
    const base = controllers === "" ? "/sys/fs/cgroup" : "/sys/fs/cgroup/" + controllers.split(",")[0];
    const home = dirname(base + path);
    const walk = (dir, depth, ours) => {
      let entries = [];
      try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
      for (const entry of entries) {
        if (!entry.isDirectory()) continue;
        const child = join(dir, entry.name);
        const mine = ours || entry.name.startsWith(`${serverPid}-`);
        if (mine && (entry.name.startsWith("run-") || hasProcesses(child))) found.push(child);
        if (depth < 4) walk(child, depth + 1, mine);
      }
    };
    walk(home, 0, false);
  }
  return found;
}

function hasProcesses(cgroupDir) {
  try { return readFileSync(join(cgroupDir, "cgroup.procs"), "utf8").trim() !== ""; } catch { return false; }
}

// Working directories ("work-N", sandbox/supervisor.cc) and mounts left below the state dir.
function leftoverDirs(stateDir) {
  const found = [];
  const walk = (dir, depth) => {
    let entries = [];
    try { entries = readdirSync(dir, { withFileTypes: true }); } catch { return; }
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const child = join(dir, entry.name);
      if (/^work-\d+$/.test(entry.name) || /^sb_/.test(entry.name)) found.push(child);
      if (depth < 3) walk(child, depth + 1);
    }
  };
  walk(stateDir, 0);
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    const mountPoint = line.split(" ")[4];
    if (mountPoint && mountPoint.startsWith(stateDir + "/")) found.push("mount " + mountPoint);
  }
  return found;
}

async function waitFor(condition, limitMs) {
  const end = Date.now() + limitMs;
  while (Date.now() < end) {
    if (await condition()) return true;
    await sleep(100);
  }
  return await condition();
}

// ---- the cases ----

const cases = [];
// E2B_TEST_ONLY=<regex>: only the cases whose name matches (and the first, which the others use).
const only = process.env.E2B_TEST_ONLY ? new RegExp(process.env.E2B_TEST_ONLY) : null;
function testCase(name, body) {
  cases.push({ name, body });
}

function hostHasMatplotlib() {
  return spawnSync("/usr/bin/python3", ["-c", "import matplotlib"], { stdio: "ignore" }).status === 0;
}

async function main() {
  const airlock = process.argv[2];
  assert.ok(airlock && existsSync(airlock), "usage: node e2b_sdk_test.mjs AIRLOCK_BINARY");
  const server = startServer(airlock);
  let port;
  try {
    port = await server.port;
  } catch (error) {
    server.child.kill("SIGKILL");
    rmSync(server.dir, { recursive: true, force: true });
    throw error;
  }
  // Exactly what a user sets (docs/e2b.md); set before the SDKs read them.
  process.env.E2B_API_URL = `http://127.0.0.1:${port}/e2b/api`;
  process.env.E2B_SANDBOX_URL = `http://127.0.0.1:${port}/e2b/sandbox`;
  process.env.E2B_API_KEY = KEY_A;
  delete process.env.E2B_DEBUG;
  delete process.env.E2B_DOMAIN;
  const e2b = await import("e2b");
  const { Sandbox } = await import("@e2b/code-interpreter");
  const { CommandExitError, RateLimitError, SandboxNotFoundError, SandboxError, TimeoutError } = e2b;
  const baseline = new Set(descendantsOf(server.child.pid));

  const made = [];  // every sandbox a case created, killed at the end whatever happened
  const opts = (more = {}) => ({ requestTimeoutMs: REQUEST_TIMEOUT_MS, ...more });
  async function create(more = {}) {
    const sandbox = await Sandbox.create(opts(more));
    made.push({ id: sandbox.sandboxId, apiKey: more.apiKey ?? KEY_A });
    return sandbox;
  }
  async function listIds(apiKey = KEY_A, query) {
    const ids = [];
    const paginator = Sandbox.list(opts({ apiKey, query }));
    while (paginator.hasNext) {
      for (const info of await paginator.nextItems()) ids.push(info.sandboxId);
    }
    return ids;
  }
  async function isGone(id, apiKey = KEY_A) {
    try {
      await Sandbox.getInfo(id, opts({ apiKey }));
      return false;
    } catch (error) {
      return error instanceof SandboxNotFoundError;
    }
  }

  let shared;  // the sandbox most cases use, made by the first
  testCase("create gives a running sandbox of the default template", async () => {
    shared = await create({ metadata: { suite: "e2b-sdk-test" }, envs: { FROM_CREATE: "yes" } });
    assert.match(shared.sandboxId, /\S/);
    assert.equal(await shared.isRunning(), true);
    const info = await shared.getInfo();
    assert.equal(info.sandboxId, shared.sandboxId);
    assert.equal(info.templateId, "code-interpreter-v1");
    assert.equal(info.state, "running");
    assert.deepEqual(info.metadata, { suite: "e2b-sdk-test" });
    assert.ok(info.endAt > info.startedAt, `endAt ${info.endAt} after startedAt ${info.startedAt}`);
    assert.match(info.envdVersion, /^\d+\.\d+\.\d+/);
  });

  testCase("runCode keeps state across calls", async () => {
    const first = await shared.runCode("x = 1");
    assert.equal(first.error, undefined, JSON.stringify(first.error));
    const second = await shared.runCode("x + 1");
    assert.equal(second.error, undefined, JSON.stringify(second.error));
    assert.equal(second.text, "2");
    assert.ok(second.results.some((result) => result.isMainResult && result.text === "2"));
  });

  testCase("stdout and stderr callbacks get the text, in order", async () => {
    const seen = [];
    const execution = await shared.runCode(
      "import sys\n" +
      "print('out one', flush=True)\n" +
      "print('err one', file=sys.stderr, flush=True)\n" +
      "print('out two', flush=True)\n",
      {
        onStdout: (message) => seen.push(["stdout", message.line]),
        onStderr: (message) => seen.push(["stderr", message.line]),
      });
    assert.equal(execution.error, undefined, JSON.stringify(execution.error));
    assert.deepEqual(seen, [["stdout", "out one\n"], ["stderr", "err one\n"], ["stdout", "out two\n"]]);
    assert.equal(execution.logs.stdout.join(""), "out one\nout two\n");
    assert.equal(execution.logs.stderr.join(""), "err one\n");
  });

  testCase("javascript and bash code keep their state too, in contexts of their own", async () => {
    await shared.runCode("var seen = [1, 2]; let total = 40", opts({ language: "js" }));
    const js = await shared.runCode("await Promise.resolve(); console.log('js'); total + seen.length", opts({ language: "js" }));
    assert.equal(js.error, undefined, JSON.stringify(js.error));
    assert.deepEqual(js.logs.stdout, ["js\n"]);
    assert.equal(js.text, "42");
    const thrown = await shared.runCode("undefinedThing.x", opts({ language: "js" }));
    assert.equal(thrown.error?.name, "ReferenceError");

    await shared.runCode("cd /tmp; GREETING=hello", opts({ language: "bash" }));
    const bash = await shared.runCode("echo $GREETING from $(pwd)", opts({ language: "bash" }));
    assert.deepEqual(bash.logs.stdout, ["hello from /tmp\n"]);
    const failed = await shared.runCode("false", opts({ language: "bash" }));
    assert.equal(failed.error?.name, "ExitCode");
    const python = await shared.runCode("'python' + ' still'", opts());
    assert.equal(python.text, "'python still'");
    const languages = (await shared.listCodeContexts()).map((c) => c.language).sort();
    assert.ok(["bash", "javascript", "python"].every((l) => languages.includes(l)), JSON.stringify(languages));
  });

  testCase("what starts in a sandbox is in the audit log: commands by command line, code by hash", async () => {
    await shared.commands.run("echo audited-command", opts());
    const code = "print('audited code')";
    await shared.runCode(code, opts());
    const records = readFileSync(join(server.stateDir, "audit.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const ours = records.filter((r) => r.workspace_id === shared.sandboxId);
    assert.ok(ours.some((r) => r.event === "workspace_created" && r.key === "e2b-a" && r.policy === "default"), JSON.stringify(ours));
    assert.ok(ours.some((r) => r.event === "workspace_process" && r.detail === "/bin/bash -l -c echo audited-command"),
      JSON.stringify(ours.filter((r) => r.event === "workspace_process")));
    assert.ok(ours.some((r) => r.event === "workspace_code" && r.detail === `python, ${code.length} bytes, sha256 ${sha256(code)}`),
      JSON.stringify(ours.filter((r) => r.event === "workspace_code")));
  });

  testCase("an error is reported by name, without throwing", async () => {
    const execution = await shared.runCode("undefined_name_here");
    assert.ok(execution.error, "no error reported");
    assert.equal(execution.error.name, "NameError");
    assert.match(execution.error.value, /undefined_name_here/);
    assert.match(execution.error.traceback, /NameError/);
    const after = await shared.runCode("x + 41");  // the context survives its error
    assert.equal(after.text, "42");
  });

  testCase("create-time envs reach code and commands", async () => {
    const code = await shared.runCode("import os\nos.environ.get('FROM_CREATE')");
    assert.equal(code.text, "'yes'");
    const command = await shared.commands.run("echo $FROM_CREATE", opts());
    assert.equal(command.stdout, "yes\n");
  });

  testCase("a matplotlib chart comes back as a png result", async () => {
    if (!hostHasMatplotlib()) {
      console.log("    skipped: the host's python3 has no matplotlib (scripts/deps.sh installs it)");
      return;
    }
    const execution = await shared.runCode(
      "import matplotlib.pyplot as plt\n" +
      "plt.plot([1, 2, 3], [3, 1, 2])\n" +
      "plt.title('chart')\n" +
      "plt.show()\n");
    assert.equal(execution.error, undefined, JSON.stringify(execution.error));
    const pngs = execution.results.filter((result) => result.png);
    assert.equal(pngs.length, 1, JSON.stringify(execution.results.map((r) => r.formats())));
    assert.ok(Buffer.from(pngs[0].png, "base64").subarray(0, 8).equals(
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), "not a PNG");
  });

  testCase("files: write, read and list; code sees them and its files are readable", async () => {
    const written = await shared.files.write("/home/user/data/in.txt", "hello from the sdk");
    assert.equal(written.path, "/home/user/data/in.txt");
    assert.equal(written.name, "in.txt");
    assert.equal(await shared.files.read("/home/user/data/in.txt"), "hello from the sdk");
    const entries = await shared.files.list("/home/user/data");
    const entry = entries.find((e) => e.name === "in.txt");
    assert.ok(entry, JSON.stringify(entries));
    assert.equal(entry.type, "file");
    assert.equal(entry.path, "/home/user/data/in.txt");
    assert.equal(entry.size, "hello from the sdk".length);
    assert.equal(await shared.files.exists("/home/user/data/in.txt"), true);
    assert.equal(await shared.files.exists("/home/user/data/absent.txt"), false);

    const seen = await shared.runCode("open('/home/user/data/in.txt').read()");
    assert.equal(seen.text, "'hello from the sdk'");
    const wrote = await shared.runCode("open('made_by_code.txt', 'w').write('from code')");
    assert.equal(wrote.error, undefined, JSON.stringify(wrote.error));
    assert.equal(await shared.files.read("/home/user/made_by_code.txt"), "from code");
    assert.equal(await shared.files.read("made_by_code.txt"), "from code");  // relative to home

    const bytes = Uint8Array.from([0, 1, 2, 250, 255]);
    await shared.files.write("/home/user/bytes.bin", bytes);
    assert.deepEqual(await shared.files.read("/home/user/bytes.bin", { format: "bytes" }), bytes);

    // Several of the agent's 1 MiB reads: streamed, each chunk read as the client takes it.
    const bigSize = 3_500_000;
    const made = await shared.runCode(
      `open('big.bin', 'wb').write(bytes(i % 251 for i in range(${bigSize})))`);
    assert.equal(made.error, undefined, JSON.stringify(made.error));
    const big = await shared.files.read("/home/user/big.bin", { format: "bytes" });
    assert.equal(big.length, bigSize);
    assert.ok(big.every((byte, i) => byte === i % 251), "the big file came back altered");

    const many = await shared.files.write([
      { path: "/home/user/many/a.txt", data: "A" },
      { path: "/home/user/many/b.txt", data: "B" },
    ]);
    assert.deepEqual(many.map((info) => info.path), ["/home/user/many/a.txt", "/home/user/many/b.txt"]);
    assert.equal(await shared.files.read("/home/user/many/b.txt"), "B");

    assert.equal(await shared.files.makeDir("/home/user/newdir"), true);
    assert.equal(await shared.files.makeDir("/home/user/newdir"), false);  // already there
    const moved = await shared.files.rename("/home/user/many/a.txt", "/home/user/newdir/a.txt");
    assert.equal(moved.path, "/home/user/newdir/a.txt");
    await shared.files.remove("/home/user/many");
    assert.equal(await shared.files.exists("/home/user/many"), false);
    await assert.rejects(shared.files.read("/home/user/many/b.txt"), (error) => error.name === "FileNotFoundError");
  });

  testCase("commands: output, exit codes, streaming callbacks", async () => {
    const ok = await shared.commands.run("echo out; echo err >&2", opts());
    assert.equal(ok.exitCode, 0);
    assert.equal(ok.stdout, "out\n");
    assert.equal(ok.stderr, "err\n");

    await assert.rejects(shared.commands.run("echo partial; exit 3", opts()), (error) => {
      assert.ok(error instanceof CommandExitError, `${error.name}: ${error.message}`);
      assert.equal(error.exitCode, 3);
      assert.equal(error.stdout, "partial\n");
      return true;
    });

    const started = Date.now();
    const chunks = [];
    const streamed = await shared.commands.run(
      "for i in 1 2 3; do echo line$i; sleep 0.3; done; echo done >&2",
      opts({
        onStdout: (data) => chunks.push({ at: Date.now() - started, stream: "stdout", data }),
        onStderr: (data) => chunks.push({ at: Date.now() - started, stream: "stderr", data }),
      }));
    const finished = Date.now() - started;
    assert.equal(streamed.stdout, "line1\nline2\nline3\n");
    assert.equal(chunks.filter((c) => c.stream === "stdout").map((c) => c.data).join(""), streamed.stdout);
    assert.equal(chunks.filter((c) => c.stream === "stderr").map((c) => c.data).join(""), "done\n");
    // Streamed as written: the first line arrives well before the command ends.
    assert.ok(chunks[0].at < finished - 400, `first output at ${chunks[0].at} ms, end at ${finished} ms`);
  });

  testCase("commands: envs, cwd and stdin", async () => {
    const result = await shared.commands.run("echo $GREETING; pwd", opts({ envs: { GREETING: "hi there" }, cwd: "/tmp" }));
    assert.equal(result.stdout, "hi there\n/tmp\n");
    const home = await shared.commands.run("pwd; echo $HOME; whoami; stat -c %U .", opts());
    assert.deepEqual(home.stdout.split("\n"), ["/home/user", "/home/user", "user", "user", ""]);

    const cat = await shared.commands.run("cat", opts({ background: true, stdin: true }));
    await cat.sendStdin("piped\n");
    await cat.closeStdin();
    const catted = await cat.wait();
    assert.equal(catted.stdout, "piped\n");
  });

  testCase("a background command is listed, reconnected to and killed", async () => {
    const handle = await shared.commands.run("sleep 300", opts({ background: true, timeoutMs: 0 }));
    assert.ok(handle.pid > 0);
    const listed = await shared.commands.list(opts());
    const mine = listed.find((p) => p.pid === handle.pid);
    assert.ok(mine, JSON.stringify(listed));
    assert.equal(mine.cmd, "/bin/bash");
    assert.deepEqual(mine.args, ["-l", "-c", "sleep 300"]);

    const again = await shared.commands.connect(handle.pid, opts({ timeoutMs: 0 }));
    assert.equal(again.pid, handle.pid);
    assert.equal(await handle.kill(), true);
    await assert.rejects(again.wait());  // killed: no zero exit
    await assert.rejects(handle.wait());
    assert.ok(await waitFor(async () => !(await shared.commands.list(opts())).some((p) => p.pid === handle.pid), GONE_LIMIT_MS),
      "the killed command is still listed");
    assert.equal(await shared.commands.kill(handle.pid, opts()), false);  // not found any more
  });

  let other;
  testCase("two sandboxes are isolated from each other", async () => {
    other = await create();
    assert.notEqual(other.sandboxId, shared.sandboxId);
    await shared.files.write("/home/user/only-in-first.txt", "first");
    assert.equal(await other.files.exists("/home/user/only-in-first.txt"), false);
    const listing = await other.commands.run("ls -A /home/user; ls /tmp", opts());
    assert.doesNotMatch(listing.stdout, /only-in-first/);
    const code = await other.runCode("'x' in globals()");
    assert.equal(code.text, "False");  // the first's interpreter state is not here
    const sleeper = await shared.commands.run("sleep 300", opts({ background: true, timeoutMs: 0 }));
    try {
      const theirs = await other.commands.list(opts());
      assert.ok(!theirs.some((p) => p.args?.includes("sleep 300")), JSON.stringify(theirs));
      const ps = await other.commands.run("ps -eo args 2>/dev/null || ls /proc", opts());
      assert.doesNotMatch(ps.stdout, /sleep 300/);
    } finally {
      await sleeper.kill();
    }
  });

  testCase("Sandbox.list shows ours, with metadata and filters", async () => {
    const ids = await listIds();
    assert.ok(ids.includes(shared.sandboxId), JSON.stringify(ids));
    assert.ok(ids.includes(other.sandboxId), JSON.stringify(ids));
    const filtered = await listIds(KEY_A, { metadata: { suite: "e2b-sdk-test" } });
    assert.deepEqual(filtered, [shared.sandboxId]);
    const running = await listIds(KEY_A, { state: ["running"] });
    assert.ok(running.includes(shared.sandboxId));
  });

  testCase("connect reaches the same sandbox and its state", async () => {
    const again = await Sandbox.connect(shared.sandboxId, opts());
    assert.equal(again.sandboxId, shared.sandboxId);
    const execution = await again.runCode("x + 1");
    assert.equal(execution.text, "2");
  });

  testCase("sandbox traffic with a wrong token is answered before its body is sent", async () => {
    // Only the head of a 10 MB upload: the service must not wait for (or read) a stranger's body.
    const answer = await new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      let text = "";
      const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer: ${text}`)); }, 5000);
      socket.on("data", (chunk) => { text += chunk; });
      socket.on("error", reject);
      socket.on("close", () => { clearTimeout(timer); resolve(text); });
      socket.write(`POST /e2b/sandbox/files?path=/home/user/x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        `E2b-Sandbox-Id: ${shared.sandboxId}\r\nE2b-Sandbox-Port: 49983\r\nX-Access-Token: wrong\r\n` +
        "Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n");
    });
    assert.match(answer, /^HTTP\/1\.1 502 /, answer);
    assert.match(answer, /The sandbox was not found/, answer);
  });

  testCase("a second key can neither see nor kill the first key's sandbox", async () => {
    const theirs = await listIds(KEY_B);
    assert.ok(!theirs.includes(shared.sandboxId), JSON.stringify(theirs));
    await assert.rejects(Sandbox.getInfo(shared.sandboxId, opts({ apiKey: KEY_B })), SandboxNotFoundError);
    await assert.rejects(Sandbox.connect(shared.sandboxId, opts({ apiKey: KEY_B })), SandboxNotFoundError);
    await assert.rejects(Sandbox.setTimeout(shared.sandboxId, 60_000, opts({ apiKey: KEY_B })), SandboxNotFoundError);
    assert.equal(await Sandbox.kill(shared.sandboxId, opts({ apiKey: KEY_B })), false);
    assert.equal(await shared.isRunning(), true);
  });

  testCase("a wrong API key is refused", async () => {
    await assert.rejects(Sandbox.create(opts({ apiKey: "e2b_not_a_key_of_this_service" })),
      (error) => error.name === "AuthenticationError");
  });

  testCase("kill leaves nothing: gone from the list, later calls say not found", async () => {
    const doomed = await create();
    await doomed.files.write("/home/user/x.txt", "x");
    assert.equal(await doomed.kill(), true);
    assert.ok(!(await listIds()).includes(doomed.sandboxId));
    await assert.rejects(Sandbox.getInfo(doomed.sandboxId, opts()), SandboxNotFoundError);
    await assert.rejects(Sandbox.connect(doomed.sandboxId, opts()), SandboxNotFoundError);
    assert.equal(await Sandbox.kill(doomed.sandboxId, opts()), false);
    assert.equal(await doomed.isRunning(), false);
    // Sandbox traffic for a dead sandbox: the SDK's "not running" errors.
    await assert.rejects(doomed.commands.run("true", opts()),
      (error) => error instanceof SandboxNotFoundError || error instanceof TimeoutError);
    await assert.rejects(doomed.runCode("1"), (error) => error instanceof TimeoutError || error.name === "NotFoundError");
  });

  testCase("a sandbox past its timeout is gone", async () => {
    const started = Date.now();
    const brief = await create({ timeoutMs: 2_000 });
    assert.ok(await waitFor(() => isGone(brief.sandboxId), GONE_LIMIT_MS), "still there");
    assert.ok(Date.now() - started >= 1_500, "gone before its timeout");
    assert.ok(!(await listIds()).includes(brief.sandboxId));
  });

  testCase("setTimeout extends a sandbox's life", async () => {
    const extended = await create({ timeoutMs: 2_000 });
    await extended.setTimeout(60_000);
    await sleep(3_500);
    assert.equal(await isGone(extended.sandboxId), false);
    const info = await extended.getInfo();
    assert.ok(info.endAt.getTime() > Date.now() + 30_000, `endAt ${info.endAt.toISOString()}`);
    assert.equal((await extended.runCode("6 * 7")).text, "42");
    await extended.setTimeout(1_000);  // it can shorten too
    assert.ok(await waitFor(() => isGone(extended.sandboxId), GONE_LIMIT_MS), "not gone after a shorter timeout");
  });

  testCase("the per-key cap answers the SDK's rate-limit error", async () => {
    const mine = [];
    let refusal;
    try {
      for (let i = 0; i < SERVICE_CAP + 1 && !refusal; i++) {
        try {
          mine.push(await create({ apiKey: KEY_B }));
        } catch (error) {
          refusal = error;
        }
      }
      assert.ok(refusal, `no refusal after ${mine.length} sandboxes`);
      assert.ok(refusal instanceof RateLimitError, `${refusal.name}: ${refusal.message}`);
      assert.equal(refusal.statusCode, 429);
      assert.ok(mine.length >= 1 && mine.length < SERVICE_CAP, `${mine.length} before the cap`);
      // The first key is not affected by the second's cap.
      const stillFine = await create();
      await stillFine.kill();
    } finally {
      for (const sandbox of mine) await sandbox.kill().catch(() => {});
    }
    const after = await create({ apiKey: KEY_B });  // a killed sandbox frees its place
    await after.kill();
  });

  testCase("unsupported features answer a clear error", async () => {
    await assert.rejects(Sandbox.create("custom-template", opts()), (error) => {
      assert.ok(error instanceof SandboxError, `${error.name}: ${error.message}`);
      assert.match(error.message, /template/i);
      return true;
    });
    await assert.rejects(shared.pause(opts()), (error) => {
      assert.ok(error instanceof SandboxError, `${error.name}: ${error.message}`);
      assert.match(error.message, /pause|not supported|unsupported/i);
      return true;
    });
    assert.equal(await shared.isRunning(), true);  // a refused pause changed nothing
  });

  testCase("terminals, other languages, network rules, other users and overlong timeouts are refused", async () => {
    const refusedWith = (pattern) => (error) => {
      assert.ok(error instanceof SandboxError, `${error.name}: ${error.message}`);
      assert.match(error.message, pattern);
      return true;
    };
    await assert.rejects(shared.pty.create({ cols: 80, rows: 24, onData: () => {} }), refusedWith(/pty/));
    // The code interpreter's SDK shows only the status of a refused context, not its message.
    await assert.rejects(shared.createCodeContext({ language: "r" }), refusedWith(/400/));
    await assert.rejects(create({ network: { allowOut: ["1.1.1.1"] } }), refusedWith(/network/));
    await assert.rejects(create({ timeoutMs: 2 * 3600_000 }), refusedWith(/timeout.*at most 1 h/));
    await assert.rejects(create({ allowInternetAccess: true }), refusedWith(/allowInternetAccess.*no network/));
    // Another user, for commands as for files: refused, never silently run as "user".
    const asUser = /runs everything in a sandbox as "user"/;
    await assert.rejects(shared.commands.run("id", opts({ user: "root" })), (error) => asUser.test(error.message));
    await assert.rejects(shared.files.write("x.txt", "x", opts({ user: "root" })), (error) => asUser.test(error.message));
    await assert.rejects(shared.files.list(".", opts({ user: "root" })), (error) => asUser.test(error.message));
    assert.equal((await shared.commands.run("whoami", opts({ user: "user" }))).stdout, "user\n");
    assert.equal(await shared.isRunning(), true);
  });

  testCase("the policy is default_policy or the one named in metadata, if the key may use it", async () => {
    await assert.rejects(create({ metadata: { "airlock.policy": "python" } }), (error) => {
      assert.ok(error instanceof SandboxError, `${error.name}: ${error.message}`);
      assert.match(error.message, /403.*may not use policy "python"/);
      return true;
    });
    const named = await create({ metadata: { "airlock.policy": "default" } });
    assert.deepEqual((await named.getInfo()).metadata, { "airlock.policy": "default" });
    await named.kill();
  });

  testCase("the base SDK's Sandbox works too (template base)", async () => {
    const base = await e2b.Sandbox.create(opts());
    made.push({ id: base.sandboxId, apiKey: KEY_A });
    const info = await base.getInfo();
    assert.equal(info.templateId, "base");
    const result = await base.commands.run("python3 -c 'print(6 * 7)'", opts());
    assert.equal(result.stdout, "42\n");
    await base.kill();
  });

  let failures = 0;
  let ran = 0;
  try {
    for (const [index, { name, body }] of cases.entries()) {
      if (only && index > 0 && !only.test(name)) continue;  // the first makes the shared sandbox
      ran++;
      const started = Date.now();
      try {
        await body();
        console.log(`ok   ${name} (${Date.now() - started} ms)`);
      } catch (error) {
        failures++;
        console.log(`FAIL ${name} (${Date.now() - started} ms)\n     ${String(error?.stack ?? error).split("\n").join("\n     ")}`);
      }
    }
  } finally {
    for (const { id, apiKey } of made) await Sandbox.kill(id, opts({ apiKey })).catch(() => {});
  }

  // Once every sandbox is killed, all that is left is the spare the service keeps started for the
  // next create (e2b.spares: 1, one policy used): an agent with its kernel, one cgroup, one
  // working dir. Once the service stops, not even that.
  const held = () => ({
    processes: descendantsOf(server.child.pid).filter((p) => !baseline.has(p)),
    cgroups: runCgroupsOf(server.child.pid),
    dirs: leftoverDirs(server.stateDir),
  });
  const describe = (h) => [...h.processes.map((p) => "process " + p),
    ...h.cgroups.map((d) => "cgroup " + d), ...h.dirs.map((d) => "dir " + d)];
  const justTheSpare = (h) => h.cgroups.length === 1 &&
    h.dirs.filter((d) => !d.startsWith("mount ")).length === 1 &&
    h.processes.filter((p) => p.includes("envd_agent.py")).length === 1 &&
    h.processes.every((p) => /airlock-init|envd_agent\.py|envd_kernel\.py/.test(p));
  const report = (ok, name, lines) => {
    if (ok) return console.log(`ok   ${name}`);
    failures++;
    console.log(`FAIL ${name}\n     ` + lines.join("\n     "));
  };
  const settled = await waitFor(() => justTheSpare(held()), GONE_LIMIT_MS);
  const spare = held();
  report(settled, "nothing is left behind but the one spare sandbox", describe(spare));

  server.child.kill("SIGTERM");
  await new Promise((resolve) => {
    if (server.child.exitCode !== null) return resolve();
    server.child.once("exit", resolve);
  });
  const mounted = () => readFileSync("/proc/self/mountinfo", "utf8").split("\n").map((l) => l.split(" ")[4]);
  const stillThere = () => [
    ...spare.processes.filter((p) => existsSync("/proc/" + p.split(" ")[0])).map((p) => "process " + p),
    ...spare.cgroups.filter((d) => existsSync(d)).map((d) => "cgroup " + d),
    ...spare.dirs.filter((d) => d.startsWith("mount ") ? mounted().includes(d.slice(6)) : existsSync(d))
      .map((d) => "dir " + d),
  ];
  const ended = await waitFor(() => stillThere().length === 0, GONE_LIMIT_MS);
  report(ended, "the service's stop ends its spare", stillThere());
  ran++;
  if (failures > 0) {
    console.log(`e2b sdk test: ${failures} of ${ran + 1} failed; the service's log:\n` + server.logs.slice(-80).join("\n"));
    rmSync(server.dir, { recursive: true, force: true });
    process.exit(1);
  }
  rmSync(server.dir, { recursive: true, force: true });
  console.log(`e2b sdk test: ok (${ran} cases)`);
  process.exit(0);  // the SDKs' keep-alive connections would hold the event loop open
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
