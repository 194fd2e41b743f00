// The trusted half of a codemode sandbox process.
//
// This module is the process's main module. It alone holds the channel to the host (a unix
// socket only it may open). Each program runs in a fresh Worker created with no permissions,
// a separate JavaScript realm: nothing the program does can reach this realm's built-ins, the
// socket, or the host's replies for other executions. Everything the worker sends is untrusted
// data, checked here before it crosses to the host.
//
// Host -> runner lines (JSON):  run {source, lineOffset, lastLine?, tools, limits} | ret {c, ok, v | e}
// Runner -> host lines (JSON):  ready | call {c, n, a?} | log {m} | done {ok, r? | e}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

interface Limits {
  maxToolCalls: number;
  maxConcurrentToolCalls: number;
  maxLogBytes: number;
  maxResultBytes: number;
  maxWorkers?: number; // nested `new Worker`s a program may start (0 when absent)
}

interface RunMessage {
  t: "run";
  source: string;
  lineOffset: number;
  lastLine?: number; // the last line of the model's code (after it: the wrapper's own lines)
  tools: string[];
  limits: Limits;
}

interface ErrorInfo {
  message: string;
  name: string;
  line?: number;
}

// ---------------------------------------------------------------------------------------------
// The worker bootstrap. Serialised with Function.prototype.toString and started from a blob:
// URL, so it needs no read permission. It runs in the untrusted realm, before the program, and
// can only talk to the runner by postMessage. It must be plain JavaScript once types are
// stripped and must not refer to anything outside its own body.
// ---------------------------------------------------------------------------------------------
function workerMain(): void {
  // Typed as a worker scope: this file is checked as a main module.
  const scope = globalThis as unknown as {
    postMessage(message: unknown): void;
    onmessage: ((event: MessageEvent) => void) | null;
    addEventListener: typeof globalThis.addEventListener;
  };
  const post = scope.postMessage.bind(scope);
  const stringify = JSON.stringify;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void; site: Error }>();
  let seq = 0;
  let logBytes = 0;
  const LOG_LINE_COST = 64; // as in the runner
  let maxLogBytes = 0;
  let programUrl = "";
  let lineOffset = 0;
  let lineCount = 0;
  let finished = false;

  // Guards, installed before any program runs. Each replaced global is locked (not writable, not
  // configurable) and the original lives only in this closure, so a program cannot get it back.
  function lock(target: object, key: PropertyKey, value: unknown): void {
    Object.defineProperty(target, key, { value, writable: false, configurable: false, enumerable: false });
  }
  function namedError(name: string, message: string): Error {
    const err = new Error(message);
    err.name = name;
    return err;
  }
  // Deno.exit, process.exit (which calls Deno.exit) and close() would end this worker silently,
  // leaving the runner to wait for the timeout: they end the program with an ExitError instead.
  function refuseExit(how: string): never {
    const err = namedError(
      "ExitError",
      `The program called ${how}; a program ends by returning a value or throwing an Error.`,
    );
    finish({ ok: false, e: errorInfo(err) });
    throw err;
  }
  lock(Deno, "exit", (code?: unknown) => refuseExit(`exit(${code === undefined ? "" : String(code)})`));
  lock(globalThis, "close", () => refuseExit("close()"));
  // A nested worker is a fresh realm without these guards: `new Worker` counts against the job's
  // maxWorkers (0 by default). The host caps the process's threads too (node:worker_threads).
  const NativeWorker = globalThis.Worker;
  let maxWorkers = 0;
  let workersLeft = 0;
  const LimitedWorker = function (specifier: string | URL, options?: WorkerOptions): Worker {
    if (new.target === undefined) throw new TypeError("Failed to construct 'Worker': Please use the 'new' operator.");
    if (workersLeft <= 0) {
      throw namedError(
        "WorkerLimitError",
        `The program tried to start a Worker, over the limit of ${maxWorkers} per execution; do the work in the program itself.`,
      );
    }
    workersLeft -= 1;
    return new NativeWorker(specifier, options);
  };
  lock(LimitedWorker, "name", "Worker");
  lock(LimitedWorker, "prototype", NativeWorker.prototype);
  lock(NativeWorker.prototype, "constructor", LimitedWorker);
  lock(globalThis, "Worker", LimitedWorker);
  // Blobs live in a store the whole process shares, and a blob URL keeps its blob there after
  // this realm is gone, for a later execution to read (or to inherit as memory). Programs get no
  // blob URLs; the program's own module URL is revoked as soon as it is imported.
  const createObjectURL = URL.createObjectURL;
  const revokeObjectURL = URL.revokeObjectURL;
  lock(URL, "createObjectURL", () => {
    throw new TypeError("URL.createObjectURL is not available in the sandbox: a blob URL outlives the program.");
  });

  // The line in the model's program for the first stack frame inside it. A syntax error at the
  // end of input points past the program, at the wrapper's closing line: `clamp` reports the
  // program's last line instead.
  function programLine(stack: unknown, clamp = false): number | undefined {
    if (typeof stack !== "string" || programUrl === "") return undefined;
    for (const frame of stack.split("\n")) {
      const at = frame.indexOf(programUrl + ":");
      if (at < 0) continue;
      const m = /^:(\d+):\d+/.exec(frame.slice(at + programUrl.length));
      if (!m) continue;
      const line = Number(m[1]) - lineOffset;
      if (line >= 1 && line <= lineCount) return line;
      if (clamp && line > lineCount) return lineCount;
    }
    return undefined;
  }

  // A JSON text for a value, or an error that names what is not JSON, where, and the fix: a
  // TypeError for a tool's input (the program can catch it), a ResultError for the result.
  function toJson(value: unknown, what: string, errorName = "TypeError"): string | undefined {
    const fail = (message: string): never => {
      throw errorName === "TypeError" ? new TypeError(message) : namedError(errorName, message);
    };
    const stack: unknown[] = [];
    const check = (v: unknown, path: string): void => {
      const kind = typeof v;
      if (kind === "bigint") fail(`${what} is not JSON: BigInt at ${path} (convert it with Number() or String())`);
      if (kind === "function" || kind === "symbol") {
        if (stack.length > 0 && !Array.isArray(stack[stack.length - 1])) return; // dropped, as JSON.stringify does
        if (kind === "function" && path === what && what === "result") {
          fail("The program returned a function instead of its value: call it, e.g. `return await main()`.");
        }
        fail(`${what} is not JSON: ${kind} at ${path}` + (kind === "function" ? " (call it, or leave it out)" : ""));
      }
      if (kind !== "object" || v === null) return;
      // A Promise (or any thenable) is a call that was not awaited: JSON would make it `{}`.
      if (v instanceof Promise || typeof (v as { then?: unknown }).then === "function") {
        fail(
          path === what
            ? `${what === "result" ? "The program returned" : `The ${what} is`} a Promise: add \`await\`.`
            : `${what} holds a Promise at ${path}: a call was not awaited; add \`await\` (for several calls, \`await Promise.all([...])\`).`,
        );
      }
      const obj = v as { toJSON?: () => unknown };
      if (typeof obj.toJSON === "function") return check(obj.toJSON(), path);
      if (stack.includes(v)) fail(`${what} is not JSON: circular reference at ${path}`);
      if (v instanceof Map) fail(`${what} is not JSON: Map at ${path} (convert it with Object.fromEntries())`);
      if (v instanceof Set) fail(`${what} is not JSON: Set at ${path} (convert it with Array.from())`);
      stack.push(v);
      if (Array.isArray(v)) v.forEach((item, i) => check(item, `${path}[${i}]`));
      else for (const key of Object.keys(v as object)) check((v as Record<string, unknown>)[key], `${path}.${key}`);
      stack.pop();
    };
    check(value, what);
    return value === undefined ? undefined : stringify(value);
  }

  function errorInfo(err: unknown): { message: string; name: string; line?: number } {
    if (err instanceof Error || (typeof err === "object" && err !== null && "message" in err)) {
      const e = err as Error;
      const info: { message: string; name: string; line?: number } = {
        message: String(e.message),
        name: typeof e.name === "string" && e.name ? e.name : "Error",
      };
      const line = programLine(e.stack);
      if (line !== undefined) info.line = line;
      return info;
    }
    let text: string;
    try {
      text = typeof err === "string" ? err : String(stringify(err));
    } catch {
      text = String(err);
    }
    return { message: `Uncaught ${text} (a non-Error value was thrown)`, name: "Error" };
  }

  function finish(msg: { ok: boolean; r?: string; e?: ErrorInfo }): void {
    if (finished) return;
    finished = true;
    post({ t: "done", ...msg });
  }

  function render(value: unknown): string {
    if (typeof value === "string") return value;
    if (value instanceof Error) return `${value.name}: ${value.message}`;
    if (value === undefined) return "undefined";
    if (typeof value === "bigint") return `${value}n`;
    if (typeof value === "function") return `[Function ${value.name || "anonymous"}]`;
    const seen: unknown[] = [];
    try {
      return stringify(value, (_k, v) => {
        if (typeof v === "bigint") return `${v}n`;
        if (typeof v === "object" && v !== null) {
          if (seen.includes(v)) return "[Circular]";
          seen.push(v);
        }
        return v;
      }) ?? String(value);
    } catch {
      return String(value);
    }
  }

  function log(prefix: string, args: unknown[]): void {
    if (finished || logBytes > maxLogBytes) return;
    const text = prefix + args.map(render).join(" ");
    logBytes += text.length + LOG_LINE_COST; // counted here too: a flood never fills the runner's queue
    post({ t: "log", m: text });
  }

  function installConsole(): void {
    const quiet = () => {};
    const c = globalThis.console as unknown as Record<string, unknown>;
    for (const key of Object.keys(c)) if (typeof c[key] === "function") c[key] = quiet;
    c.log = (...a: unknown[]) => log("", a);
    c.info = (...a: unknown[]) => log("", a);
    c.debug = (...a: unknown[]) => log("", a);
    c.dir = (v: unknown) => log("", [v]);
    c.table = (v: unknown) => log("", [v]);
    c.trace = (...a: unknown[]) => log("", a);
    c.warn = (...a: unknown[]) => log("[warn] ", a);
    c.error = (...a: unknown[]) => log("[error] ", a);
    c.assert = (cond: unknown, ...a: unknown[]) => {
      if (!cond) log("[error] Assertion failed: ", a);
    };
  }

  function callTool(name: string, input: unknown, label = `external_${name}`): Promise<unknown> {
    const site = new Error(); // its stack points at the program's line that made the call
    let args: string | undefined;
    try {
      args = toJson(input, `input of ${label}`);
    } catch (err) {
      return Promise.reject(err);
    }
    const c = ++seq;
    return new Promise((resolve, reject) => {
      pending.set(c, { resolve, reject, site });
      post(args === undefined ? { t: "call", c, n: name } : { t: "call", c, n: name, a: args });
    });
  }

  // Discovery (large catalogs): a frozen, locked `codemode` object whose searchTools and
  // describeTools travel to the host as calls to reserved names, which are not identifiers, so
  // no tool has them. The host lists them in the job's tools only when discovery is on; the
  // runner checks and counts them like any call and the host answers them, so a program cannot
  // reach anything else this way, nor make more calls than its limit.
  function installDiscovery(tools: string[]): void {
    if (!tools.includes("codemode:search") || !tools.includes("codemode:describe")) return;
    const searchTools = (query: unknown, options?: unknown): Promise<unknown> => {
      let input: unknown;
      if (typeof query === "object" && query !== null && !Array.isArray(query)) {
        input = query; // searchTools({ query, limit }), as models often write it
      } else if (options === undefined || options === null) {
        input = { query };
      } else if (typeof options === "object" && !Array.isArray(options)) {
        input = { ...(options as Record<string, unknown>), query };
      } else {
        const message = "codemode.searchTools(query, options): options must be an object such as { limit: 5 }";
        return Promise.reject(new TypeError(message));
      }
      return callTool("codemode:search", input, "codemode.searchTools");
    };
    const describeTools = (names: unknown): Promise<unknown> =>
      callTool("codemode:describe", { names: typeof names === "string" ? [names] : names }, "codemode.describeTools");
    lock(globalThis, "codemode", Object.freeze({ searchTools, describeTools }));
  }

  function settle(msg: { c: number; ok: boolean; v?: unknown; e?: ErrorInfo }): void {
    const call = pending.get(msg.c);
    if (!call) return;
    pending.delete(msg.c);
    if (msg.ok) {
      call.resolve(msg.v); // already parsed by the runner; a structured clone of JSON data
      return;
    }
    const info = msg.e ?? { message: "tool call failed", name: "Error" };
    const err = new Error(info.message);
    err.name = info.name;
    const frames = String(call.site.stack).split("\n").slice(2).join("\n");
    err.stack = `${info.name}: ${info.message}\n${frames}`;
    call.reject(err);
  }

  async function run(msg: RunMessage): Promise<void> {
    maxLogBytes = msg.limits.maxLogBytes;
    maxWorkers = workersLeft = msg.limits.maxWorkers ?? 0;
    lineOffset = msg.lineOffset;
    lineCount = msg.lastLine ?? msg.source.split("\n").length - lineOffset;
    installConsole();
    for (const name of msg.tools) {
      if (name.startsWith("codemode:")) continue; // reserved names: the `codemode` object below
      Object.defineProperty(globalThis, `external_${name}`, {
        value: (input: unknown) => callTool(name, input),
        enumerable: false,
      });
    }
    installDiscovery(msg.tools);
    programUrl = createObjectURL(new Blob([msg.source], { type: "application/typescript" }));
    let main: () => Promise<unknown>;
    try {
      main = (await import(programUrl)).default;
    } catch (err) {
      return finish({ ok: false, e: syntaxErrorInfo(err) });
    } finally {
      revokeObjectURL(programUrl);
    }
    try {
      const value = await main();
      let r: string | undefined;
      try {
        r = toJson(value, "result", "ResultError");
      } catch (err) {
        return finish({ ok: false, e: errorInfo(err) });
      }
      if (r !== undefined && r.length > msg.limits.maxResultBytes) {
        return finish({
          ok: false,
          e: {
            name: "ResultTooLargeError",
            message: `The result is ${r.length} bytes of JSON, over the limit of ${msg.limits.maxResultBytes}; return a smaller value (filter, aggregate or paginate).`,
          },
        });
      }
      finish(r === undefined ? { ok: true } : { ok: true, r });
    } catch (err) {
      finish({ ok: false, e: errorInfo(err) });
    }
  }

  // Deno reports a syntax error in a module as a TypeError wrapping a SyntaxError, with a code
  // frame and the position as `at blob:...:LINE:COL`.
  function syntaxErrorInfo(err: unknown): ErrorInfo {
    const text = String((err as Error)?.message ?? err);
    const match = /^(?:TypeError: )?SyntaxError: ([^\n]*)/.exec(text);
    if (!match) return errorInfo(err);
    const info: ErrorInfo = { message: match[1], name: "SyntaxError" };
    const line = programLine(text, true);
    if (line !== undefined) info.line = line;
    return info;
  }

  scope.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    finish({ ok: false, e: errorInfo(event.reason) });
  });
  scope.addEventListener("error", (event) => {
    event.preventDefault();
    finish({ ok: false, e: errorInfo(event.error ?? event.message) });
  });
  scope.onmessage = (event: MessageEvent) => {
    const msg = event.data;
    if (msg.t === "run") run(msg);
    else if (msg.t === "ret") settle(msg);
  };
  post({ t: "boot" });
}

