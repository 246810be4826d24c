// An MCP client behind a balancer (tests/balancer): the official SDK client connects to URL,
// keeps the Mcp-Session-Id the server gave it at initialize (the SDK sends it back on every
// request), creates sessions and uses each across calls. Prints a JSON line with the MCP session
// id and the session ids; exits non-zero on any failed check. Usage: node mcp_pinned_client.mjs URL KEY
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

function text(result) {
  return result.content.filter((block) => block.type === "text").map((block) => block.text).join("\n");
}

async function main() {
  const [url, key] = process.argv.slice(2);
  const transport = new StreamableHTTPClientTransport(new URL(url), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  const client = new Client({ name: "airlock-balancer-test", version: "1.0.0" });
  await client.connect(transport);
  try {
    assert.match(transport.sessionId ?? "", /^mcp_[a-z0-9-]+_[0-9a-f]{24}$/);
    const sessions = [];
    for (let n = 0; n < 3; ++n) {
      const created = await client.callTool({ name: "create_session", arguments: { runtime: "python" } });
      assert.equal(created.isError, false, text(created));
      const sessionId = text(created).match(/se_[a-z0-9-]+_[0-9a-f]{24}/)[0];
      const set = await client.callTool({ name: "run_code", arguments: { session_id: sessionId, code: `kept = ${n}` } });
      assert.equal(set.isError, false, text(set));
      sessions.push(sessionId);
    }
    for (const [n, sessionId] of sessions.entries()) {
      const read = await client.callTool({ name: "run_code", arguments: { session_id: sessionId, code: "kept * 10" } });
      assert.equal(read.isError, false, text(read));
      assert.match(text(read), new RegExp(`stdout:\\n${n * 10}\\n`));
      const closed = await client.callTool({ name: "close_session", arguments: { session_id: sessionId } });
      assert.equal(closed.isError, false, text(closed));
    }
    console.log(JSON.stringify({ mcp_session: transport.sessionId, sessions }));
  } finally {
    await client.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
