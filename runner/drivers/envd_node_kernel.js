// airlock's JavaScript kernel for E2B code contexts (language "javascript"): envd_agent.py starts
// one per context as `node envd_node_kernel.js <cwd>` in a new session, with the workspace's envs
// already in its environment (envd_kernel.spawn). It speaks envd_kernel.py's framing: requests
// are JSON lines on stdin, {"code", "envs"} or {"set_envs"}; events are JSON lines on fd 3, E2B's
// "stdout", "stderr", "result" and "error", then {"type": "done"}.
//
// Code runs as a line typed into Chrome's console does: V8's inspector evaluates it in REPL mode
// (as Deno's REPL and Jupyter kernel do), in this process's own global scope. So top-level
// await works, and every top-level declaration persists across runs, let and const too, which a
// later run may even declare again. The value the code completes with is the main result
// (text = util.inspect). console.* writes are events on fd 3, in order with results; what reaches
// fds 1 and 2 directly (process.stdout, child processes) the agent streams as it arrives.
// SIGINT interrupts synchronous code (vm's breakOnSigint) and abandons a run awaiting a promise;
// either way the run ends with a KeyboardInterrupt error and the state is kept. Not reliable at
// one moment: a SIGINT that lands in the inspector's own part of an evaluation (as the code goes
// async) may be lost, or leave V8's inspector unable to find the global context, so that later
// runs fail ("Cannot find context with specified id") until the context is restarted.
'use strict';

const fs = require('fs');
const inspector = require('inspector');
const Module = require('module');
const net = require('net');
const path = require('path');
const { Writable } = require('stream');
const util = require('util');
const vm = require('vm');

const CONTROL_FD = 3;
const MAX_EVENT_BYTES = 7 << 20; // below the agent's 8 MiB line cap, leaving room for its framing
const MAX_TEXT_CHARS = 1 << 16;

// A copy of an inherited fd that is close-on-exec (node opens everything so), made through
// /proc, and the inherited one closed: node cannot mark an fd close-on-exec itself, and the
// code's child processes must not get the agent's pipes. Without /proc the fd stays as it is.
function privateCopy(fd, flags) {
  try {
    const copy = fs.openSync(`/proc/self/fd/${fd}`, flags);
    fs.closeSync(fd);
    return copy;
  } catch (error) {
    process.stderr.write(`envd_node_kernel: fd ${fd} stays inheritable: ${error.message}\n`);
    return fd;
  }
}

const control = privateCopy(CONTROL_FD, 'w');
const requestsFd = privateCopy(0, 'r');
if (requestsFd !== 0) {
  fs.openSync('/dev/null', 'r'); // takes fd 0, the code's stdin
}

function writeAll(fd, data) {
  for (let done = 0; done < data.length;) {
    try {
      done += fs.writeSync(fd, data, done);
    } catch (error) {
      if (error.code !== 'EAGAIN') throw error;
    }
  }
}

function emit(event) {
  let line = JSON.stringify(event) + '\n';
  if (Buffer.byteLength(line) > MAX_EVENT_BYTES) {
    line = JSON.stringify({
      type: 'error', name: 'OutputTooLarge',
      value: `a ${event.type} of ${Buffer.byteLength(line)} bytes exceeds the limit`,
      traceback: '',
    }) + '\n';
  }
  writeAll(control, Buffer.from(line));
}

function emitText(type, text) {
  for (let start = 0; start < text.length; start += MAX_TEXT_CHARS) {
    emit({ type, text: text.slice(start, start + MAX_TEXT_CHARS),
           timestamp: Date.now() * 1000 });
  }
}

// console.* goes out as events, so its output keeps its order with results and errors.
function eventStream(type) {
  return new Writable({
    decodeStrings: false,
    write(chunk, encoding, done) {
      emitText(type, typeof chunk === 'string' ? chunk : chunk.toString());
      done();
    },
  });
}

// A stack without the kernel's own frames (those from the inspector's call on): the code's.
function codeStack(stack) {
  const lines = String(stack ?? '').split('\n');
  const ours = lines.findIndex((line) => line.includes('(node:inspector:'));
  return (ours < 0 ? lines : lines.slice(0, ours)).join('\n');
}

function errorEvent(thrown) {
  if (thrown instanceof Error || (thrown && typeof thrown === 'object' && 'stack' in thrown)) {
    return { type: 'error', name: String(thrown.name || 'Error'),
             value: String(thrown.message ?? ''), traceback: codeStack(thrown.stack) };
  }
  const shown = util.inspect(thrown);
  return { type: 'error', name: 'Error', value: shown, traceback: `Uncaught ${shown}` };
}

// --- Evaluation through the inspector -----------------------------------------------------------

let session = null;

function post(method, params) {
  return new Promise((resolve, reject) => {
    session.post(method, params, (error, reply) => (error ? reject(error) : resolve(reply)));
  });
}

