// Drives airlock's /mcp endpoint with the official MCP TypeScript SDK client: connect, list the
// tools, run code, use a session across two calls, and see a failed run come back as a tool
// result with isError. Usage: node mcp_client_test.mjs AIRLOCK_BINARY
import { startServe } from "../helpers/airlock_serve.mjs";
import { mkdtempSync, mkdirSync, writeFileSync, chmodSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const KEY = "test-key";
const KEY_SHA256 = "62af8704764faf8ea82fc61ce9c4c3908b6cb97d463a634e9e587d7c885db0ef";

function startServer(airlock) {
  const dir = mkdtempSync(join(tmpdir(), "airlock-mcp-test-"));
  chmodSync(dir, 0o755);  // the sandboxed program runs as another user
  mkdirSync(join(dir, "state"));
  const config = join(dir, "serve.yaml");
  writeFileSync(config, [
    'listen: "127.0.0.1:0"',
    `state_dir: "${join(dir, "state")}"`,
    "api_keys:",
    "  - name: test",
    `    sha256: ${KEY_SHA256}`,
    "    policies: [default]",
  ].join("\n") + "\n");
  const { child, port, logs } = startServe(airlock, config);
  return { child, dir, port, logs };
}

function text(result) {
  return result.content.filter((block) => block.type === "text").map((block) => block.text).join("\n");
}

async function main() {
  const server = startServer(process.argv[2]);
  let client;
  try {
    const port = await server.port;
    const transport = new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${KEY}` } },
    });
    client = new Client({ name: "airlock-test", version: "1.0.0" });
    await client.connect(transport);

    const { tools } = await client.listTools();
    const names = tools.map((tool) => tool.name).sort();
    for (const name of ["run_code", "create_session", "close_session", "list_runtimes", "read_session_file", "write_session_file"]) {
      assert.ok(names.includes(name), `tools/list lacks ${name}: ${names}`);
    }
    const runCode = tools.find((tool) => tool.name === "run_code");
    assert.ok(runCode.inputSchema.properties.code.description.length > 0);
    assert.deepEqual(runCode.inputSchema.required, ["code"]);

    const once = await client.callTool({ name: "run_code", arguments: { runtime: "python", code: "print(6 * 7)" } });
    assert.equal(once.isError, false, text(once));
    assert.match(text(once), /stdout:\n42\n/);

    const failed = await client.callTool({ name: "run_code", arguments: { language: "python", code: "raise ValueError('nope')" } });
    assert.equal(failed.isError, true);
    assert.match(text(failed), /ValueError: nope/);

    const created = await client.callTool({ name: "create_session", arguments: { runtime: "python" } });
    assert.equal(created.isError, false, text(created));
    const sessionId = text(created).match(/se_[0-9a-f]+/)[0];
    const first = await client.callTool({ name: "run_code", arguments: { session_id: sessionId, code: "total = 40\nopen('note.txt', 'w').write('kept')" } });
    assert.equal(first.isError, false, text(first));
    const second = await client.callTool({ name: "run_code", arguments: { session_id: sessionId, code: "total + 2" } });
    assert.equal(second.isError, false, text(second));
    assert.match(text(second), /stdout:\n42\n/);
    const file = await client.callTool({ name: "read_session_file", arguments: { session_id: sessionId, path: "note.txt" } });
    assert.match(text(file), /kept/);
    const closed = await client.callTool({ name: "close_session", arguments: { session_id: sessionId } });
    assert.equal(closed.isError, false, text(closed));
    const gone = await client.callTool({ name: "run_code", arguments: { session_id: sessionId, code: "total" } });
    assert.equal(gone.isError, true);
    console.log("mcp client test: ok");
  } finally {
    if (client) await client.close().catch(() => {});
    server.child.kill("SIGTERM");
    await new Promise((resolve) => server.child.once("exit", resolve));
    rmSync(server.dir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
