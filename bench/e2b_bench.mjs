#!/usr/bin/env node
// E2B through the official SDK: `Sandbox.create()` to the first `runCode` result, the way an agent
// framework pays it, against `airlock serve` on this machine; with the same run's baselines.
// Prints a Markdown table (p50 / p90 / p99 / mean, ms). Rows, all interleaved round by round:
//   e2b create → first runCode    @e2b/code-interpreter Sandbox.create() then runCode("print(1)"),
//                                 with a spare sandbox ready (e2b.spares: 1, the default; the other
//                                 rows of a round give the service time to replace the one taken)
//     create alone                the POST /v2/sandboxes part of it
//     first runCode alone         the POST /execute part of it
//     kill                        sandbox.kill() afterwards (not in the total)
//     with no spare               the same against a second service with e2b.spares: 0, where
//                                 every create starts a sandbox, the agent and its kernel
//   REST session + first execute  POST /v1/sessions {runtime: python} then
//                                 POST /v1/sessions/{id}/executions {code: print(1)} (closed after)
//   airlock run (cold CLI)        `airlock run -- /usr/bin/python3 -c 'print(1)'`, a fresh process
// After the interleaved rounds, one more row:
//   back to back                  the e2b round again, ITERATIONS times with no pause, so most
//                                 creates find the spare still being replaced
// The SDK comes from tests/e2b/node_modules (`npm ci` there first; bench/e2b_bench.sh does it).
// usage: node bench/e2b_bench.mjs [--airlock build/airlock] [--iterations 40] [--warmup 3]
//                                 [--config-line 'warm_pool: []' ...] [--baselines-only]
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { startServe } from "../tests/helpers/airlock_serve.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const KEY = "e2b_bench0123456789abcdef0123456789";
const STARTUP_LIMIT_MS = 60_000;

function parseArgs(argv) {
  const args = { airlock: join(root, "build/airlock"), iterations: 40, warmup: 3, configLines: [], e2b: true };
  for (let i = 0; i < argv.length; i++) {
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    if (argv[i] === "--airlock") args.airlock = resolve(value());
    else if (argv[i] === "--iterations") args.iterations = Number(value());
    else if (argv[i] === "--warmup") args.warmup = Number(value());
    else if (argv[i] === "--config-line") args.configLines.push(value());
    else if (argv[i] === "--baselines-only") args.e2b = false;
    else throw new Error(`unknown argument ${argv[i]}; usage: e2b_bench.mjs [--airlock PATH] [--iterations N] [--warmup N] [--config-line LINE]...`);
  }
  if (!Number.isInteger(args.iterations) || args.iterations < 1) throw new Error("--iterations must be a positive integer");
  return args;
}

function startServer(airlock, configLines) {
  const dir = mkdtempSync(join(tmpdir(), "airlock-e2b-bench-"));
  chmodSync(dir, 0o755);  // the sandboxed programs run as another user
  mkdirSync(join(dir, "state"));
  const config = join(dir, "serve.yaml");
  writeFileSync(config, [
    'listen: "127.0.0.1:0"',
    `state_dir: "${join(dir, "state")}"`,
    ...configLines,
    "api_keys:",
    "  - name: bench",
    `    sha256: ${createHash("sha256").update(KEY).digest("hex")}`,
    "    policies: [default]",
  ].join("\n") + "\n");
  const { child, port, logs } = startServe(airlock, config, STARTUP_LIMIT_MS);
  return { child, dir, port, logs };
}