// ---------------------------------------------------------------------------------------------
// The runner: owns the socket, one worker at a time, and the limits.
// ---------------------------------------------------------------------------------------------
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const conn = await Deno.connect({ transport: "unix", path: Deno.env.get("CODEMODE_SOCKET")! });
// LocalSandbox asks for "inherit" (host privileges); DenoSandbox for "none".
const workerPermissions = Deno.env.get("CODEMODE_WORKER_PERMISSIONS") === "inherit" ? "inherit" : "none";
const workerSource = URL.createObjectURL(
  new Blob([`(${workerMain.toString()})();`], { type: "application/javascript" }),
);

// Lines are batched per task tick, so a burst of tool calls costs one write. Plain
// conn.read/conn.write: the streams API costs twice as much per round trip.
let outbox: string[] = [];
let writing = false;
function send(message: Record<string, Json | undefined>): void {
  outbox.push(JSON.stringify(message));
  if (!writing) {
    writing = true;
    queueMicrotask(pump);
  }
}
async function pump(): Promise<void> {
  try {
    while (outbox.length > 0) {
      const data = encoder.encode(outbox.join("\n") + "\n");
      outbox = [];
      for (let offset = 0; offset < data.length;) offset += await conn.write(data.subarray(offset));
    }
  } catch {
    Deno.exit(70); // the host is gone: nobody is left to serve
  }
  writing = false;
  const callbacks = afterWrite.splice(0);
  for (const callback of callbacks) callback();
}
// Work that blocks this thread (creating a worker) waits until what was sent is written.
const afterWrite: Array<() => void> = [];

