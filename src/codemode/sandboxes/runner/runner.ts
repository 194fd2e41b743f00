// The trusted half of a codemode sandbox process.
//
// This module is the process's main module. It alone holds the channel to the host (a unix
// socket only it may open). Each program runs in a fresh Worker created with no permissions,
// a separate JavaScript realm: nothing the program does can reach this realm's built-ins, the
// socket, or the host's replies for other executions. Everything the worker sends is untrusted
// data, checked here before it crosses to the host.
//
// The protocol. Host <-> runner: newline-delimited JSON on the socket, one message a line.
//   host -> runner:    run {source, lineOffset, lastLine?, tools, limits, durable?}
//                      | ret {c, ok, v | e} | probe {n} | stop      (probe, stop: durable only)
//   runner -> host:    ready | call {c, n, a?, j?} | log {m} | done {ok, r? | e}
//                      | idle {n, o, j}                             (durable executions only)
// Runner <-> worker: structured-clone messages (postMessage).
//   runner -> worker:  run (as from the host) | ret {c, ok, v | e} | rets {l: [ret...]} | probe
//   worker -> runner:  boot | call {c, n, a?, j?} | calls {l: [call...]} | log {m} | idle
//                      | done {ok, r? | e}
// `a` and `r` are JSON text (the worker checks that a value is JSON and names what is not).
// Call ids: the worker numbers its calls; the runner gives each its own id towards the host
// and maps replies back, so a forged id reaches nothing. Crossing between threads costs far
// more than the bytes: calls made in one turn of the program (a Promise.all) cross as one
// `calls` message, replies read from the socket together as one `rets`, and lines written to
// the socket in one turn as one write. (Durable executions post each call as it is made.)

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
  durable?: DurableRun; // present: record (and first replay) what makes the run nondeterministic
}

// What an earlier pass of a durable execution recorded: the order of events (settled calls
// "s<id>", fired timers "t<id>", finished async operations "a<id>") and the values the program
// read from clocks and random sources, as [kind, value].
interface DurableRun {
  events: string[];
  values: Array<[string, unknown]>;
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
  const ErrorCtor = Error;
  // Deno's queueMicrotask replaces its global on its first call: make that call now, before a
  // program can freeze the global scope (or replace the function).
  const microtask = queueMicrotask;
  microtask(() => {});
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