// One keep-alive connection for the REST baseline, as the SDK keeps its own.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function request(port, method, path, body) {
  return new Promise((resolveResponse, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({
      host: "127.0.0.1", port, method, path, agent,
      headers: {
        Authorization: `Bearer ${KEY}`,
        Accept: "application/json",
        ...(data ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) } : {}),
      },
    }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode >= 300) return reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`));
        resolveResponse(text ? JSON.parse(text) : undefined);
      });
    });
    req.on("error", reject);
    req.end(data);
  });
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

function row(name, samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.reduce((a, b) => a + b, 0) / sorted.length;
  const f = (x) => x.toFixed(1);
  return `| ${name} | ${f(percentile(sorted, 50))} | ${f(percentile(sorted, 90))} | ${f(percentile(sorted, 99))} | ${f(mean)} |`;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  if (!existsSync(args.airlock)) throw new Error(`no airlock binary at ${args.airlock} (scripts/build.sh)`);
  const sdk = join(root, "tests/e2b/node_modules/@e2b/code-interpreter/dist/index.mjs");
  if (!existsSync(sdk)) throw new Error("the SDK is not installed: (cd tests/e2b && npm ci --no-audit --no-fund)");

  const server = startServer(args.airlock, args.configLines);
  const spareless = args.e2b ? startServer(args.airlock, [...args.configLines, "e2b:", "  spares: 0"]) : null;
  try {
    const port = await server.port;
    const sparelessUrls = spareless ? {
      apiUrl: `http://127.0.0.1:${await spareless.port}/e2b/api`,
      sandboxUrl: `http://127.0.0.1:${await spareless.port}/e2b/sandbox`,
    } : {};
    process.env.E2B_API_URL = `http://127.0.0.1:${port}/e2b/api`;
    process.env.E2B_SANDBOX_URL = `http://127.0.0.1:${port}/e2b/sandbox`;
    process.env.E2B_API_KEY = KEY;
    delete process.env.E2B_DEBUG;
    const { Sandbox } = await import(pathToFileURL(sdk).href);

    const e2bRound = async (urls = {}) => {
      const t0 = performance.now();
      const sandbox = await Sandbox.create(urls);
      const t1 = performance.now();
      const execution = await sandbox.runCode("print(1)");
      const t2 = performance.now();
      await sandbox.kill();
      const t3 = performance.now();
      if (execution.error || execution.logs.stdout.join("") !== "1\n") {
        throw new Error(`runCode gave ${JSON.stringify(execution)}`);
      }
      return { total: t2 - t0, create: t1 - t0, run: t2 - t1, kill: t3 - t2 };
    };
    const restRound = async () => {
      const t0 = performance.now();
      const session = await request(port, "POST", "/v1/sessions", { runtime: "python" });
      const result = await request(port, "POST", `/v1/sessions/${session.id}/executions`, { code: "print(1)" });
      const t1 = performance.now();
      await request(port, "DELETE", `/v1/sessions/${session.id}`);
      if (result.status !== "ok") throw new Error(`session execution gave ${JSON.stringify(result).slice(0, 300)}`);
      return t1 - t0;
    };
    const cliRound = () => {
      const t0 = performance.now();
      const done = spawnSync(args.airlock, ["run", "--", "/usr/bin/python3", "-c", "print(1)"], { stdio: ["ignore", "pipe", "ignore"] });
      const t1 = performance.now();
      if (done.status !== 0 || done.stdout.toString() !== "1\n") throw new Error(`airlock run exited ${done.status}`);
      return t1 - t0;
    };

    for (let i = 0; i < args.warmup; i++) {
      if (args.e2b) await e2bRound();
      if (args.e2b) await e2bRound(sparelessUrls);
      await restRound();
      cliRound();
    }
    const samples = { total: [], create: [], run: [], kill: [], cold: [], rest: [], cli: [], burst: [] };
    for (let i = 0; i < args.iterations; i++) {
      if (args.e2b) {
        const e2b = await e2bRound();
        for (const key of ["total", "create", "run", "kill"]) samples[key].push(e2b[key]);
        samples.cold.push((await e2bRound(sparelessUrls)).total);
      }
      samples.rest.push(await restRound());
      samples.cli.push(cliRound());
    }
    for (let i = 0; args.e2b && i < args.iterations; i++) samples.burst.push((await e2bRound()).total);

    const commit = spawnSync("git", ["-C", root, "rev-parse", "--short", "HEAD"]).stdout?.toString().trim();
    const uname = spawnSync("uname", ["-r"]).stdout?.toString().trim();
    const cores = spawnSync("nproc").stdout?.toString().trim();
    console.log(`## E2B SDK: ${cores} cores, ${uname}, ${new Date().toISOString().slice(0, 10)}, commit ${commit}, ` +
      `${args.iterations} rounds (+${args.warmup} warm-up), node ${process.version}`);
    if (args.configLines.length) console.log(`service config: ${args.configLines.join("; ")}`);
    console.log("");
    console.log("| python print(1), one at a time | p50 ms | p90 ms | p99 ms | mean ms |");
    console.log("|---|---:|---:|---:|---:|");
    if (args.e2b) {
      console.log(row("**e2b `Sandbox.create()` → first `runCode` result**", samples.total));
      console.log(row("  create alone (`POST /v2/sandboxes`)", samples.create));
      console.log(row("  first runCode alone (`POST /execute`)", samples.run));
      console.log(row("  kill (`DELETE /sandboxes/{id}`, not in the total)", samples.kill));
      console.log(row("  with no spare (`e2b.spares: 0`): create → first runCode", samples.cold));
    }
    console.log(row("REST: `POST /v1/sessions` + first execution", samples.rest));
    console.log(row("`airlock run` (cold CLI)", samples.cli));
    if (args.e2b) console.log(row("e2b create → first runCode, back to back (no pause)", samples.burst));
  } finally {
    for (const started of [server, spareless]) {
      if (!started) continue;
      started.child.kill("SIGTERM");
      await new Promise((done) => (started.child.exitCode !== null ? done() : started.child.once("exit", done)));
      rmSync(started.dir, { recursive: true, force: true });
    }
    agent.destroy();
  }
}

main().catch((error) => {
  console.error(`e2b_bench: ${error.stack ?? error}`);
  process.exit(1);
});