interface Execution {
  tools: Set<string>;
  limits: Limits;
  calls: number;
  inFlight: number;
  queued: Array<Record<string, Json | undefined>>;
  workerIds: Map<number, number>; // host call id -> the worker's own id
  logBytes: number;
  logsClosed: boolean;
  done: boolean;
}

// The worker running the current program, and the spare booted for the next job. Creating a
// worker blocks this thread for several milliseconds, so the spare is created after a job ends,
// and the host hears "ready" only once it has booted: it sends the next job to another process
// meanwhile, and no job ever waits for a realm to be created.
let worker: Worker | null = null;
let spare: Worker | null = null;
let execution: Execution | null = null;
let nextCallId = 0;

function startSpare(): void {
  const w = new Worker(workerSource, {
    type: "module",
    name: "program",
    deno: { permissions: workerPermissions },
  } as WorkerOptions);
  w.onmessage = (event: MessageEvent) => {
    if (!isRecord(event.data) || event.data.t !== "boot") return;
    w.onmessage = null; // until it gets a job, the worker has nothing to say
    spare = w;
    send({ t: "ready" });
  };
  w.onerror = (event: ErrorEvent) => event.preventDefault();
}

function useSpare(): Worker {
  const w = spare!;
  spare = null;
  w.onmessage = (event: MessageEvent) => onWorkerMessage(event.data);
  w.onerror = (event: ErrorEvent) => {
    event.preventDefault(); // never let the program's error end this realm
    end({ ok: false, e: { name: "Error", message: String(event.message) } });
  };
  w.onmessageerror = () => {};
  return w;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

function onWorkerMessage(msg: unknown): void {
  if (!isRecord(msg)) return;
  const ex = execution;
  if (ex === null || ex.done) return;
  switch (msg.t) {
    case "call":
      return onCall(ex, msg);
    case "log":
      if (typeof msg.m === "string") onLog(ex, msg.m);
      return;
    case "done":
      return onDone(ex, msg);
  }
}

function onCall(ex: Execution, msg: Record<string, unknown>): void {
  const workerId = msg.c;
  if (typeof workerId !== "number") return;
  const name = msg.n;
  if (typeof name !== "string" || !ex.tools.has(name)) {
    worker?.postMessage({
      t: "ret",
      c: workerId,
      ok: false,
      e: { name: "ReferenceError", message: `external_${String(name)} is not defined` },
    });
    return;
  }
  if (msg.a !== undefined && (typeof msg.a !== "string" || msg.a.length > ex.limits.maxResultBytes)) {
    const message = typeof msg.a === "string"
      ? `The input of external_${name} is ${msg.a.length} bytes, over the limit of ${ex.limits.maxResultBytes}.`
      : `The input of external_${name} is not JSON.`;
    worker?.postMessage({ t: "ret", c: workerId, ok: false, e: { name: "TypeError", message } });
    return;
  }
  ex.calls += 1;
  if (ex.calls > ex.limits.maxToolCalls) {
    end({
      ok: false,
      e: {
        name: "ToolCallLimitError",
        message: `The program made more than ${ex.limits.maxToolCalls} tool calls (the limit per execution); batch work into fewer calls.`,
      },
    });
    return;
  }
  const c = ++nextCallId;
  ex.workerIds.set(c, workerId);
  const call: Record<string, Json | undefined> = { t: "call", c, n: name, a: msg.a as string | undefined };
  if (ex.inFlight < ex.limits.maxConcurrentToolCalls) {
    ex.inFlight += 1;
    send(call);
  } else {
    ex.queued.push(call); // bounded by maxToolCalls
  }
}

// A log line counts its UTF-8 bytes plus what holding one more line costs the host (a Python
// str and its list slot): a flood of tiny lines cannot make the host hold many times the limit.
const LOG_LINE_COST = 64;

function onLog(ex: Execution, text: string): void {
  if (ex.logsClosed) return;
  ex.logBytes += encoder.encode(text).length + LOG_LINE_COST;
  if (ex.logBytes > ex.limits.maxLogBytes) {
    ex.logsClosed = true;
    send({ t: "log", m: `[logs truncated: over the limit of ${ex.limits.maxLogBytes} bytes]` });
    return;
  }
  send({ t: "log", m: text });
}

function onDone(ex: Execution, msg: Record<string, unknown>): void {
  if (msg.ok === true) {
    if (msg.r !== undefined && typeof msg.r !== "string") return;
    if (typeof msg.r === "string" && msg.r.length > ex.limits.maxResultBytes) {
      return end({
        ok: false,
        e: { name: "ResultTooLargeError", message: `The result is over the limit of ${ex.limits.maxResultBytes} bytes.` },
      });
    }
    return end({ ok: true, r: msg.r as string | undefined });
  }
  const e = isRecord(msg.e) ? msg.e : {};
  const error: Record<string, Json> = {
    message: typeof e.message === "string" ? e.message : "The program failed",
    name: typeof e.name === "string" ? e.name : "Error",
  };
  if (typeof e.line === "number" && Number.isInteger(e.line)) error.line = e.line;
  end({ ok: false, e: error });
}

// Ends the execution: discard its realm, report, and boot the realm for the next job.
function end(result: { ok: boolean; r?: string; e?: Record<string, Json> }): void {
  const ex = execution;
  if (ex === null || ex.done) return;
  ex.done = true;
  if (worker !== null) {
    worker.onmessage = null;
    worker.terminate();
    worker = null;
  }
  execution = null;
  send({ t: "done", ...result });
  afterWrite.push(startSpare); // the host hears "done" before the next realm is made
}

function onHostMessage(msg: Record<string, unknown>): void {
  if (msg.t === "ret") {
    const ex = execution;
    const workerId = ex?.workerIds.get(msg.c as number);
    if (ex === null || workerId === undefined) return;
    ex.workerIds.delete(msg.c as number);
    const next = ex.queued.shift();
    if (next !== undefined) send(next);
    else ex.inFlight -= 1;
    worker?.postMessage({ t: "ret", c: workerId, ok: msg.ok, v: msg.v, e: msg.e });
  } else if (msg.t === "run") {
    const run = msg as unknown as RunMessage;
    if (execution !== null || spare === null) Deno.exit(71); // the host never does this
    execution = {
      tools: new Set(run.tools),
      limits: run.limits,
      calls: 0,
      inFlight: 0,
      queued: [],
      workerIds: new Map(),
      logBytes: 0,
      logsClosed: false,
      done: false,
    };
    worker = useSpare();
    worker.postMessage(run);
  }
}

startSpare();

// Read newline-delimited JSON from the host until it hangs up; then there is nothing to serve.
// A line may span many reads (a large program): only new bytes are searched for the newline.
const readBuffer = new Uint8Array(1 << 16);
const partial: string[] = [];
for (;;) {
  const n = await conn.read(readBuffer);
  if (n === null) break;
  const chunk = decoder.decode(readBuffer.subarray(0, n), { stream: true });
  let start = 0;
  for (let newline = chunk.indexOf("\n"); newline >= 0; newline = chunk.indexOf("\n", start)) {
    partial.push(chunk.slice(start, newline));
    const line = partial.join("");
    partial.length = 0;
    if (line) onHostMessage(JSON.parse(line));
    start = newline + 1;
  }
  if (start < chunk.length) partial.push(chunk.slice(start));
}
Deno.exit(0);