  // The program line of the current call, from V8's structured stack (Deno maps its positions
  // to the program's own lines): a tenth of the cost of formatting `stack` as text, which a
  // durable execution would pay on every call.
  const captureStackTrace = Error.captureStackTrace;
  type Site = { getFileName(): string | null; getLineNumber(): number | null };
  function callLine(): number | undefined {
    const errorClass = Error as unknown as { prepareStackTrace?: unknown };
    const saved = errorClass.prepareStackTrace;
    try {
      errorClass.prepareStackTrace = (_error: unknown, sites: Site[]) => sites;
      const holder: { stack?: Site[] } = {};
      captureStackTrace(holder, callTool);
      for (const site of holder.stack ?? []) {
        if (site.getFileName() !== programUrl) continue;
        const line = (site.getLineNumber() ?? 0) - lineOffset;
        if (line >= 1 && line <= lineCount) return line;
      }
    } catch {
      // a program that broke Error only loses its own line numbers
    } finally {
      errorClass.prepareStackTrace = saved;
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
    flushCalls(); // calls made before the end go first, as they were made
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

  function callTool(name: string, input: unknown): Promise<unknown> {
    // The site's stack points at the program's line that made the call. Four frames reach it
    // (callTool, external_<name>, maybe a built-in such as Array.prototype.map, the caller);
    // capturing only those costs a fraction of a full stack, which was a seventh of the
    // sandbox's work per call.
    const limit = ErrorCtor.stackTraceLimit;
    ErrorCtor.stackTraceLimit = 4;
    const site = new ErrorCtor();
    ErrorCtor.stackTraceLimit = limit;
    let args: string | undefined;
    try {
      args = toJson(input, `input of external_${name}`);
    } catch (err) {
      return Promise.reject(err);
    }
    const c = ++seq;
    return new Promise((resolve, reject) => {
      pending.set(c, { resolve, reject, site });
      const msg: Record<string, unknown> = args === undefined
        ? { t: "call", c, n: name }
        : { t: "call", c, n: name, a: args };
      if (durable !== null) {
        msg.j = durable.report(callLine());
        post(msg); // the journal's order is the order of messages: no batching
      } else {
        queueCall(msg);
      }
    });
  }

  // Calls made in one turn (a Promise.all) cross to the runner as one message: each message
  // costs both threads far more than its size. A lone call goes as itself.
  let calls: Array<Record<string, unknown>> = [];
  function queueCall(call: Record<string, unknown>): void {
    calls.push(call);
    if (calls.length === 1) microtask(flushCalls);
  }
  function flushCalls(): void {
    if (calls.length === 0) return;
    const batch = calls;
    calls = [];
    post(batch.length === 1 ? batch[0] : { t: "calls", l: batch });
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

  // -------------------------------------------------------------------------------------------
  // Durable mode. A V8 realm cannot be saved, so a resumed execution runs the same program again
  // in a fresh realm; to reach the same state it must see what the first pass saw. Here, before
  // the program runs, we wrap what makes a run nondeterministic:
  //   - values: Date (now, new Date(), Date()), performance.now/timeOrigin, Math.random (a
  //     recorded seed for a xoshiro128** generator), crypto.getRandomValues, crypto.randomUUID;
  //   - the order of events, each its own task as in the first pass: tool calls settling,
  //     timers firing, crypto.subtle and WebAssembly operations finishing.
  // On replay the recorded values are returned in order and events are released in their
  // recorded order (a tool result waits until every event recorded before it has happened);
  // once the record is used up, the run goes live and records again.
  //
  // All of this runs in the program's realm: what it reports is the program's own data, and
  // the host trusts it for nothing else (it checks every call against its own journal). The
  // host asks "probe n" when only calls waiting for a decision remain; the answer "idle n" comes
  // once nothing here can make progress (no timer, no operation, no releasable event), with the
  // number of calls still waiting, so the host can pause the execution.
  // -------------------------------------------------------------------------------------------
  interface Durable {
    report(line: number | undefined): Record<string, unknown>; // journal since the last report
    arrive(msg: { c: number; ok: boolean; v?: unknown; e?: ErrorInfo }): void;
    probe(n: unknown): void;
  }
  let durable: Durable | null = null;

  function startDurable(recorded: DurableRun): Durable {
    const events = Array.isArray(recorded.events) ? recorded.events : [];
    const values = Array.isArray(recorded.values) ? recorded.values : [];
    let ei = 0; // the next recorded event to release
    let vi = 0; // the next recorded value to return
    const newEvents: string[] = [];
    const newValues: Array<[string, unknown]> = [];
    let eventsReported = 0;
    let valuesReported = 0;
    let replaying = events.length > 0;
    const MAX_VALUES = 200_000;

    function fail(name: string, message: string): never {
      const err = namedError(name, message);
      finish({ ok: false, e: errorInfo(err) });
      throw err;
    }

    // -- values ---------------------------------------------------------------------------------
    function tape<T>(kind: string, live: () => T, encode?: (v: T) => unknown, decode?: (v: unknown) => T): T {
      if (vi < values.length) {
        const entry = values[vi++];
        if (!Array.isArray(entry) || entry[0] !== kind) {
          fail(
            "ReplayDivergenceError",
            `On resume, the program read ${kindName(kind)} where its first run read ${kindName(Array.isArray(entry) ? String(entry[0]) : "?")} (value ${vi}); the program is not deterministic.`,
          );
        }
        return decode ? decode(entry[1]) : entry[1] as T;
      }
      const value = live();
      if (newValues.length >= MAX_VALUES) {
        fail(
          "DurableLimitError",
          `The program read the clock or random values more than ${MAX_VALUES} times; a durable execution records each read. Read the clock once and reuse it.`,
        );
      }
      newValues.push([kind, encode ? encode(value) : value]);
      return value;
    }
    function kindName(kind: string): string {
      return ({ d: "the clock", p: "performance.now()", o: "performance.timeOrigin", r: "Math.random()", g: "crypto.getRandomValues()", u: "crypto.randomUUID()" } as Record<string, string>)[kind] ?? `"${kind}"`;
    }

    const NativeDate = Date;
    const nativeNow = Date.now;
    const clock = () => tape("d", nativeNow);
    const DurableDate = function (this: unknown, ...args: unknown[]): unknown {
      if (new.target === undefined) return new NativeDate(clock()).toString();
      return Reflect.construct(NativeDate, args.length === 0 ? [clock()] : args, new.target);
    } as unknown as DateConstructor;
    Object.defineProperty(DurableDate, "prototype", { value: NativeDate.prototype });
    Object.defineProperty(DurableDate, "length", { value: 7 });
    Object.defineProperty(DurableDate, "name", { value: "Date" });
    DurableDate.now = clock;
    DurableDate.parse = NativeDate.parse;
    DurableDate.UTC = NativeDate.UTC;
    Object.defineProperty(NativeDate.prototype, "constructor", { value: DurableDate, writable: true, configurable: true });
    globalThis.Date = DurableDate;

    // performance.now() counts from this realm's start: after a replay, live readings are
    // shifted so they never go back before the last replayed one. timeOrigin is read once.
    const perf = globalThis.performance;
    const perfNow = perf.now.bind(perf);
    const timeOrigin = perf.timeOrigin;
    let lastPerf = 0;
    let perfShift = -1;
    const perfLive = () => {
      if (perfShift < 0) perfShift = Math.max(0, lastPerf - perfNow());
      return perfNow() + perfShift;
    };
    let origin: number | undefined;
    Object.defineProperty(perf, "now", {
      value: () => (lastPerf = tape("p", perfLive)),
      writable: true,
      configurable: true,
    });
    Object.defineProperty(perf, "timeOrigin", {
      get: () => (origin ??= tape("o", () => timeOrigin)),
      configurable: true,
    });

    const cryptoObj = globalThis.crypto;
    const getRandomValues = cryptoObj.getRandomValues.bind(cryptoObj);
    const randomUUID = cryptoObj.randomUUID.bind(cryptoObj);
    // Math.random: one recorded seed, then a xoshiro128** sequence (recording every number
    // would make a Monte Carlo loop record millions of values).
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0, seeded = false;
    function next32(): number {
      const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
      const t = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= t;
      s3 = rotl(s3, 11);
      return result;
    }
    function rotl(x: number, k: number): number {
      return (x << k) | (x >>> (32 - k));
    }
    Math.random = () => {
      if (!seeded) {
        const seed = tape("r", () => Array.from(getRandomValues(new Uint32Array(4))), undefined, (v) => v as number[]);
        [s0, s1, s2, s3] = seed.map((x) => x | 0);
        if ((s0 | s1 | s2 | s3) === 0) s3 = 1;
        seeded = true;
      }
      return ((next32() >>> 5) * 67108864 + (next32() >>> 6)) / 9007199254740992;
    };
    Object.defineProperty(cryptoObj, "getRandomValues", {
      value: <T extends ArrayBufferView | null>(array: T): T => {
        getRandomValues(array as unknown as Uint8Array); // validates as the original does
        const view = array as unknown as ArrayBufferView;
        const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
        const hex = tape("g", () => toHex(bytes));
        if (typeof hex === "string" && hex.length === bytes.length * 2) {
          for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
        }
        return array;
      },
      writable: true,
      configurable: true,
    });
    Object.defineProperty(cryptoObj, "randomUUID", {
      value: () => tape("u", randomUUID),
      writable: true,
      configurable: true,
    });
    function toHex(bytes: Uint8Array): string {
      let hex = "";
      for (const b of bytes) hex += (b < 16 ? "0" : "") + b.toString(16);
      return hex;
    }

    // -- events ---------------------------------------------------------------------------------
    // Each arrived event waits here, in arrival order, until its turn: the recorded order while
    // replaying, arrival order after.
    const held = new Map<string, () => void>();
    const channel = new MessageChannel();
    let kicked = false;
    channel.port1.onmessage = () => {
      kicked = false;
      release();
    };
    function kick(): void {
      if (!kicked) {
        kicked = true;
        channel.port2.postMessage(null);
      }
    }
    // Releases one event (each in its own task, so the program's microtasks run in between,
    // as they did when the events first happened).
    function release(): void {
      try {
        if (replaying) {
          const event = events[ei];
          const kind = event[0];
          const id = Number(event.slice(1));
          if (kind === "t") {
            const timer = timers.get(id);
            if (timer === undefined) {
              if (id <= timerSeq) ei += 1; // created and cleared since: it can never fire
              return; // else not created yet: the program waits for a result
            }
            ei += 1;
            fire(id, timer);
          } else {
            const deliver = held.get(event);
            if (deliver === undefined) return;
            held.delete(event);
            ei += 1;
            deliver();
          }
        } else {
          const first = held.entries().next();
          if (first.done) return;
          held.delete(first.value[0]);
          newEvents.push(first.value[0]);
          first.value[1]();
        }
      } finally {
        if (replaying && ei >= events.length) goLive();
        if (releasable()) kick();
        checkIdle();
      }
    }
    function goLive(): void {
      replaying = false;
      for (const [id, timer] of timers) arm(id, timer);
    }
    // An event happened: it is delivered now, in the task that brought it, when it is the
    // next one (live with nothing held, or the next recorded one), and held for its turn
    // otherwise.
    function happen(event: string, deliver: () => void): void {
      if (replaying && held.size === 0 && events[ei] === event) {
        ei += 1;
        if (ei >= events.length) goLive();
        deliver();
        if (releasable()) kick(); // e.g. a timer that is next
        checkIdle();
        return;
      }
      if (replaying || held.size > 0) {
        held.set(event, deliver);
        if (releasable()) kick();
        return;
      }
      newEvents.push(event);
      deliver();
      checkIdle();
    }

    // Timers: ours, numbered in creation order; the native timer only runs once live.
    interface Timer {
      callback: () => void;
      delay: number;
      repeat: boolean;
      handle?: ReturnType<typeof setTimeout>;
    }
    const timers = new Map<number, Timer>();
    let timerSeq = 0;
    const nativeSetTimeout = globalThis.setTimeout;
    const nativeSetInterval = globalThis.setInterval;
    const nativeClearTimeout = globalThis.clearTimeout;
    const evaluate = globalThis.eval;
    function addTimer(handler: unknown, delay: unknown, args: unknown[], repeat: boolean): number {
      const id = ++timerSeq;
      const callback = typeof handler === "function"
        ? () => (handler as (...a: unknown[]) => void)(...args)
        : () => evaluate(String(handler)); // as the native timers do with a string
      const timer: Timer = { callback, delay: Math.max(0, Number(delay) || 0), repeat };
      timers.set(id, timer);
      if (!replaying) arm(id, timer);
      else if (releasable()) kick();
      return id;
    }
    function arm(id: number, timer: Timer): void {
      if (timer.handle !== undefined) return;
      const onFire = () => {
        if (!timer.repeat) timer.handle = undefined;
        happen(`t${id}`, () => fire(id, timer));
      };
      timer.handle = timer.repeat ? nativeSetInterval(onFire, timer.delay) : nativeSetTimeout(onFire, timer.delay);
    }
    function fire(id: number, timer: Timer): void {
      if (!timers.has(id)) return; // cleared while its event was held
      if (!timer.repeat) timers.delete(id);
      timer.callback();
    }
    function clearTimer(id: unknown): void {
      const timer = timers.get(Number(id));
      if (timer === undefined) return;
      if (timer.handle !== undefined) nativeClearTimeout(timer.handle);
      timers.delete(Number(id));
    }
    const timerApi: Record<string, unknown> = {
      setTimeout: (h: unknown, d?: unknown, ...a: unknown[]) => addTimer(h, d, a, false),
      setInterval: (h: unknown, d?: unknown, ...a: unknown[]) => addTimer(h, d, a, true),
      clearTimeout: clearTimer,
      clearInterval: clearTimer,
    };
    for (const [key, value] of Object.entries(timerApi)) {
      Object.defineProperty(globalThis, key, { value, writable: true, configurable: true });
    }

    // Asynchronous operations whose finishing order the program can see.
    let operations = 0;
    let operationSeq = 0;
    function track(target: Record<string, unknown>, key: string): void {
      const original = target[key];
      if (typeof original !== "function") return;
      Object.defineProperty(target, key, {
        value: (...args: unknown[]) => {
          const id = ++operationSeq;
          operations += 1;
          let started: Promise<unknown>;
          try {
            started = Promise.resolve(original.apply(target, args));
          } catch (err) {
            operations -= 1;
            throw err;
          }
          return new Promise((resolve, reject) => {
            const done = (settle: () => void) =>
              happen(`a${id}`, () => {
                operations -= 1;
                settle();
              });
            started.then((v) => done(() => resolve(v)), (e) => done(() => reject(e)));
          });
        },
        writable: true,
        configurable: true,
      });
    }
    const subtle = cryptoObj.subtle as unknown as Record<string, unknown>;
    for (const key of ["encrypt", "decrypt", "sign", "verify", "digest", "generateKey", "deriveKey", "deriveBits", "importKey", "exportKey", "wrapKey", "unwrapKey"]) {
      track(subtle, key);
    }
    const wasm = (globalThis as unknown as { WebAssembly: Record<string, unknown> }).WebAssembly;
    for (const key of ["compile", "instantiate", "compileStreaming", "instantiateStreaming"]) track(wasm, key);

    // -- quiescence -----------------------------------------------------------------------------
    let asked = 0; // the latest probe
    let answered = 0;
    let checking = false;
    function checkIdle(): void {
      if (asked <= answered || checking) return;
      checking = true;
      nativeSetTimeout(() => { // a task later: the program's microtasks have all run
        checking = false;
        if (asked <= answered || finished) return;
        if (timers.size > 0 || operations > 0 || releasable()) return;
        answered = asked;
        post({ t: "idle", n: asked, o: pending.size - heldCalls(), j: report(undefined) });
      }, 0);
    }
    // Whether an event can be released now: the next recorded one has happened (replaying),
    // or any is held (live).
    function releasable(): boolean {
      if (!replaying) return held.size > 0;
      const event = events[ei];
      if (event[0] !== "t") return held.has(event);
      const id = Number(event.slice(1));
      return timers.has(id) || id <= timerSeq;
    }
    function heldCalls(): number {
      let n = 0;
      for (const key of held.keys()) if (key[0] === "s") n += 1;
      return n;
    }

    function report(line: number | undefined): Record<string, unknown> {
      const j: Record<string, unknown> = {};
      if (line !== undefined) j.l = line;
      if (newEvents.length > eventsReported) {
        j.e0 = events.length + eventsReported;
        j.e = newEvents.slice(eventsReported);
        eventsReported = newEvents.length;
      }
      if (newValues.length > valuesReported) {
        j.v0 = values.length + valuesReported;
        j.v = newValues.slice(valuesReported);
        valuesReported = newValues.length;
      }
      return j;
    }

    return {
      report,
      arrive(msg) {
        happen(`s${msg.c}`, () => settle(msg));
      },
      probe(n) {
        if (typeof n === "number" && n > asked) asked = n;
        checkIdle();
      },
    };
  }

  async function run(msg: RunMessage): Promise<void> {
    if (msg.durable) durable = startDurable(msg.durable);
    maxLogBytes = msg.limits.maxLogBytes;
    maxWorkers = workersLeft = msg.limits.maxWorkers ?? 0;
    lineOffset = msg.lineOffset;
    lineCount = msg.lastLine ?? msg.source.split("\n").length - lineOffset;
    installConsole();
    for (const name of msg.tools) {
      Object.defineProperty(globalThis, `external_${name}`, {
        value: (input: unknown) => callTool(name, input),
        enumerable: false,
      });
    }
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
    else if (msg.t === "ret") {
      if (durable === null) settle(msg);
      else durable.arrive(msg);
    } else if (msg.t === "rets") {
      for (const ret of msg.l) {
        if (durable === null) settle(ret);
        else durable.arrive(ret);
      }
    } else if (msg.t === "probe") durable?.probe(msg.n);
  };
  post({ t: "boot" });
  // A realm's first dynamic import sets up its module loader: do it now, while the realm is a
  // spare, so that the job's program does not pay for it (a job that comes sooner just shares
  // the work; the module is ours and does nothing).
  const warmUp = createObjectURL(
    new Blob(["export default async function (): Promise<number> { return 1 }"], {
      type: "application/typescript",
    }),
  );
  import(warmUp)
    .then((module) => module.default())
    .catch(() => {}) // never the program's unhandled rejection
    .finally(() => revokeObjectURL(warmUp));
}

// ---------------------------------------------------------------------------------------------
// The runner: owns the socket, one worker at a time, and the limits.
// ---------------------------------------------------------------------------------------------
const encoder = new TextEncoder();
const decoder = new TextDecoder();
// Connecting overlaps with booting the first realm (startSpare, below): a cold start waits for
// the slower of the two, not for both.
const connecting = Deno.connect({ transport: "unix", path: Deno.env.get("CODEMODE_SOCKET")! });
let conn: Deno.UnixConn | null = null;
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
    conn ??= await connecting;
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
    case "calls":
      if (!Array.isArray(msg.l)) return;
      for (const call of msg.l) {
        if (execution !== ex || ex.done) return; // a call over the limit ended it
        if (isRecord(call)) onCall(ex, call);
      }
      return;
    case "log":
      if (typeof msg.m === "string") onLog(ex, msg.m);
      return;
    case "done":
      return onDone(ex, msg);
    case "idle": // durable executions: the worker has nothing left to do but wait
      send({ t: "idle", n: msg.n as Json, o: msg.o as Json, j: msg.j as Json });
      return;
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
  if (msg.j !== undefined) call.j = msg.j as Json; // durable executions: the journal since the last call
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

// Replies read together (from one read of the socket) cross to the worker as one message.
let rets: Array<Record<string, unknown>> = [];
function flushRets(): void {
  if (rets.length === 0) return;
  const batch = rets;
  rets = [];
  worker?.postMessage(batch.length === 1 ? batch[0] : { t: "rets", l: batch });
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
    rets.push({ t: "ret", c: workerId, ok: msg.ok, v: msg.v, e: msg.e });
  } else if (msg.t === "probe") { // durable executions: is the program idle?
    flushRets(); // after the replies read before it, as they came
    worker?.postMessage(msg);
  } else if (msg.t === "stop") { // durable executions: the host pauses it
    end({ ok: false, e: { name: "ExecutionPaused", message: "The host paused the execution." } });
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
    rets = []; // replies for an execution that ended have nowhere to go
    worker = useSpare();
    worker.postMessage(run);
  }
}

startSpare();
conn ??= await connecting;

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
  flushRets();
}
Deno.exit(0);
