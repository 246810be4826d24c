// Starts `airlock serve --config CONFIG` for a test or a bench, and learns the port it listens on
// from its JSON log (its config says `listen: "127.0.0.1:0"`). Returns { child, port, logs }:
// port a promise of the number, rejected if the service exits first or, with limitMs, does not
// say it listens in time; logs the lines it wrote on stderr so far.
import { spawn } from "node:child_process";

export function startServe(airlock, config, limitMs = 0) {
  const child = spawn(airlock, ["serve", "--config", config], { stdio: ["ignore", "ignore", "pipe"] });
  const logs = [];
  const port = new Promise((resolve, reject) => {
    const timer = limitMs > 0
      ? setTimeout(() => reject(new Error("airlock serve did not say it listens")), limitMs)
      : null;
    let buffered = "";
    child.stderr.on("data", (chunk) => {
      buffered += chunk;
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        logs.push(line);
        try {
          const record = JSON.parse(line);
          if (record.msg === "listening" || record.message === "listening") {
            clearTimeout(timer);
            resolve(record.port);
          }
        } catch {}
      }
    });
    child.on("exit", () => {
      clearTimeout(timer);
      reject(new Error("airlock serve exited:\n" + logs.join("\n")));
    });
  });
  return { child, port, logs };
}
