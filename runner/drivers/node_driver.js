// airlock's Node.js driver for warm sandboxes (AIRLOCK_DRIVER_MODE=script; docs/warm_pool.md).
//
// Started ahead of any request: it loads the modules AIRLOCK_PRELOAD lists (comma-separated),
// writes "ready\n" to fd 3 and waits for one frame on fd 0, the header line
// "MARKER CODE_BYTES STDIN_BYTES\n" then the code (and no stdin: a warm execution has none).
// airlock has written the code to main.js in the working directory and closes the pipe after
// the frame, so the program reads an empty stdin, as `node main.js` does in a cold run. The
// driver then runs main.js as the main module, exactly as `node main.js` would, and ends with
// it: the exit code, an uncaught exception's report, what is still pending on the event loop are
// the program's own. Its end is reported on fd 3 as the python driver reports it (see below).
'use strict';

const fs = require('fs');
const path = require('path');
const Module = require('module');

const SOURCE = 'main.js';
const FRAMES = 0;
const CONTROL = 3;
const MAX_HEADER_BYTES = 200;

const mode = process.env.AIRLOCK_DRIVER_MODE || '';
const preload = (process.env.AIRLOCK_PRELOAD || '').split(',').filter(Boolean);
delete process.env.AIRLOCK_DRIVER_MODE;
delete process.env.AIRLOCK_PRELOAD;

if (mode !== 'script') {
  process.stderr.write(`node driver: unknown AIRLOCK_DRIVER_MODE "${mode}" (only script)\n`);
  process.exit(2);
}

for (const name of preload) {
  try {
    require(name);
  } catch (error) {
    // A preload is an optimisation: the code's own require reports what is missing.
  }
}

// The whole frame, read with blocking reads; null when the pipe ends first or the bytes are not
// a frame airlock sent.
function readFrame() {
  const chunk = Buffer.alloc(65536);
  let received = Buffer.alloc(0);
  const more = () => {
    const count = fs.readSync(FRAMES, chunk, 0, chunk.length, null);
    if (count === 0) return false;
    received = Buffer.concat([received, chunk.subarray(0, count)]);
    return true;
  };
  let end;
  while ((end = received.indexOf(10)) < 0) {
    if (received.length > MAX_HEADER_BYTES || !more()) return null;
  }
  if (end > MAX_HEADER_BYTES) return null;
  const fields = received.subarray(0, end).toString('latin1').split(' ');
  const codeBytes = Number(fields[1]);
  const stdinBytes = Number(fields[2]);
  if (fields.length !== 3 || !Number.isSafeInteger(codeBytes) || !Number.isSafeInteger(stdinBytes)) {
    return null;
  }
  while (received.length < end + 1 + codeBytes + stdinBytes) {
    if (!more()) return null;
  }
  return fields[0];
}

// What the end's report uses, taken now: the program may replace or delete any of these.
const writeSync = fs.writeSync;
const bufferFrom = Buffer.from;
const byteLength = Buffer.byteLength;
const atomicsWait = Atomics.wait;
const pause = new Int32Array(new SharedArrayBuffer(4));

// Blocking writes, also to an fd node has made non-blocking (process.stdout does that to a
// pipe); false when the fd is gone (the program closed it). EAGAIN means airlock has not read
// yet: waited out, however long (the execution's wall limit bounds it).
function writeAll(fd, text) {
  const data = bufferFrom(text);
  try {
    for (let done = 0; done < data.length;) {
      try {
        done += writeSync(fd, data, done);
      } catch (error) {
        if (error.code !== 'EAGAIN') throw error;
        atomicsWait(pause, 0, 0, 1);
      }
    }
    return true;
  } catch (error) {
    return false;
  }
}

// The first output of a fresh node loads and compiles the stream classes a pipe is written
// through, and the console's formatting: ~6 ms, done here on the control pipe (fd 3) rather than
// on fds 1 and 2, which stay as a cold start leaves them (process.stdout makes its fd
// non-blocking).
require('util').formatWithOptions({}, '%s %d', 'warm', 1);
if (!writeAll(CONTROL, 'ready\n')) process.exit(0); // airlock is gone
// Kept, never destroyed: that would close fd 3, which the end's record goes out on.
const warmedOnControl =
    new (require('net').Socket)({ fd: CONTROL, readable: false, writable: true });
const marker = readFrame();
if (marker === null) {
  // Not the program's end but airlock's (or a frame it did not send): never an execution's "ok".
  process.stderr.write('node driver: no whole frame arrived\n');
  process.exit(125);
}

// The end is reported as the last thing of the 'exit' event, after the program's own listeners:
// markers after the last output on stdout and stderr, then the record (as the python driver's),
// so that airlock answers without waiting for node to tear itself down. Then this process waits
// for airlock to end its sandbox. Not after an uncaught exception the program does not handle:
// node prints that after the 'exit' event, so the end is then the process's own, as it is when
// a signal or process.reallyExit ends it.
let fatal = false;
let reported = false;
process.on('uncaughtExceptionMonitor', () => {
  if (process.listenerCount('uncaughtException') === 0 &&
      !process.hasUncaughtExceptionCaptureCallback()) {
    fatal = true;
  }
});
const emit = process.emit;
process.emit = function emitThenReport(event, ...args) {
  const result = emit.call(this, event, ...args);
  // Only node's own exit (process._exiting), not an 'exit' the program emits itself; and not
  // when the program has wrapped process.emit (as signal-exit does): its wrapper runs after this.
  if (event !== 'exit' || fatal || reported || process._exiting !== true ||
      process.emit !== emitThenReport) {
    return result;
  }
  reported = true;
  // The status the process ends with: the OS keeps the low 8 bits.
  const code = (typeof process.exitCode === 'number' ? process.exitCode : args[0]) & 0xff;
  const outMarked = writeAll(1, marker);
  const errMarked = writeAll(2, marker);
  const reason = code === 0 ? 'exited normally' : `exited with code ${code}`;
  const record = `${marker} end ${code === 0 ? 'ok' : 'exit'} ${code} ${outMarked ? 1 : 0} ` +
                 `${errMarked ? 1 : 0} ${byteLength(reason)}\n${reason}`;
  // Then wait to be ended; if the record could not be sent, the end is the process's own.
  if (writeAll(CONTROL, record)) atomicsWait(pause, 0, 0, 30000);
  return result;
};

process.argv[1] = path.resolve(SOURCE);
Module.runMain();