// The inspector hands back a handle on a value; this function, called on it, hands over the
// value itself (for util.inspect, or an error's name and stack).
let taken;
let takeId;
globalThis[Symbol.for('airlock.take')] = (value) => { taken = value; };

// A session of our own with the inspector.
async function connect() {
  session = new inspector.Session();
  session.connect();
  const reply = await post('Runtime.evaluate', { expression: 'globalThis[Symbol.for("airlock.take")]',
                                                 objectGroup: 'kernel' });
  takeId = reply.result.objectId;
}
const EVALUATE = Symbol.for('airlock.evaluate');
let evaluation = null;
globalThis[EVALUATE] = () => session.post('Runtime.evaluate', evaluation.params,
                                          evaluation.callback);
const evaluateScript = new vm.Script('globalThis[Symbol.for("airlock.evaluate")]()');

async function take(remote) {
  taken = undefined;
  const argument = {};
  for (const key of ['value', 'unserializableValue', 'objectId']) {
    if (remote && key in remote) argument[key] = remote[key];
  }
  await post('Runtime.callFunctionOn', {
    objectId: takeId, functionDeclaration: 'function (value) { this(value); }',
    arguments: [argument],
  });
  return taken;
}

// Evaluates code; resolves to {value} or {thrown}, or {interrupted} when SIGINT stopped it.
function evaluate(code) {
  return new Promise((resolve) => {
    const current = { settle: resolve };
    evaluation = {
      params: { expression: code, replMode: true, awaitPromise: true, objectGroup: 'run' },
      callback: (error, reply) => {
        if (current.settled) return;
        current.settled = true;
        if (error) resolve({ thrown: error });
        else if (reply.exceptionDetails) {
          take(reply.exceptionDetails.exception).then((thrown) => resolve({ thrown }),
                                                      (e) => resolve({ thrown: e }));
        } else {
          take(reply.result).then((value) => resolve({ value }), (e) => resolve({ thrown: e }));
        }
      },
    };
    running = current;
    try {
      evaluateScript.runInThisContext({ breakOnSigint: true });
    } catch (error) {
      if (!current.settled) {
        current.settled = true;
        resolve(error.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED' ? { interrupted: true }
                                                                 : { thrown: error });
      }
    }
  });
}

let running = null; // the evaluation in progress, which a SIGINT while it awaits abandons
process.on('SIGINT', () => {
  if (running && !running.settled) {
    running.settled = true;
    running.settle({ interrupted: true });
  }
});

// --- Requests -----------------------------------------------------------------------------------

async function run(request) {
  const envs = request.envs || {};
  const saved = {};
  for (const [name, value] of Object.entries(envs)) {
    saved[name] = process.env[name];
    process.env[name] = value;
  }
  try {
    const outcome = await evaluate(String(request.code ?? ''));
    running = null;
    if (outcome.interrupted) {
      emit({ type: 'error', name: 'KeyboardInterrupt', value: '',
             traceback: 'KeyboardInterrupt: the run was interrupted\n' });
    } else if ('thrown' in outcome) {
      emit(errorEvent(outcome.thrown));
    } else if (outcome.value !== undefined) {
      emit({ type: 'result', text: util.inspect(outcome.value), is_main_result: true,
             extra: {} });
    }
  } catch (error) {
    emit(errorEvent(error));
  } finally {
    session.post('Runtime.releaseObjectGroup', { objectGroup: 'run' });
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

let queue = Promise.resolve();
function handle(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (error) {
    process.stderr.write(`envd_node_kernel: bad request: ${error.message}\n`);
    return;
  }
  queue = queue.then(async () => {
    if (request.set_envs) {
      Object.assign(process.env, request.set_envs);
    } else {
      await run(request);
    }
    emit({ type: 'done' });
  });
}

async function main() {
  try {
    process.chdir(process.argv[2] || '.');
  } catch (error) {
    process.stderr.write(`envd_node_kernel: cwd: ${error.message}\n`);
  }
  await connect();
  // What a REPL offers: require relative to the cwd, and console writing events.
  globalThis.require = Module.createRequire(path.join(process.cwd(), '<repl>'));
  globalThis.console = new console.Console({ stdout: eventStream('stdout'),
                                             stderr: eventStream('stderr') });
  // An error nobody catches (a callback's, a rejected promise's) is reported, not fatal.
  process.on('uncaughtException', (error) => emitText('stderr', `Uncaught ${util.inspect(error)}\n`));
  process.on('unhandledRejection', (reason) => {
    emitText('stderr', `Uncaught (in promise) ${util.inspect(reason)}\n`);
  });
  const requests = new net.Socket({ fd: requestsFd, readable: true, writable: false });
  let pending = '';
  requests.setEncoding('utf8');
  requests.on('data', (chunk) => {
    const lines = (pending + chunk).split('\n');
    pending = lines.pop();
    for (const line of lines) if (line) handle(line);
  });
  requests.on('end', () => process.exit(0)); // the agent is gone
}

main().catch((error) => {
  process.stderr.write(`envd_node_kernel: ${error.stack}\n`);
  process.exit(1);
});
