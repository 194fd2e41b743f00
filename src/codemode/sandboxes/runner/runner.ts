// The trusted half of a codemode sandbox process.
//
// This module is the process's main module. It alone holds the channel to the host (a unix
// socket only it may open). Each program runs in a fresh Worker created with no permissions,
// a separate JavaScript realm: nothing the program does can reach this realm's built-ins, the
// socket, or the host's replies for other executions. Everything the worker sends is untrusted
// data, checked here before it crosses to the host.
//
// The protocol. Host <-> runner: lines on the socket. Calls and replies, the hot path, are
// compact text; everything else is one JSON object a line.
//   host -> runner:    run {source, lineOffset, lastLine?, tools, limits, durable?}
//                      | R<call id> <value JSON> | E<call id> <{message, name} JSON>
//                      | probe {n} | stop                          (probe, stop: durable only)
//   runner -> host:    ready | C<call id> <tool index> <input JSON> | log {m} | done {ok, r? | e}
//                      | journal {j} | idle {n, o, j}               (durable executions only)
// A call names its tool by its index in the job's `tools`: the runner and the host both check
// it, and the host looks the name up again. The input is the program's text, unparsed here.
// Runner <-> worker: records (calls, log lines, replies) in two rings in a SharedArrayBuffer
// made for each execution (see "The channel to the worker" below); the run, the end, and a
// durable execution's journal, idleness and every record are posted messages.
// Call ids: the worker numbers its calls; the runner gives each its own id towards the host
// and maps replies back, so a forged id reaches nothing. Crossing between threads costs far
// more than the bytes: calls made in one turn of the program (a Promise.all) are published
// with one wake-up of the runner, replies read from the socket together with one wake-up of
// the worker, and lines written to the socket in one turn as one write.

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
  channel?: SharedArrayBuffer; // the rings (absent for durable executions)
  exposeChannel?: boolean; // tests only: the program gets the buffer
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
    publish(); // calls made before the end go first, as they were made
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
    up(logRecord(text));
    publish(); // now: a program that never yields (a stall before its timeout) still shows its logs
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

  function callTool(name: string, index: number, input: unknown, label = `external_${name}`): Promise<unknown> {
    // The site's stack points at the program's line that made the call. Four frames reach it
    // (callTool, external_<name> or a codemode method, maybe a built-in such as
    // Array.prototype.map, the caller); capturing only those costs a fraction of a full stack,
    // which was a seventh of the sandbox's work per call.
    const limit = ErrorCtor.stackTraceLimit;
    ErrorCtor.stackTraceLimit = 4;
    const site = new ErrorCtor();
    ErrorCtor.stackTraceLimit = limit;
    let args: string | undefined;
    try {
      args = toJson(input, `input of ${label}`);
    } catch (err) {
      return Promise.reject(err);
    }
    const c = ++seq;
    return new Promise((resolve, reject) => {
      pending.set(c, { resolve, reject, site });
      // durable executions: the journal since the last call goes just before it
      if (durable !== null) post({ t: "journal", j: durable.report(callLine()) });
      up(callRecord(c, index, args));
    });
  }

  // Discovery (large catalogs): a frozen, locked `codemode` object whose searchTools and
  // describeTools travel to the host as calls to reserved names, which are not identifiers, so
  // no tool has them. The host lists them in the job's tools only when discovery is on; the
  // runner checks and counts them like any call and the host answers them, so a program cannot
  // reach anything else this way, nor make more calls than its limit.
  function installDiscovery(tools: string[]): void {
    const search = tools.indexOf("codemode:search");
    const describe = tools.indexOf("codemode:describe");
    if (search < 0 || describe < 0) return;
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
      return callTool("codemode:search", search, input, "codemode.searchTools");
    };
    const describeTools = (names: unknown): Promise<unknown> =>
      callTool("codemode:describe", describe, { names: typeof names === "string" ? [names] : names }, "codemode.describeTools");
    lock(globalThis, "codemode", Object.freeze({ searchTools, describeTools }));
  }

  // -- the channel to the runner ----------------------------------------------------------------
  // Calls and log lines go up as records, replies come down as records (see the protocol at the
  // top of this file). Records cross in the execution's SharedArrayBuffer, two rings, which
  // costs both threads far less than a message; a record that does not fit is posted instead,
  // and a barrier in the ring marks its place so that the order holds. Durable executions post
  // every record (their journal is the order of messages).
  //
  // The program may patch any global or prototype after this point, so this code uses only
  // what it captured here (a patched method called with the buffer would hand it over; one
  // called with a record would only lie to the program about its own calls). Scribbling on the
  // buffer gains the program nothing: the runner checks every record as it checks messages.
  const uncurry = <T extends (...a: never[]) => unknown>(f: T) => Function.prototype.call.bind(f);
  const Bytes = Uint8Array;
  const Int32 = Int32Array;
  const copyInto = uncurry(Uint8Array.prototype.set) as (to: Uint8Array, from: ArrayLike<number>, at?: number) => void;
  const utf8 = new TextEncoder();
  const encode = utf8.encode.bind(utf8);
  const text = new TextDecoder();
  const decode = text.decode.bind(text) as (bytes: Uint8Array) => string;
  const parse = JSON.parse;
  const atomicLoad = Atomics.load;
  const atomicStore = Atomics.store;
  const atomicNotify = Atomics.notify;
  const waitAsync = Atomics.waitAsync;
  const min = Math.min;
  const sliceArray = uncurry(Array.prototype.slice) as <T>(list: T[], from: number) => T[];
  const RING = 65536; // bytes in each ring; the layout is the runner's `Channel`
  const UP_TAIL = 0, UP_HEAD = 1, DOWN_TAIL = 2, DOWN_HEAD = 3, UP_DATA = 64, DOWN_DATA = 64 + RING;
  const CALL = 67, LOG = 76, BARRIER = 80, RESULT = 82, ERROR = 69; // C L P R E

  let ring: { buffer: SharedArrayBuffer; i32: Int32Array; bytes: Uint8Array } | null = null;
  let upTail = 0; // bytes written to the up ring (published to the runner by `publish`)
  let published = 0;
  let publishing = false;
  let posted = 0; // records posted instead of written
  let barrierOwed = false;
  let downHead = 0;
  let downPosts = 0; // records the runner posted that were handled here
  const downPosted: Uint8Array[] = [];
  let downBacklog: Uint8Array[] = [];

  function callRecord(c: number, index: number, args: string | undefined): Uint8Array {
    const body = args === undefined ? new Bytes(0) : encode(args);
    const record = new Bytes(9 + body.length);
    record[0] = CALL;
    putU32(record, 1, c);
    putU32(record, 5, index);
    copyInto(record, body, 9);
    return record;
  }
  function logRecord(line: string): Uint8Array {
    const body = encode(line);
    const record = new Bytes(1 + body.length);
    record[0] = LOG;
    copyInto(record, body, 1);
    return record;
  }
  function putU32(bytes: Uint8Array, at: number, n: number): void {
    bytes[at] = n & 255;
    bytes[at + 1] = (n >>> 8) & 255;
    bytes[at + 2] = (n >>> 16) & 255;
    bytes[at + 3] = (n >>> 24) & 255;
  }
  function getU32(bytes: Uint8Array, at: number): number {
    return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
  }

  // Sends one record up: into the ring when it fits (published at the end of the turn, so a
  // Promise.all wakes the runner once), else posted.
  function up(record: Uint8Array): void {
    if (ring !== null && durable === null) {
      if (barrierOwed) {
        const barrier = new Bytes(5);
        barrier[0] = BARRIER;
        putU32(barrier, 1, posted);
        barrierOwed = !write(barrier);
      }
      if (!barrierOwed && write(record)) {
        if (!publishing) { // the first of this turn
          publishing = true;
          microtask(publish);
        }
        return;
      }
    }
    publish(); // what is in the ring goes first
    post(record);
    posted += 1;
    barrierOwed = ring !== null;
  }
  // Writes [length][record] at the ring's tail if it fits.
  function write(record: Uint8Array): boolean {
    const r = ring!;
    const used = (upTail - atomicLoad(r.i32, UP_HEAD)) >>> 0;
    if (used > RING || RING - used < 4 + record.length) return false;
    const length = new Bytes(4);
    putU32(length, 0, record.length);
    put(r, length);
    put(r, record);
    return true;
  }
  function put(r: { buffer: SharedArrayBuffer }, bytes: Uint8Array): void {
    const at = upTail % RING;
    const first = min(bytes.length, RING - at);
    copyInto(new Bytes(r.buffer, UP_DATA + at, first), new Bytes(bytes.buffer, bytes.byteOffset, first));
    if (first < bytes.length) {
      copyInto(new Bytes(r.buffer, UP_DATA, bytes.length - first), new Bytes(bytes.buffer, bytes.byteOffset + first, bytes.length - first));
    }
    upTail = (upTail + bytes.length) >>> 0;
  }
  function publish(): void {
    publishing = false;
    if (ring === null || published === upTail) return;
    published = upTail;
    atomicStore(ring.i32, UP_TAIL, upTail | 0);
    atomicNotify(ring.i32, UP_TAIL);
  }

  // Replies: read from the ring whenever the runner rings, or with a posted record (which goes
  // where its barrier is, or after everything in the ring when its barrier has not come yet).
  async function watchRing(r: { buffer: SharedArrayBuffer; i32: Int32Array }): Promise<void> {
    for (;;) {
      const seen = atomicLoad(r.i32, DOWN_TAIL);
      receive();
      const wait = waitAsync(r.i32, DOWN_TAIL, seen);
      if (wait.async) await wait.value;
    }
  }
  function receive(postedRecord?: Uint8Array): void {
    if (postedRecord !== undefined) downPosted[downPosted.length] = postedRecord;
    if (downBacklog.length === 0 && ring !== null) downBacklog = readRing(ring);
    let next = 0;
    while (next < downBacklog.length) {
      const record = downBacklog[next];
      if (record[0] === BARRIER) {
        const before = getU32(record, 1); // records the runner posted before this point
        while (downPosts < before && downPosted.length > 0) takePosted();
        if (downPosts < before) break; // its posted record is still on its way
        next += 1;
      } else {
        next += 1;
        reply(record);
      }
    }
    downBacklog = next < downBacklog.length ? sliceArray(downBacklog, next) : [];
    if (downBacklog.length === 0) while (downPosted.length > 0) takePosted();
  }
  function takePosted(): void {
    const record = downPosted[0]; // shifted by hand: Array methods may be the program's
    for (let i = 1; i < downPosted.length; i++) downPosted[i - 1] = downPosted[i];
    downPosted.length -= 1;
    downPosts += 1;
    reply(record);
  }
  function readRing(r: { buffer: SharedArrayBuffer; i32: Int32Array }): Uint8Array[] {
    const tail = atomicLoad(r.i32, DOWN_TAIL) >>> 0;
    const size = (tail - downHead) >>> 0;
    if (size === 0 || size > RING) return [];
    const bytes = new Bytes(size);
    const at = downHead % RING;
    const first = min(size, RING - at);
    copyInto(bytes, new Bytes(r.buffer, DOWN_DATA + at, first));
    if (first < size) copyInto(bytes, new Bytes(r.buffer, DOWN_DATA, size - first), first);
    downHead = tail;
    atomicStore(r.i32, DOWN_HEAD, tail | 0);
    const records: Uint8Array[] = [];
    for (let i = 0; i + 4 <= size;) {
      const length = getU32(bytes, i);
      if (length === 0 || length > size - i - 4) break;
      records[records.length] = new Bytes(bytes.buffer, i + 4, length);
      i += 4 + length;
    }
    return records;
  }
  // A reply record: [R|E][the worker's call id][JSON: the value, or {message, name}].
  function reply(record: Uint8Array): void {
    if (record[0] !== RESULT && record[0] !== ERROR) return;
    const msg: { c: number; ok: boolean; v?: unknown; e?: ErrorInfo } = { c: getU32(record, 1), ok: record[0] === RESULT };
    const body = record.length > 5 ? parse(decode(new Bytes(record.buffer, record.byteOffset + 5, record.length - 5))) : undefined;
    if (msg.ok) msg.v = body;
    else msg.e = body as ErrorInfo;
    if (durable === null) settle(msg);
    else durable.arrive(msg);
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
    msg.tools.forEach((name, index) => {
      if (name.startsWith("codemode:")) return; // reserved names: the `codemode` object below
      Object.defineProperty(globalThis, `external_${name}`, {
        value: (input: unknown) => callTool(name, index, input),
        enumerable: false,
      });
    });
    if (msg.channel !== undefined) {
      ring = { buffer: msg.channel, i32: new Int32(msg.channel), bytes: new Bytes(msg.channel) };
      watchRing(ring);
      // Tests of the runner's side give the program the buffer, as if it had found it.
      if (msg.exposeChannel) lock(globalThis, "__codemodeChannel", msg.channel);
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
    if (msg instanceof Bytes) receive(msg); // a reply that did not fit in the ring
    else if (msg instanceof Array) for (const record of msg) reply(record); // durable: in order
    else if (msg.t === "run") run(msg);
    else if (msg.t === "probe") durable?.probe(msg.n);
    else if (msg.t === "warm") warmCallPath(); // its delivery compiled the job's path too
  };
  // A new isolate compiles the call path, and Deno's code under it, on first use: ~0.7 ms that
  // the program's first call would wait for. The spare runs it on throwaway values first,
  // touching nothing a call uses later (no ring, no pending call, no call id).
  function warmCallPath(): void {
    for (let i = 0; i < 3; i++) {
      const limit = ErrorCtor.stackTraceLimit;
      ErrorCtor.stackTraceLimit = 4;
      const site = new ErrorCtor();
      ErrorCtor.stackTraceLimit = limit;
      const args = toJson({ value: i, label: "warm" }, "warm-up")!;
      const record = callRecord(i, 0, args);
      parse(decode(new Bytes(record.buffer, 9, record.length - 9)));
      getU32(record, 1);
      const flag = new Int32(new SharedArrayBuffer(4));
      const waiting = waitAsync(flag, 0, 0);
      atomicStore(flag, 0, 1);
      atomicNotify(flag, 0);
      if (waiting.async) waiting.value.then(() => site);
    }
  }
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
let outbox: Uint8Array[] = [];
let outboxBytes = 0;
let writing = false;
function sendBytes(line: Uint8Array): void {
  outbox.push(line);
  outboxBytes += line.length;
  if (!writing) {
    writing = true;
    queueMicrotask(pump);
  }
}
function send(message: Record<string, Json | undefined>): void {
  sendBytes(encoder.encode(JSON.stringify(message) + "\n"));
}
async function pump(): Promise<void> {
  try {
    conn ??= await connecting;
    while (outbox.length > 0) {
      const data = outbox.length === 1 ? outbox[0] : concat(outbox, outboxBytes);
      outbox = [];
      outboxBytes = 0;
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

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const all = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}
function getU32(bytes: Uint8Array, at: number): number {
  return (bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16) | (bytes[at + 3] << 24)) >>> 0;
}
function putU32(bytes: Uint8Array, at: number, n: number): void {
  bytes[at] = n & 255;
  bytes[at + 1] = (n >>> 8) & 255;
  bytes[at + 2] = (n >>> 16) & 255;
  bytes[at + 3] = (n >>> 24) & 255;
}

// ---------------------------------------------------------------------------------------------
// The channel to the worker: two rings in a SharedArrayBuffer made for each execution (none for
// durable executions, whose records are all posted). Four Int32 slots come first: UP_TAIL (bytes
// the worker has written, mod 2^32), UP_HEAD (bytes the runner has read), DOWN_TAIL, DOWN_HEAD;
// then the up ring (worker -> runner) at UP_DATA and the down ring at DOWN_DATA, RING bytes
// each, holding [u32 length][record] one after another. A writer publishes its tail with
// Atomics.store and rings with Atomics.notify; a reader waits with Atomics.waitAsync, never
// Atomics.wait: this thread must never block on a buffer the program can write to.
//
// The worker's side is the program's realm, so everything in the up ring is untrusted: it is
// copied out once, then checked and parsed from the copy (the program may write meanwhile); a
// length or position that makes no sense ends the execution. What the worker reads from the
// down ring (DOWN_HEAD) only decides how much room there is; nonsense means "full".
// A record that does not fit is posted instead, and the writer then puts a barrier in its ring
// ([P][records posted so far]): the reader takes the posted records the barrier counts before
// anything after it, so the order of records holds across the two ways.
// ---------------------------------------------------------------------------------------------
const RING = 65536; // as in workerMain
const UP_TAIL = 0, UP_HEAD = 1, DOWN_TAIL = 2, DOWN_HEAD = 3, UP_DATA = 64, DOWN_DATA = 64 + RING;
const CALL = 67, LOG = 76, BARRIER = 80, RESULT = 82, ERROR = 69; // C L P R E
const NEWLINE = 10, SPACE = 32;

class Channel {
  readonly buffer = new SharedArrayBuffer(DOWN_DATA + RING);
  readonly i32 = new Int32Array(this.buffer);
  readonly bytes = new Uint8Array(this.buffer);
  closed = false;
  // up: what the worker wrote and posted
  upHead = 0; // bytes read (ours: UP_HEAD in the buffer is only a report to the worker)
  upPosts = 0; // posted records taken
  upPosted: Uint8Array[] = []; // posted records waiting for their place
  backlog: Uint8Array[] = []; // records read, waiting behind a barrier
  // down: what we write and post
  downTail = 0;
  downPublished = 0;
  downPosts = 0; // records posted instead of written
  barrierOwed = false;
}

interface Execution {
  tools: string[];
  limits: Limits;
  calls: number;
  inFlight: number;
  queued: Uint8Array[]; // call lines over maxConcurrentToolCalls, bounded by maxToolCalls
  workerIds: Map<number, number>; // host call id -> the worker's own id
  logBytes: number;
  logsClosed: boolean;
  done: boolean;
  channel: Channel | null; // null: a durable execution, every record posted
  replies: Uint8Array[]; // a durable execution's replies, posted together in order
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
    // A new isolate compiles Deno's message path on its first message: ~1.3 ms that the job
    // would wait for. A message shaped like the job (with a shared buffer) pays it now, and
    // has the spare warm its call path (warmCallPath).
    w.postMessage({ t: "warm", channel: new SharedArrayBuffer(8) });
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

// Messages the worker posts: a record that did not fit in the ring (or any record, durable),
// the end, and a durable execution's journal and idleness. The ring goes first: what the
// worker wrote there before posting was made first.
function onWorkerMessage(msg: unknown): void {
  const ex = execution;
  if (ex === null || ex.done) return;
  if (msg instanceof Uint8Array) return receive(ex, msg);
  if (!isRecord(msg)) return;
  receive(ex);
  if (ex.done) return;
  switch (msg.t) {
    case "journal": // durable executions: the journal since the last call, just before it
      send({ t: "journal", j: msg.j as Json });
      return;
    case "done":
      return onDone(ex, msg);
    case "idle": // durable executions: the worker has nothing left to do but wait
      send({ t: "idle", n: msg.n as Json, o: msg.o as Json, j: msg.j as Json });
      return;
  }
}

// Waits for records in the up ring, for as long as the execution lasts. A program that keeps
// writing gets the ring read a few times in a row, then waits a task, so the host's replies
// (and its timeout) still get through.
async function watchRing(ex: Execution, ch: Channel): Promise<void> {
  while (!ch.closed) {
    for (let spins = 0;; spins++) {
      const seen = Atomics.load(ch.i32, UP_TAIL);
      receive(ex);
      if (ch.closed) return;
      const wait = Atomics.waitAsync(ch.i32, UP_TAIL, seen);
      if (wait.async) {
        await wait.value;
        break;
      }
      if (spins === 3) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        break;
      }
    }
  }
}

// Records from the worker in the order it made them: those in the ring, and posted ones each at
// its barrier (or after everything read, when its barrier has not come yet).
function receive(ex: Execution, posted?: Uint8Array): void {
  const ch = ex.channel;
  if (ch === null) {
    if (posted !== undefined) onRecord(ex, posted);
    return;
  }
  if (posted !== undefined) ch.upPosted.push(posted);
  if (ch.backlog.length === 0) ch.backlog = readRing(ex, ch);
  let next = 0;
  while (next < ch.backlog.length && !ex.done) {
    const record = ch.backlog[next];
    if (record[0] === BARRIER) {
      if (record.length !== 5) return broken(ex, "a barrier record of the wrong size");
      const before = getU32(record, 1);
      while (ch.upPosts < before && ch.upPosted.length > 0 && !ex.done) takePosted(ex, ch);
      if (ch.upPosts < before) break; // its posted record is still on its way
    } else {
      onRecord(ex, record);
    }
    next += 1;
  }
  ch.backlog = next < ch.backlog.length ? ch.backlog.slice(next) : [];
  if (ch.backlog.length === 0) while (ch.upPosted.length > 0 && !ex.done) takePosted(ex, ch);
}
function takePosted(ex: Execution, ch: Channel): void {
  ch.upPosts += 1;
  onRecord(ex, ch.upPosted.shift()!);
}

// Everything the worker has published in the up ring, copied out, as records.
function readRing(ex: Execution, ch: Channel): Uint8Array[] {
  const tail = Atomics.load(ch.i32, UP_TAIL) >>> 0;
  const size = (tail - ch.upHead) >>> 0;
  if (size === 0) return [];
  if (size > RING) {
    broken(ex, `it published ${size} bytes in a ring of ${RING}`);
    return [];
  }
  const bytes = new Uint8Array(size);
  const at = ch.upHead % RING;
  const first = Math.min(size, RING - at);
  bytes.set(ch.bytes.subarray(UP_DATA + at, UP_DATA + at + first));
  if (first < size) bytes.set(ch.bytes.subarray(UP_DATA, UP_DATA + size - first), first);
  ch.upHead = tail;
  Atomics.store(ch.i32, UP_HEAD, tail | 0);
  const records: Uint8Array[] = [];
  for (let i = 0; i < size;) {
    const length = size - i >= 4 ? getU32(bytes, i) : 0;
    if (length === 0 || length > size - i - 4) {
      broken(ex, `a record at byte ${i} of ${size} has a length past the end`);
      return [];
    }
    records.push(bytes.subarray(i + 4, i + 4 + length));
    i += 4 + length;
  }
  return records;
}

// A channel that makes no sense was scribbled on by the program: it ends its own execution.
function broken(ex: Execution, why: string): void {
  if (execution !== ex) return;
  end({ ok: false, e: { name: "ProtocolError", message: `The program broke its channel to the runner: ${why}.` } });
}

function onRecord(ex: Execution, record: Uint8Array): void {
  if (ex.done) return;
  if (record[0] === CALL) onCall(ex, record);
  else if (record[0] === LOG) onLog(ex, record.subarray(1));
  // anything else (junk, a posted barrier) is ignored, as junk messages are
}

// A call record: [C][the worker's call id][the tool's index in the job's list][input JSON].
function onCall(ex: Execution, record: Uint8Array): void {
  if (record.length < 9) return;
  const workerId = getU32(record, 1);
  const index = getU32(record, 5);
  const input = record.subarray(9);
  const name = index < ex.tools.length ? ex.tools[index] : undefined;
  if (name === undefined) {
    return refuse(ex, workerId, "ReferenceError", `There is no tool number ${index}: the call was forged.`);
  }
  if (input.length > ex.limits.maxResultBytes) {
    const message = `The input of external_${name} is ${input.length} bytes, over the limit of ${ex.limits.maxResultBytes}.`;
    return refuse(ex, workerId, "TypeError", message);
  }
  if (input.indexOf(NEWLINE) >= 0) { // never in what JSON.stringify writes: it would end the line
    return refuse(ex, workerId, "TypeError", `The input of external_${name} is not JSON.`);
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
  // To the host: C<call id> <tool index> <input JSON>. The input is the worker's bytes, as they
  // are: the host parses and validates it as untrusted input.
  const head = encoder.encode(`C${c} ${index} `);
  const line = new Uint8Array(head.length + input.length + 1);
  line.set(head);
  line.set(input, head.length);
  line[line.length - 1] = NEWLINE;
  if (ex.inFlight < ex.limits.maxConcurrentToolCalls) {
    ex.inFlight += 1;
    sendBytes(line);
  } else {
    ex.queued.push(line);
  }
}

// A call the runner answers itself, as the host would have with an error.
function refuse(ex: Execution, workerId: number, name: string, message: string): void {
  toWorker(ex, ERROR, workerId, encoder.encode(JSON.stringify({ name, message })));
  flushToWorker(ex);
}

// A log line counts its UTF-8 bytes plus what holding one more line costs the host (a Python
// str and its list slot): a flood of tiny lines cannot make the host hold many times the limit.
const LOG_LINE_COST = 64;

function onLog(ex: Execution, text: Uint8Array): void {
  if (ex.logsClosed) return;
  ex.logBytes += text.length + LOG_LINE_COST;
  if (ex.logBytes > ex.limits.maxLogBytes) {
    ex.logsClosed = true;
    send({ t: "log", m: `[logs truncated: over the limit of ${ex.limits.maxLogBytes} bytes]` });
    return;
  }
  send({ t: "log", m: decoder.decode(text) });
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
  if (ex.channel !== null) {
    ex.channel.closed = true;
    Atomics.notify(ex.channel.i32, UP_TAIL); // our own waiter lets go of the buffer
  }
  execution = null;
  send({ t: "done", ...result });
  afterWrite.push(startSpare); // the host hears "done" before the next realm is made
}

// A reply record for the worker: [R|E][the worker's call id][JSON]. Into the down ring (made
// visible by flushToWorker, once per read from the socket), or posted when it does not fit.
function toWorker(ex: Execution, kind: number, workerId: number, json: Uint8Array): void {
  const ch = ex.channel;
  if (ch !== null && ch.barrierOwed) {
    const barrier = new Uint8Array(5);
    barrier[0] = BARRIER;
    putU32(barrier, 1, ch.downPosts);
    ch.barrierOwed = !writeRing(ch, barrier, null);
  }
  if (ch !== null && !ch.barrierOwed) {
    const head = new Uint8Array(5);
    head[0] = kind;
    putU32(head, 1, workerId);
    if (writeRing(ch, head, json)) return;
  }
  const record = new Uint8Array(5 + json.length);
  record[0] = kind;
  putU32(record, 1, workerId);
  record.set(json, 5);
  if (ch === null) {
    ex.replies.push(record);
    return;
  }
  flushToWorker(ex); // what is in the ring goes first
  worker?.postMessage(record, [record.buffer]);
  ch.downPosts += 1;
  ch.barrierOwed = true;
}

// Writes [length][head][body] at the down ring's tail if it fits.
function writeRing(ch: Channel, head: Uint8Array, body: Uint8Array | null): boolean {
  const length = head.length + (body === null ? 0 : body.length);
  const used = (ch.downTail - (Atomics.load(ch.i32, DOWN_HEAD) >>> 0)) >>> 0;
  if (used > RING || RING - used < 4 + length) return false; // full, or the program scribbled
  const prefix = new Uint8Array(4);
  putU32(prefix, 0, length);
  putRing(ch, prefix);
  putRing(ch, head);
  if (body !== null) putRing(ch, body);
  return true;
}
function putRing(ch: Channel, bytes: Uint8Array): void {
  const at = ch.downTail % RING;
  const first = Math.min(bytes.length, RING - at);
  ch.bytes.set(bytes.subarray(0, first), DOWN_DATA + at);
  if (first < bytes.length) ch.bytes.set(bytes.subarray(first), DOWN_DATA);
  ch.downTail = (ch.downTail + bytes.length) >>> 0;
}

function flushToWorker(ex: Execution | null): void {
  if (ex === null) return;
  const ch = ex.channel;
  if (ch === null) {
    if (ex.replies.length === 0) return;
    worker?.postMessage(ex.replies); // in order: a durable execution's journal depends on it
    ex.replies = [];
  } else if (ch.downPublished !== ch.downTail) {
    ch.downPublished = ch.downTail;
    Atomics.store(ch.i32, DOWN_TAIL, ch.downTail | 0);
    Atomics.notify(ch.i32, DOWN_TAIL);
  }
}

// A line from the host. Replies are R<call id> <value JSON> or E<call id> <{message, name}>:
// the JSON goes to the worker as the host wrote it, unparsed here. Anything else is a JSON object.
function onHostLine(line: Uint8Array): void {
  if (line[0] === RESULT || line[0] === ERROR) return onReply(line);
  onHostMessage(JSON.parse(decoder.decode(line)));
}

function onReply(line: Uint8Array): void {
  const ex = execution;
  if (ex === null) return; // a reply for an execution that ended has nowhere to go
  let c = 0;
  let i = 1;
  for (; i < line.length && line[i] !== SPACE; i++) c = c * 10 + line[i] - 48;
  const workerId = ex.workerIds.get(c);
  if (workerId === undefined) return;
  ex.workerIds.delete(c);
  const next = ex.queued.shift();
  if (next !== undefined) sendBytes(next);
  else ex.inFlight -= 1;
  toWorker(ex, line[0], workerId, line.subarray(i + 1));
}

function onHostMessage(msg: Record<string, unknown>): void {
  if (msg.t === "probe") { // durable executions: is the program idle?
    flushToWorker(execution); // after the replies read before it, as they came
    worker?.postMessage(msg);
  } else if (msg.t === "stop") { // durable executions: the host pauses it
    end({ ok: false, e: { name: "ExecutionPaused", message: "The host paused the execution." } });
  } else if (msg.t === "run") {
    const run = msg as unknown as RunMessage;
    if (execution !== null || spare === null) Deno.exit(71); // the host never does this
    const ex: Execution = {
      tools: run.tools,
      limits: run.limits,
      calls: 0,
      inFlight: 0,
      queued: [],
      workerIds: new Map(),
      logBytes: 0,
      logsClosed: false,
      done: false,
      channel: run.durable ? null : new Channel(),
      replies: [],
    };
    execution = ex;
    worker = useSpare();
    worker.postMessage({ ...run, channel: ex.channel?.buffer });
    if (ex.channel !== null) watchRing(ex, ex.channel);
  }
}

startSpare();
conn ??= await connecting;

// Read lines from the host until it hangs up; then there is nothing to serve. A line may span
// many reads (a large program or reply): its pieces are kept until its newline comes.
const readBuffer = new Uint8Array(1 << 16);
let partial: Uint8Array[] = [];
let partialBytes = 0;
for (;;) {
  const n = await conn.read(readBuffer);
  if (n === null) break;
  const chunk = readBuffer.subarray(0, n);
  let start = 0;
  for (let newline = chunk.indexOf(NEWLINE); newline >= 0; newline = chunk.indexOf(NEWLINE, start)) {
    let line: Uint8Array = chunk.subarray(start, newline);
    if (partial.length > 0) {
      partial.push(line);
      line = concat(partial, partialBytes + line.length);
      partial = [];
      partialBytes = 0;
    }
    if (line.length > 0) onHostLine(line);
    start = newline + 1;
  }
  if (start < n) {
    partial.push(chunk.slice(start)); // a copy: the buffer is read into again
    partialBytes += n - start;
  }
  flushToWorker(execution); // replies read together wake the worker once
}
Deno.exit(0);
