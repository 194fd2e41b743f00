// Built from runner.ts by `python -m codemode.sandboxes._runner_build` (deno bundle, Deno 2.9.8); do not edit. runner.ts sha256 ee39e19dd6cc9665c5295ac09604a42ae1e8398af65e073783ef88cb6b47510f
function workerMain() {
  const scope = globalThis;
  const post = scope.postMessage.bind(scope);
  const stringify = JSON.stringify;
  const ErrorCtor = Error;
  const microtask = queueMicrotask;
  microtask(() => {
  });
  const pending = /* @__PURE__ */ new Map();
  let seq = 0;
  let logBytes = 0;
  const LOG_LINE_COST2 = 64;
  let maxLogBytes = 0;
  let programUrl = "";
  let lineOffset = 0;
  let lineCount = 0;
  let finished = false;
  function lock(target, key, value) {
    Object.defineProperty(target, key, {
      value,
      writable: false,
      configurable: false,
      enumerable: false
    });
  }
  function namedError(name, message) {
    const err = new Error(message);
    err.name = name;
    return err;
  }
  function refuseExit(how) {
    const err = namedError("ExitError", `The program called ${how}; a program ends by returning a value or throwing an Error.`);
    finish({
      ok: false,
      e: errorInfo(err)
    });
    throw err;
  }
  lock(Deno, "exit", (code) => refuseExit(`exit(${code === void 0 ? "" : String(code)})`));
  lock(globalThis, "close", () => refuseExit("close()"));
  const NativeWorker = globalThis.Worker;
  let maxWorkers = 0;
  let workersLeft = 0;
  const LimitedWorker = function(specifier, options) {
    if (new.target === void 0) throw new TypeError("Failed to construct 'Worker': Please use the 'new' operator.");
    if (workersLeft <= 0) {
      throw namedError("WorkerLimitError", `The program tried to start a Worker, over the limit of ${maxWorkers} per execution; do the work in the program itself.`);
    }
    workersLeft -= 1;
    return new NativeWorker(specifier, options);
  };
  lock(LimitedWorker, "name", "Worker");
  lock(LimitedWorker, "prototype", NativeWorker.prototype);
  lock(NativeWorker.prototype, "constructor", LimitedWorker);
  lock(globalThis, "Worker", LimitedWorker);
  const createObjectURL = URL.createObjectURL;
  const revokeObjectURL = URL.revokeObjectURL;
  lock(URL, "createObjectURL", () => {
    throw new TypeError("URL.createObjectURL is not available in the sandbox: a blob URL outlives the program.");
  });
  function programLine(stack, clamp = false) {
    if (typeof stack !== "string" || programUrl === "") return void 0;
    for (const frame of stack.split("\n")) {
      const at = frame.indexOf(programUrl + ":");
      if (at < 0) continue;
      const m = /^:(\d+):\d+/.exec(frame.slice(at + programUrl.length));
      if (!m) continue;
      const line = Number(m[1]) - lineOffset;
      if (line >= 1 && line <= lineCount) return line;
      if (clamp && line > lineCount) return lineCount;
    }
    return void 0;
  }
  const captureStackTrace = Error.captureStackTrace;
  function callLine() {
    const errorClass = Error;
    const saved = errorClass.prepareStackTrace;
    try {
      errorClass.prepareStackTrace = (_error, sites) => sites;
      const holder = {};
      captureStackTrace(holder, callTool);
      for (const site of holder.stack ?? []) {
        if (site.getFileName() !== programUrl) continue;
        const line = (site.getLineNumber() ?? 0) - lineOffset;
        if (line >= 1 && line <= lineCount) return line;
      }
    } catch {
    } finally {
      errorClass.prepareStackTrace = saved;
    }
    return void 0;
  }
  function toJson(value, what, errorName = "TypeError") {
    const fail = (message) => {
      throw errorName === "TypeError" ? new TypeError(message) : namedError(errorName, message);
    };
    const stack = [];
    const check = (v, path) => {
      const kind = typeof v;
      if (kind === "bigint") fail(`${what} is not JSON: BigInt at ${path} (convert it with Number() or String())`);
      if (kind === "function" || kind === "symbol") {
        if (stack.length > 0 && !Array.isArray(stack[stack.length - 1])) return;
        if (kind === "function" && path === what && what === "result") {
          fail("The program returned a function instead of its value: call it, e.g. `return await main()`.");
        }
        fail(`${what} is not JSON: ${kind} at ${path}` + (kind === "function" ? " (call it, or leave it out)" : ""));
      }
      if (kind !== "object" || v === null) return;
      if (v instanceof Promise || typeof v.then === "function") {
        fail(path === what ? `${what === "result" ? "The program returned" : `The ${what} is`} a Promise: add \`await\`.` : `${what} holds a Promise at ${path}: a call was not awaited; add \`await\` (for several calls, \`await Promise.all([...])\`).`);
      }
      const obj = v;
      if (typeof obj.toJSON === "function") return check(obj.toJSON(), path);
      if (stack.includes(v)) fail(`${what} is not JSON: circular reference at ${path}`);
      if (v instanceof Map) fail(`${what} is not JSON: Map at ${path} (convert it with Object.fromEntries())`);
      if (v instanceof Set) fail(`${what} is not JSON: Set at ${path} (convert it with Array.from())`);
      stack.push(v);
      if (Array.isArray(v)) v.forEach((item, i) => check(item, `${path}[${i}]`));
      else for (const key of Object.keys(v)) check(v[key], `${path}.${key}`);
      stack.pop();
    };
    check(value, what);
    return value === void 0 ? void 0 : stringify(value);
  }
  function errorInfo(err) {
    if (err instanceof Error || typeof err === "object" && err !== null && "message" in err) {
      const e = err;
      const info = {
        message: String(e.message),
        name: typeof e.name === "string" && e.name ? e.name : "Error"
      };
      const line = programLine(e.stack);
      if (line !== void 0) info.line = line;
      return info;
    }
    let text2;
    try {
      text2 = typeof err === "string" ? err : String(stringify(err));
    } catch {
      text2 = String(err);
    }
    return {
      message: `Uncaught ${text2} (a non-Error value was thrown)`,
      name: "Error"
    };
  }
  function finish(msg) {
    if (finished) return;
    finished = true;
    publish();
    post({
      t: "done",
      ...msg
    });
  }
  function render(value) {
    if (typeof value === "string") return value;
    if (value instanceof Error) return `${value.name}: ${value.message}`;
    if (value === void 0) return "undefined";
    if (typeof value === "bigint") return `${value}n`;
    if (typeof value === "function") return `[Function ${value.name || "anonymous"}]`;
    const seen = [];
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
  function log(prefix, args) {
    if (finished || logBytes > maxLogBytes) return;
    const text2 = prefix + args.map(render).join(" ");
    logBytes += text2.length + LOG_LINE_COST2;
    up(logRecord(text2));
    publish();
  }
  function installConsole() {
    const quiet = () => {
    };
    const c = globalThis.console;
    for (const key of Object.keys(c)) if (typeof c[key] === "function") c[key] = quiet;
    c.log = (...a) => log("", a);
    c.info = (...a) => log("", a);
    c.debug = (...a) => log("", a);
    c.dir = (v) => log("", [
      v
    ]);
    c.table = (v) => log("", [
      v
    ]);
    c.trace = (...a) => log("", a);
    c.warn = (...a) => log("[warn] ", a);
    c.error = (...a) => log("[error] ", a);
    c.assert = (cond, ...a) => {
      if (!cond) log("[error] Assertion failed: ", a);
    };
  }
  function callTool(name, index, input, label = `external_${name}`) {
    const limit = ErrorCtor.stackTraceLimit;
    ErrorCtor.stackTraceLimit = 4;
    const site = new ErrorCtor();
    ErrorCtor.stackTraceLimit = limit;
    let args;
    try {
      args = toJson(input, `input of ${label}`);
    } catch (err) {
      return Promise.reject(err);
    }
    const c = ++seq;
    return new Promise((resolve, reject) => {
      pending.set(c, {
        resolve,
        reject,
        site
      });
      if (durable !== null) post({
        t: "journal",
        j: durable.report(callLine())
      });
      up(callRecord(c, index, args));
    });
  }
  function installDiscovery(tools) {
    const search = tools.indexOf("codemode:search");
    const describe = tools.indexOf("codemode:describe");
    if (search < 0 || describe < 0) return;
    const searchTools = (query, options) => {
      let input;
      if (typeof query === "object" && query !== null && !Array.isArray(query)) {
        input = query;
      } else if (options === void 0 || options === null) {
        input = {
          query
        };
      } else if (typeof options === "object" && !Array.isArray(options)) {
        input = {
          ...options,
          query
        };
      } else {
        const message = "codemode.searchTools(query, options): options must be an object such as { limit: 5 }";
        return Promise.reject(new TypeError(message));
      }
      return callTool("codemode:search", search, input, "codemode.searchTools");
    };
    const describeTools = (names) => callTool("codemode:describe", describe, {
      names: typeof names === "string" ? [
        names
      ] : names
    }, "codemode.describeTools");
    lock(globalThis, "codemode", Object.freeze({
      searchTools,
      describeTools
    }));
  }
  const uncurry = (f) => Function.prototype.call.bind(f);
  const Bytes = Uint8Array;
  const Int32 = Int32Array;
  const copyInto = uncurry(Uint8Array.prototype.set);
  const utf8 = new TextEncoder();
  const encode = utf8.encode.bind(utf8);
  const text = new TextDecoder();
  const decode = text.decode.bind(text);
  const parse = JSON.parse;
  const atomicLoad = Atomics.load;
  const atomicStore = Atomics.store;
  const atomicNotify = Atomics.notify;
  const waitAsync = Atomics.waitAsync;
  const min = Math.min;
  const sliceArray = uncurry(Array.prototype.slice);
  const RING2 = 65536;
  const UP_TAIL2 = 0, UP_HEAD2 = 1, DOWN_TAIL2 = 2, DOWN_HEAD2 = 3, UP_DATA2 = 64, DOWN_DATA2 = 64 + RING2;
  const CALL2 = 67, LOG2 = 76, BARRIER2 = 80, RESULT2 = 82, ERROR2 = 69;
  let ring = null;
  let upTail = 0;
  let published = 0;
  let publishing = false;
  let posted = 0;
  let barrierOwed = false;
  let downHead = 0;
  let downPosts = 0;
  const downPosted = [];
  let downBacklog = [];
  function callRecord(c, index, args) {
    const body = args === void 0 ? new Bytes(0) : encode(args);
    const record = new Bytes(9 + body.length);
    record[0] = CALL2;
    putU322(record, 1, c);
    putU322(record, 5, index);
    copyInto(record, body, 9);
    return record;
  }
  function logRecord(line) {
    const body = encode(line);
    const record = new Bytes(1 + body.length);
    record[0] = LOG2;
    copyInto(record, body, 1);
    return record;
  }
  function putU322(bytes, at, n) {
    bytes[at] = n & 255;
    bytes[at + 1] = n >>> 8 & 255;
    bytes[at + 2] = n >>> 16 & 255;
    bytes[at + 3] = n >>> 24 & 255;
  }
  function getU322(bytes, at) {
    return (bytes[at] | bytes[at + 1] << 8 | bytes[at + 2] << 16 | bytes[at + 3] << 24) >>> 0;
  }
  function up(record) {
    if (ring !== null && durable === null) {
      if (barrierOwed) {
        const barrier = new Bytes(5);
        barrier[0] = BARRIER2;
        putU322(barrier, 1, posted);
        barrierOwed = !write(barrier);
      }
      if (!barrierOwed && write(record)) {
        if (!publishing) {
          publishing = true;
          microtask(publish);
        }
        return;
      }
    }
    publish();
    post(record);
    posted += 1;
    barrierOwed = ring !== null;
  }
  function write(record) {
    const r = ring;
    const used = upTail - atomicLoad(r.i32, UP_HEAD2) >>> 0;
    if (used > RING2 || RING2 - used < 4 + record.length) return false;
    const length = new Bytes(4);
    putU322(length, 0, record.length);
    put(r, length);
    put(r, record);
    return true;
  }
  function put(r, bytes) {
    const at = upTail % RING2;
    const first = min(bytes.length, RING2 - at);
    copyInto(new Bytes(r.buffer, UP_DATA2 + at, first), new Bytes(bytes.buffer, bytes.byteOffset, first));
    if (first < bytes.length) {
      copyInto(new Bytes(r.buffer, UP_DATA2, bytes.length - first), new Bytes(bytes.buffer, bytes.byteOffset + first, bytes.length - first));
    }
    upTail = upTail + bytes.length >>> 0;
  }
  function publish() {
    publishing = false;
    if (ring === null || published === upTail) return;
    published = upTail;
    atomicStore(ring.i32, UP_TAIL2, upTail | 0);
    atomicNotify(ring.i32, UP_TAIL2);
  }
  async function watchRing2(r) {
    for (; ; ) {
      const seen = atomicLoad(r.i32, DOWN_TAIL2);
      receive2();
      const wait = waitAsync(r.i32, DOWN_TAIL2, seen);
      if (wait.async) await wait.value;
    }
  }
  function receive2(postedRecord) {
    if (postedRecord !== void 0) downPosted[downPosted.length] = postedRecord;
    if (downBacklog.length === 0 && ring !== null) downBacklog = readRing2(ring);
    let next = 0;
    while (next < downBacklog.length) {
      const record = downBacklog[next];
      if (record[0] === BARRIER2) {
        const before = getU322(record, 1);
        while (downPosts < before && downPosted.length > 0) takePosted2();
        if (downPosts < before) break;
        next += 1;
      } else {
        next += 1;
        reply(record);
      }
    }
    downBacklog = next < downBacklog.length ? sliceArray(downBacklog, next) : [];
    if (downBacklog.length === 0) while (downPosted.length > 0) takePosted2();
  }
  function takePosted2() {
    const record = downPosted[0];
    for (let i = 1; i < downPosted.length; i++) downPosted[i - 1] = downPosted[i];
    downPosted.length -= 1;
    downPosts += 1;
    reply(record);
  }
  function readRing2(r) {
    const tail = atomicLoad(r.i32, DOWN_TAIL2) >>> 0;
    const size = tail - downHead >>> 0;
    if (size === 0 || size > RING2) return [];
    const bytes = new Bytes(size);
    const at = downHead % RING2;
    const first = min(size, RING2 - at);
    copyInto(bytes, new Bytes(r.buffer, DOWN_DATA2 + at, first));
    if (first < size) copyInto(bytes, new Bytes(r.buffer, DOWN_DATA2, size - first), first);
    downHead = tail;
    atomicStore(r.i32, DOWN_HEAD2, tail | 0);
    const records = [];
    for (let i = 0; i + 4 <= size; ) {
      const length = getU322(bytes, i);
      if (length === 0 || length > size - i - 4) break;
      records[records.length] = new Bytes(bytes.buffer, i + 4, length);
      i += 4 + length;
    }
    return records;
  }
  function reply(record) {
    if (record[0] !== RESULT2 && record[0] !== ERROR2) return;
    const msg = {
      c: getU322(record, 1),
      ok: record[0] === RESULT2
    };
    const body = record.length > 5 ? parse(decode(new Bytes(record.buffer, record.byteOffset + 5, record.length - 5))) : void 0;
    if (msg.ok) msg.v = body;
    else msg.e = body;
    if (durable === null) settle(msg);
    else durable.arrive(msg);
  }
  function settle(msg) {
    const call = pending.get(msg.c);
    if (!call) return;
    pending.delete(msg.c);
    if (msg.ok) {
      call.resolve(msg.v);
      return;
    }
    const info = msg.e ?? {
      message: "tool call failed",
      name: "Error"
    };
    const err = new Error(info.message);
    err.name = info.name;
    const frames = String(call.site.stack).split("\n").slice(2).join("\n");
    err.stack = `${info.name}: ${info.message}
${frames}`;
    call.reject(err);
  }
  let durable = null;
  function startDurable(recorded) {
    const events = Array.isArray(recorded.events) ? recorded.events : [];
    const values = Array.isArray(recorded.values) ? recorded.values : [];
    let ei = 0;
    let vi = 0;
    const newEvents = [];
    const newValues = [];
    let eventsReported = 0;
    let valuesReported = 0;
    let replaying = events.length > 0;
    const MAX_VALUES = 2e5;
    function fail(name, message) {
      const err = namedError(name, message);
      finish({
        ok: false,
        e: errorInfo(err)
      });
      throw err;
    }
    function tape(kind, live, encode2, decode2) {
      if (vi < values.length) {
        const entry = values[vi++];
        if (!Array.isArray(entry) || entry[0] !== kind) {
          fail("ReplayDivergenceError", `On resume, the program read ${kindName(kind)} where its first run read ${kindName(Array.isArray(entry) ? String(entry[0]) : "?")} (value ${vi}); the program is not deterministic.`);
        }
        return decode2 ? decode2(entry[1]) : entry[1];
      }
      const value = live();
      if (newValues.length >= MAX_VALUES) {
        fail("DurableLimitError", `The program read the clock or random values more than ${MAX_VALUES} times; a durable execution records each read. Read the clock once and reuse it.`);
      }
      newValues.push([
        kind,
        encode2 ? encode2(value) : value
      ]);
      return value;
    }
    function kindName(kind) {
      return {
        d: "the clock",
        p: "performance.now()",
        o: "performance.timeOrigin",
        r: "Math.random()",
        g: "crypto.getRandomValues()",
        u: "crypto.randomUUID()"
      }[kind] ?? `"${kind}"`;
    }
    const NativeDate = Date;
    const nativeNow = Date.now;
    const clock = () => tape("d", nativeNow);
    const DurableDate = function(...args) {
      if (new.target === void 0) return new NativeDate(clock()).toString();
      return Reflect.construct(NativeDate, args.length === 0 ? [
        clock()
      ] : args, new.target);
    };
    Object.defineProperty(DurableDate, "prototype", {
      value: NativeDate.prototype
    });
    Object.defineProperty(DurableDate, "length", {
      value: 7
    });
    Object.defineProperty(DurableDate, "name", {
      value: "Date"
    });
    DurableDate.now = clock;
    DurableDate.parse = NativeDate.parse;
    DurableDate.UTC = NativeDate.UTC;
    Object.defineProperty(NativeDate.prototype, "constructor", {
      value: DurableDate,
      writable: true,
      configurable: true
    });
    globalThis.Date = DurableDate;
    const perf = globalThis.performance;
    const perfNow = perf.now.bind(perf);
    const timeOrigin = perf.timeOrigin;
    let lastPerf = 0;
    let perfShift = -1;
    const perfLive = () => {
      if (perfShift < 0) perfShift = Math.max(0, lastPerf - perfNow());
      return perfNow() + perfShift;
    };
    let origin;
    Object.defineProperty(perf, "now", {
      value: () => lastPerf = tape("p", perfLive),
      writable: true,
      configurable: true
    });
    Object.defineProperty(perf, "timeOrigin", {
      get: () => origin ??= tape("o", () => timeOrigin),
      configurable: true
    });
    const cryptoObj = globalThis.crypto;
    const getRandomValues = cryptoObj.getRandomValues.bind(cryptoObj);
    const randomUUID = cryptoObj.randomUUID.bind(cryptoObj);
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0, seeded = false;
    function next32() {
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
    function rotl(x, k) {
      return x << k | x >>> 32 - k;
    }
    Math.random = () => {
      if (!seeded) {
        const seed = tape("r", () => Array.from(getRandomValues(new Uint32Array(4))), void 0, (v) => v);
        [s0, s1, s2, s3] = seed.map((x) => x | 0);
        if ((s0 | s1 | s2 | s3) === 0) s3 = 1;
        seeded = true;
      }
      return ((next32() >>> 5) * 67108864 + (next32() >>> 6)) / 9007199254740992;
    };
    Object.defineProperty(cryptoObj, "getRandomValues", {
      value: (array) => {
        getRandomValues(array);
        const view = array;
        const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
        const hex = tape("g", () => toHex(bytes));
        if (typeof hex === "string" && hex.length === bytes.length * 2) {
          for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
        }
        return array;
      },
      writable: true,
      configurable: true
    });
    Object.defineProperty(cryptoObj, "randomUUID", {
      value: () => tape("u", randomUUID),
      writable: true,
      configurable: true
    });
    function toHex(bytes) {
      let hex = "";
      for (const b of bytes) hex += (b < 16 ? "0" : "") + b.toString(16);
      return hex;
    }
    const held = /* @__PURE__ */ new Map();
    const channel = new MessageChannel();
    let kicked = false;
    channel.port1.onmessage = () => {
      kicked = false;
      release();
    };
    function kick() {
      if (!kicked) {
        kicked = true;
        channel.port2.postMessage(null);
      }
    }
    function release() {
      try {
        if (replaying) {
          const event = events[ei];
          const kind = event[0];
          const id = Number(event.slice(1));
          if (kind === "t") {
            const timer = timers.get(id);
            if (timer === void 0) {
              if (id <= timerSeq) ei += 1;
              return;
            }
            ei += 1;
            fire(id, timer);
          } else {
            const deliver = held.get(event);
            if (deliver === void 0) return;
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
    function goLive() {
      replaying = false;
      for (const [id, timer] of timers) arm(id, timer);
    }
    function happen(event, deliver) {
      if (replaying && held.size === 0 && events[ei] === event) {
        ei += 1;
        if (ei >= events.length) goLive();
        deliver();
        if (releasable()) kick();
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
    const timers = /* @__PURE__ */ new Map();
    let timerSeq = 0;
    const nativeSetTimeout = globalThis.setTimeout;
    const nativeSetInterval = globalThis.setInterval;
    const nativeClearTimeout = globalThis.clearTimeout;
    const evaluate = globalThis.eval;
    function addTimer(handler, delay, args, repeat) {
      const id = ++timerSeq;
      const callback = typeof handler === "function" ? () => handler(...args) : () => evaluate(String(handler));
      const timer = {
        callback,
        delay: Math.max(0, Number(delay) || 0),
        repeat
      };
      timers.set(id, timer);
      if (!replaying) arm(id, timer);
      else if (releasable()) kick();
      return id;
    }
    function arm(id, timer) {
      if (timer.handle !== void 0) return;
      const onFire = () => {
        if (!timer.repeat) timer.handle = void 0;
        happen(`t${id}`, () => fire(id, timer));
      };
      timer.handle = timer.repeat ? nativeSetInterval(onFire, timer.delay) : nativeSetTimeout(onFire, timer.delay);
    }
    function fire(id, timer) {
      if (!timers.has(id)) return;
      if (!timer.repeat) timers.delete(id);
      timer.callback();
    }
    function clearTimer(id) {
      const timer = timers.get(Number(id));
      if (timer === void 0) return;
      if (timer.handle !== void 0) nativeClearTimeout(timer.handle);
      timers.delete(Number(id));
    }
    const timerApi = {
      setTimeout: (h, d, ...a) => addTimer(h, d, a, false),
      setInterval: (h, d, ...a) => addTimer(h, d, a, true),
      clearTimeout: clearTimer,
      clearInterval: clearTimer
    };
    for (const [key, value] of Object.entries(timerApi)) {
      Object.defineProperty(globalThis, key, {
        value,
        writable: true,
        configurable: true
      });
    }
    let operations = 0;
    let operationSeq = 0;
    function track(target, key) {
      const original = target[key];
      if (typeof original !== "function") return;
      Object.defineProperty(target, key, {
        value: (...args) => {
          const id = ++operationSeq;
          operations += 1;
          let started;
          try {
            started = Promise.resolve(original.apply(target, args));
          } catch (err) {
            operations -= 1;
            throw err;
          }
          return new Promise((resolve, reject) => {
            const done = (settle2) => happen(`a${id}`, () => {
              operations -= 1;
              settle2();
            });
            started.then((v) => done(() => resolve(v)), (e) => done(() => reject(e)));
          });
        },
        writable: true,
        configurable: true
      });
    }
    const subtle = cryptoObj.subtle;
    for (const key of [
      "encrypt",
      "decrypt",
      "sign",
      "verify",
      "digest",
      "generateKey",
      "deriveKey",
      "deriveBits",
      "importKey",
      "exportKey",
      "wrapKey",
      "unwrapKey"
    ]) {
      track(subtle, key);
    }
    const wasm = globalThis.WebAssembly;
    for (const key of [
      "compile",
      "instantiate",
      "compileStreaming",
      "instantiateStreaming"
    ]) track(wasm, key);
    let asked = 0;
    let answered = 0;
    let checking = false;
    function checkIdle() {
      if (asked <= answered || checking) return;
      checking = true;
      nativeSetTimeout(() => {
        checking = false;
        if (asked <= answered || finished) return;
        if (timers.size > 0 || operations > 0 || releasable()) return;
        answered = asked;
        post({
          t: "idle",
          n: asked,
          o: pending.size - heldCalls(),
          j: report(void 0)
        });
      }, 0);
    }
    function releasable() {
      if (!replaying) return held.size > 0;
      const event = events[ei];
      if (event[0] !== "t") return held.has(event);
      const id = Number(event.slice(1));
      return timers.has(id) || id <= timerSeq;
    }
    function heldCalls() {
      let n = 0;
      for (const key of held.keys()) if (key[0] === "s") n += 1;
      return n;
    }
    function report(line) {
      const j = {};
      if (line !== void 0) j.l = line;
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
      }
    };
  }
  async function run(msg) {
    if (msg.durable) durable = startDurable(msg.durable);
    maxLogBytes = msg.limits.maxLogBytes;
    maxWorkers = workersLeft = msg.limits.maxWorkers ?? 0;
    lineOffset = msg.lineOffset;
    lineCount = msg.lastLine ?? msg.source.split("\n").length - lineOffset;
    installConsole();
    msg.tools.forEach((name, index) => {
      if (name.startsWith("codemode:")) return;
      Object.defineProperty(globalThis, `external_${name}`, {
        value: (input) => callTool(name, index, input),
        enumerable: false
      });
    });
    if (msg.channel !== void 0) {
      ring = {
        buffer: msg.channel,
        i32: new Int32(msg.channel),
        bytes: new Bytes(msg.channel)
      };
      watchRing2(ring);
      if (msg.exposeChannel) lock(globalThis, "__codemodeChannel", msg.channel);
    }
    installDiscovery(msg.tools);
    programUrl = createObjectURL(new Blob([
      msg.source
    ], {
      type: "application/typescript"
    }));
    let main;
    try {
      main = (await import(programUrl)).default;
    } catch (err) {
      return finish({
        ok: false,
        e: syntaxErrorInfo(err)
      });
    } finally {
      revokeObjectURL(programUrl);
    }
    try {
      const value = await main();
      let r;
      try {
        r = toJson(value, "result", "ResultError");
      } catch (err) {
        return finish({
          ok: false,
          e: errorInfo(err)
        });
      }
      if (r !== void 0 && r.length > msg.limits.maxResultBytes) {
        return finish({
          ok: false,
          e: {
            name: "ResultTooLargeError",
            message: `The result is ${r.length} bytes of JSON, over the limit of ${msg.limits.maxResultBytes}; return a smaller value (filter, aggregate or paginate).`
          }
        });
      }
      finish(r === void 0 ? {
        ok: true
      } : {
        ok: true,
        r
      });
    } catch (err) {
      finish({
        ok: false,
        e: errorInfo(err)
      });
    }
  }
  function syntaxErrorInfo(err) {
    const text2 = String(err?.message ?? err);
    const match = /^(?:TypeError: )?SyntaxError: ([^\n]*)/.exec(text2);
    if (!match) return errorInfo(err);
    const info = {
      message: match[1],
      name: "SyntaxError"
    };
    const line = programLine(text2, true);
    if (line !== void 0) info.line = line;
    return info;
  }
  scope.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    finish({
      ok: false,
      e: errorInfo(event.reason)
    });
  });
  scope.addEventListener("error", (event) => {
    event.preventDefault();
    finish({
      ok: false,
      e: errorInfo(event.error ?? event.message)
    });
  });
  scope.onmessage = (event) => {
    const msg = event.data;
    if (msg instanceof Bytes) receive2(msg);
    else if (msg instanceof Array) for (const record of msg) reply(record);
    else if (msg.t === "run") run(msg);
    else if (msg.t === "probe") durable?.probe(msg.n);
    else if (msg.t === "warm") warmCallPath();
  };
  function warmCallPath() {
    for (let i = 0; i < 3; i++) {
      const limit = ErrorCtor.stackTraceLimit;
      ErrorCtor.stackTraceLimit = 4;
      const site = new ErrorCtor();
      ErrorCtor.stackTraceLimit = limit;
      const args = toJson({
        value: i,
        label: "warm"
      }, "warm-up");
      const record = callRecord(i, 0, args);
      parse(decode(new Bytes(record.buffer, 9, record.length - 9)));
      getU322(record, 1);
      const flag = new Int32(new SharedArrayBuffer(4));
      const waiting = waitAsync(flag, 0, 0);
      atomicStore(flag, 0, 1);
      atomicNotify(flag, 0);
      if (waiting.async) waiting.value.then(() => site);
    }
  }
  post({
    t: "boot"
  });
  const warmUp = createObjectURL(new Blob([
    "export default async function (): Promise<number> { return 1 }"
  ], {
    type: "application/typescript"
  }));
  import(warmUp).then((module) => module.default()).catch(() => {
  }).finally(() => revokeObjectURL(warmUp));
}
var encoder = new TextEncoder();
var decoder = new TextDecoder();
var connecting = Deno.connect({
  transport: "unix",
  path: Deno.env.get("CODEMODE_SOCKET")
});
var conn = null;
var workerPermissions = Deno.env.get("CODEMODE_WORKER_PERMISSIONS") === "inherit" ? "inherit" : "none";
var workerSource = URL.createObjectURL(new Blob([
  `(${workerMain.toString()})();`
], {
  type: "application/javascript"
}));
var outbox = [];
var outboxBytes = 0;
var writing = false;
function sendBytes(line) {
  outbox.push(line);
  outboxBytes += line.length;
  if (!writing) {
    writing = true;
    queueMicrotask(pump);
  }
}
function send(message) {
  sendBytes(encoder.encode(JSON.stringify(message) + "\n"));
}
async function pump() {
  try {
    conn ??= await connecting;
    while (outbox.length > 0) {
      const data = outbox.length === 1 ? outbox[0] : concat(outbox, outboxBytes);
      outbox = [];
      outboxBytes = 0;
      for (let offset = 0; offset < data.length; ) offset += await conn.write(data.subarray(offset));
    }
  } catch {
    Deno.exit(70);
  }
  writing = false;
  const callbacks = afterWrite.splice(0);
  for (const callback of callbacks) callback();
}
var afterWrite = [];
function concat(parts, size) {
  const all = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    all.set(part, at);
    at += part.length;
  }
  return all;
}
function getU32(bytes, at) {
  return (bytes[at] | bytes[at + 1] << 8 | bytes[at + 2] << 16 | bytes[at + 3] << 24) >>> 0;
}
function putU32(bytes, at, n) {
  bytes[at] = n & 255;
  bytes[at + 1] = n >>> 8 & 255;
  bytes[at + 2] = n >>> 16 & 255;
  bytes[at + 3] = n >>> 24 & 255;
}
var RING = 65536;
var UP_TAIL = 0;
var UP_HEAD = 1;
var DOWN_TAIL = 2;
var DOWN_HEAD = 3;
var UP_DATA = 64;
var DOWN_DATA = 64 + RING;
var CALL = 67;
var LOG = 76;
var BARRIER = 80;
var RESULT = 82;
var ERROR = 69;
var NEWLINE = 10;
var SPACE = 32;
var Channel = class {
  buffer = new SharedArrayBuffer(DOWN_DATA + RING);
  i32 = new Int32Array(this.buffer);
  bytes = new Uint8Array(this.buffer);
  closed = false;
  // up: what the worker wrote and posted
  upHead = 0;
  upPosts = 0;
  upPosted = [];
  backlog = [];
  // down: what we write and post
  downTail = 0;
  downPublished = 0;
  downPosts = 0;
  barrierOwed = false;
};
var worker = null;
var spare = null;
var execution = null;
var nextCallId = 0;
function startSpare() {
  const w = new Worker(workerSource, {
    type: "module",
    name: "program",
    deno: {
      permissions: workerPermissions
    }
  });
  w.onmessage = (event) => {
    if (!isRecord(event.data) || event.data.t !== "boot") return;
    w.onmessage = null;
    w.postMessage({
      t: "warm",
      channel: new SharedArrayBuffer(8)
    });
    spare = w;
    send({
      t: "ready"
    });
  };
  w.onerror = (event) => event.preventDefault();
}
function useSpare() {
  const w = spare;
  spare = null;
  w.onmessage = (event) => onWorkerMessage(event.data);
  w.onerror = (event) => {
    event.preventDefault();
    end({
      ok: false,
      e: {
        name: "Error",
        message: String(event.message)
      }
    });
  };
  w.onmessageerror = () => {
  };
  return w;
}
function isRecord(value) {
  return typeof value === "object" && value !== null;
}
function onWorkerMessage(msg) {
  const ex = execution;
  if (ex === null || ex.done) return;
  if (msg instanceof Uint8Array) return receive(ex, msg);
  if (!isRecord(msg)) return;
  receive(ex);
  if (ex.done) return;
  switch (msg.t) {
    case "journal":
      send({
        t: "journal",
        j: msg.j
      });
      return;
    case "done":
      return onDone(ex, msg);
    case "idle":
      send({
        t: "idle",
        n: msg.n,
        o: msg.o,
        j: msg.j
      });
      return;
  }
}
async function watchRing(ex, ch) {
  while (!ch.closed) {
    for (let spins = 0; ; spins++) {
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
function receive(ex, posted) {
  const ch = ex.channel;
  if (ch === null) {
    if (posted !== void 0) onRecord(ex, posted);
    return;
  }
  if (posted !== void 0) ch.upPosted.push(posted);
  if (ch.backlog.length === 0) ch.backlog = readRing(ex, ch);
  let next = 0;
  while (next < ch.backlog.length && !ex.done) {
    const record = ch.backlog[next];
    if (record[0] === BARRIER) {
      if (record.length !== 5) return broken(ex, "a barrier record of the wrong size");
      const before = getU32(record, 1);
      while (ch.upPosts < before && ch.upPosted.length > 0 && !ex.done) takePosted(ex, ch);
      if (ch.upPosts < before) break;
    } else {
      onRecord(ex, record);
    }
    next += 1;
  }
  ch.backlog = next < ch.backlog.length ? ch.backlog.slice(next) : [];
  if (ch.backlog.length === 0) while (ch.upPosted.length > 0 && !ex.done) takePosted(ex, ch);
}
function takePosted(ex, ch) {
  ch.upPosts += 1;
  onRecord(ex, ch.upPosted.shift());
}
function readRing(ex, ch) {
  const tail = Atomics.load(ch.i32, UP_TAIL) >>> 0;
  const size = tail - ch.upHead >>> 0;
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
  const records = [];
  for (let i = 0; i < size; ) {
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
function broken(ex, why) {
  if (execution !== ex) return;
  end({
    ok: false,
    e: {
      name: "ProtocolError",
      message: `The program broke its channel to the runner: ${why}.`
    }
  });
}
function onRecord(ex, record) {
  if (ex.done) return;
  if (record[0] === CALL) onCall(ex, record);
  else if (record[0] === LOG) onLog(ex, record.subarray(1));
}
function onCall(ex, record) {
  if (record.length < 9) return;
  const workerId = getU32(record, 1);
  const index = getU32(record, 5);
  const input = record.subarray(9);
  const name = index < ex.tools.length ? ex.tools[index] : void 0;
  if (name === void 0) {
    return refuse(ex, workerId, "ReferenceError", `There is no tool number ${index}: the call was forged.`);
  }
  if (input.length > ex.limits.maxResultBytes) {
    const message = `The input of external_${name} is ${input.length} bytes, over the limit of ${ex.limits.maxResultBytes}.`;
    return refuse(ex, workerId, "TypeError", message);
  }
  if (input.indexOf(NEWLINE) >= 0) {
    return refuse(ex, workerId, "TypeError", `The input of external_${name} is not JSON.`);
  }
  ex.calls += 1;
  if (ex.calls > ex.limits.maxToolCalls) {
    end({
      ok: false,
      e: {
        name: "ToolCallLimitError",
        message: `The program made more than ${ex.limits.maxToolCalls} tool calls (the limit per execution); batch work into fewer calls.`
      }
    });
    return;
  }
  const c = ++nextCallId;
  ex.workerIds.set(c, workerId);
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
function refuse(ex, workerId, name, message) {
  toWorker(ex, ERROR, workerId, encoder.encode(JSON.stringify({
    name,
    message
  })));
  flushToWorker(ex);
}
var LOG_LINE_COST = 64;
function onLog(ex, text) {
  if (ex.logsClosed) return;
  ex.logBytes += text.length + LOG_LINE_COST;
  if (ex.logBytes > ex.limits.maxLogBytes) {
    ex.logsClosed = true;
    send({
      t: "log",
      m: `[logs truncated: over the limit of ${ex.limits.maxLogBytes} bytes]`
    });
    return;
  }
  send({
    t: "log",
    m: decoder.decode(text)
  });
}
function onDone(ex, msg) {
  if (msg.ok === true) {
    if (msg.r !== void 0 && typeof msg.r !== "string") return;
    if (typeof msg.r === "string" && msg.r.length > ex.limits.maxResultBytes) {
      return end({
        ok: false,
        e: {
          name: "ResultTooLargeError",
          message: `The result is over the limit of ${ex.limits.maxResultBytes} bytes.`
        }
      });
    }
    return end({
      ok: true,
      r: msg.r
    });
  }
  const e = isRecord(msg.e) ? msg.e : {};
  const error = {
    message: typeof e.message === "string" ? e.message : "The program failed",
    name: typeof e.name === "string" ? e.name : "Error"
  };
  if (typeof e.line === "number" && Number.isInteger(e.line)) error.line = e.line;
  end({
    ok: false,
    e: error
  });
}
function end(result) {
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
    Atomics.notify(ex.channel.i32, UP_TAIL);
  }
  execution = null;
  send({
    t: "done",
    ...result
  });
  afterWrite.push(startSpare);
}
function toWorker(ex, kind, workerId, json) {
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
  flushToWorker(ex);
  worker?.postMessage(record, [
    record.buffer
  ]);
  ch.downPosts += 1;
  ch.barrierOwed = true;
}
function writeRing(ch, head, body) {
  const length = head.length + (body === null ? 0 : body.length);
  const used = ch.downTail - (Atomics.load(ch.i32, DOWN_HEAD) >>> 0) >>> 0;
  if (used > RING || RING - used < 4 + length) return false;
  const prefix = new Uint8Array(4);
  putU32(prefix, 0, length);
  putRing(ch, prefix);
  putRing(ch, head);
  if (body !== null) putRing(ch, body);
  return true;
}
function putRing(ch, bytes) {
  const at = ch.downTail % RING;
  const first = Math.min(bytes.length, RING - at);
  ch.bytes.set(bytes.subarray(0, first), DOWN_DATA + at);
  if (first < bytes.length) ch.bytes.set(bytes.subarray(first), DOWN_DATA);
  ch.downTail = ch.downTail + bytes.length >>> 0;
}
function flushToWorker(ex) {
  if (ex === null) return;
  const ch = ex.channel;
  if (ch === null) {
    if (ex.replies.length === 0) return;
    worker?.postMessage(ex.replies);
    ex.replies = [];
  } else if (ch.downPublished !== ch.downTail) {
    ch.downPublished = ch.downTail;
    Atomics.store(ch.i32, DOWN_TAIL, ch.downTail | 0);
    Atomics.notify(ch.i32, DOWN_TAIL);
  }
}
function onHostLine(line) {
  if (line[0] === RESULT || line[0] === ERROR) return onReply(line);
  onHostMessage(JSON.parse(decoder.decode(line)));
}
function onReply(line) {
  const ex = execution;
  if (ex === null) return;
  let c = 0;
  let i = 1;
  for (; i < line.length && line[i] !== SPACE; i++) c = c * 10 + line[i] - 48;
  const workerId = ex.workerIds.get(c);
  if (workerId === void 0) return;
  ex.workerIds.delete(c);
  const next = ex.queued.shift();
  if (next !== void 0) sendBytes(next);
  else ex.inFlight -= 1;
  toWorker(ex, line[0], workerId, line.subarray(i + 1));
}
function onHostMessage(msg) {
  if (msg.t === "probe") {
    flushToWorker(execution);
    worker?.postMessage(msg);
  } else if (msg.t === "stop") {
    end({
      ok: false,
      e: {
        name: "ExecutionPaused",
        message: "The host paused the execution."
      }
    });
  } else if (msg.t === "run") {
    const run = msg;
    if (execution !== null || spare === null) Deno.exit(71);
    const ex = {
      tools: run.tools,
      limits: run.limits,
      calls: 0,
      inFlight: 0,
      queued: [],
      workerIds: /* @__PURE__ */ new Map(),
      logBytes: 0,
      logsClosed: false,
      done: false,
      channel: run.durable ? null : new Channel(),
      replies: []
    };
    execution = ex;
    worker = useSpare();
    worker.postMessage({
      ...run,
      channel: ex.channel?.buffer
    });
    if (ex.channel !== null) watchRing(ex, ex.channel);
  }
}
startSpare();
conn ??= await connecting;
var readBuffer = new Uint8Array(1 << 16);
var partial = [];
var partialBytes = 0;
for (; ; ) {
  const n = await conn.read(readBuffer);
  if (n === null) break;
  const chunk = readBuffer.subarray(0, n);
  let start = 0;
  for (let newline = chunk.indexOf(NEWLINE); newline >= 0; newline = chunk.indexOf(NEWLINE, start)) {
    let line = chunk.subarray(start, newline);
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
    partial.push(chunk.slice(start));
    partialBytes += n - start;
  }
  flushToWorker(execution);
}
Deno.exit(0);
