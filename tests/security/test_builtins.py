"""Patching built-ins. The program shares its realm with the worker bootstrap, which keeps its
own references (``postMessage``, ``JSON.stringify``) from before the program ran; the runner
lives in another realm, and every execution gets a fresh realm. A patch can therefore break
only the program that made it."""

from __future__ import annotations

import pytest
from _support import Attack, check_attack, failed, params, run, succeeded

from codemode import CodeModeTool

pytestmark = pytest.mark.asyncio(loop_scope="module")

TIMED_OUT = failed(
    "The program did not finish within the timeout of 2000 ms; make it do less work or run "
    "independent calls in parallel with Promise.all.",
    "TimeoutError",
    line=None,
)

ATTACKS = [
    # Replies come back through the execution's channel: without the message handler, calls
    # still settle.
    Attack(
        "drop-message-handler",
        "self.onmessage = null; return [await external_echo({ a: 1 })]",
        succeeded([{"a": 1}]),
    ),
    # The runner reads plain own properties of structured clones, in its own realm.
    Attack(
        "pollute-object-prototype",
        'Object.assign(Object.prototype, { t: "done", ok: true, r: \'"polluted"\', n: "secret" }); '
        "return { v: await external_echo({ a: 1 }) }",
        succeeded({"v": {"a": 1}}),
    ),
    Attack(
        "replace-json",
        'JSON.stringify = () => \'"hacked"\'; JSON.parse = () => "hacked"; '
        "const v = await external_echo({ a: 1 }); console.log({ b: 2 }); return { v }",
        succeeded({"v": {"a": 1}}, logs=['{"b":2}']),
    ),
    Attack(
        "replace-post-message",
        'self.postMessage = globalThis.postMessage = () => { throw new Error("no post") }; '
        "return await external_echo({ p: 1 })",
        succeeded({"p": 1}),
    ),
    Attack(
        "hijack-promise-then",
        'Promise.prototype.then = function () { throw new Error("then hijacked") }; return 1',
        succeeded(1),
    ),
    Attack(
        "hijack-function-prototype",
        'Function.prototype.bind = () => () => {}; Function.prototype.call = () => "c"; '
        'Function.prototype.apply = () => "a"; return await external_echo({ f: 1 })',
        succeeded({"f": 1}),
    ),
    Attack(
        "hide-object-keys",
        "Reflect.ownKeys = () => []; Object.keys = () => []; Object.entries = () => []; return { "
        "a: 1 }",
        succeeded({"a": 1}),
    ),
    Attack(
        "freeze-prototypes",
        "Object.freeze(Object.prototype); Object.freeze(Array.prototype); "
        "Object.freeze(globalThis); "
        "return [await external_echo({ z: 1 })]",
        succeeded([{"z": 1}]),
    ),
    # The bootstrap checks results with the realm's Array methods: breaking them breaks only
    # this program's own result.
    Attack(
        "break-array-push",
        'Array.prototype.push = function () { throw new Error("pwned push") }; return [1, 2]',
        failed("pwned push", "Error"),
    ),
    Attack(
        "fake-thenable-result",
        'Object.defineProperty(Object.prototype, "then", { get() { return r => r("thenable") }, '
        "configurable: true }); "
        "return { x: 1 }",
        succeeded("thenable"),
    ),
    Attack(
        "fake-stack-lines",
        'Error.prepareStackTrace = () => "at blob:null/x:999:1"; throw new Error("boom")',
        failed("boom", "Error", line=None),
    ),
]

# Hunting for the execution's channel buffer through everything the bootstrap might touch with
# it: typed-array accessors and methods, constructors' hasInstance, Atomics, Object.prototype
# and Array.prototype setters, messages. Sequential calls, a Promise.all, a reply too large
# for the ring (it goes by message, behind a barrier) and log lines all cross meanwhile; no
# patched function ever sees a SharedArrayBuffer, and every call gets its own reply.
HUNT_CHANNEL = """
const found = []
const isShared = (x) => x instanceof SharedArrayBuffer ||
  (ArrayBuffer.isView(x) && bufferOf.call(x) instanceof SharedArrayBuffer)
const TA = Object.getPrototypeOf(Uint8Array.prototype)
const bufferOf = Object.getOwnPropertyDescriptor(TA, "buffer").get
let busy = false // isShared itself goes through the patched functions
const check = (where, ...xs) => {
  if (busy) return
  busy = true
  try { for (const x of xs) if (isShared(x)) found.push(where) } finally { busy = false }
}
const hasInstance = Function.prototype[Symbol.hasInstance]
for (const key of ["buffer", "length", "byteOffset", "byteLength"]) {
  const get = Object.getOwnPropertyDescriptor(TA, key).get
  Object.defineProperty(TA, key, { get() { check(key, this); return get.call(this) } })
}
for (const key of ["set", "subarray", "slice", "fill", "indexOf"]) {
  const f = TA[key]
  TA[key] = function (...a) { check(key, this, ...a); return f.apply(this, a) }
}
for (const C of [Uint8Array, Int32Array, ArrayBuffer, SharedArrayBuffer, Array, Object]) {
  Object.defineProperty(C, Symbol.hasInstance, {
    value(x) { check("hasInstance", x); return hasInstance.call(this, x) },
  })
}
for (const key of ["load", "store", "notify", "waitAsync", "wait", "add", "exchange"]) {
  const f = Atomics[key]
  Atomics[key] = (...a) => { check(key, ...a); return f(...a) }
}
for (const key of ["channel", "buffer", "i32", "bytes", "ring", "v", "e"]) {
  Object.defineProperty(Object.prototype, key, {
    set(v) { check("set " + key, v); Object.defineProperty(this, key, { value: v, writable: true,
      enumerable: true, configurable: true }) },
    configurable: true,
  })
}
for (const key of ["0", "1", "2"]) {
  Object.defineProperty(Array.prototype, key, {
    set(v) { check("index", v); Object.defineProperty(this, key, { value: v, writable: true,
      enumerable: true, configurable: true }) },
    configurable: true,
  })
}
const decode = TextDecoder.prototype.decode
TextDecoder.prototype.decode = function (b) { check("decode", b); return decode.call(this, b) }
self.addEventListener("message", (e) => check("message", e.data))
const results = []
for (let i = 0; i < 5; i++) results.push((await external_echo({ i })).i)
const all = await Promise.all(Array.from({ length: 20 }, (_, i) => external_echo({ i })))
const big = await external_echo({ big: "x".repeat(100_000) })
console.log("logged")
return [found, results.join(), all.map((r) => r.i).join(), big.big.length]
"""

# What the next execution sees: built-ins as Deno made them.
PRISTINE_CODE = """
return [
  JSON.stringify({ a: [1] }), JSON.parse("[2]"), [1, 2].map(x => x + 1), Object.keys({ z: 1 }),
  Object.prototype.t ?? null, ({}).then ?? null, Object.isFrozen(Object.prototype),
  typeof Promise.prototype.then, typeof Function.prototype.bind, Error.prepareStackTrace ?? null,
  await external_echo({ p: 1 }),
]
"""
PRISTINE = succeeded(
    ['{"a":[1]}', [2], [2, 3], ["z"], None, None, False, "function", "function", None, {"p": 1}]
)


async def test_patched_built_ins_never_reach_the_channel(code_tool: CodeModeTool) -> None:
    expected = [[], "0,1,2,3,4", ",".join(str(i) for i in range(20)), 100_000]
    assert await run(code_tool, HUNT_CHANNEL) == succeeded(expected, logs=["logged"])
    assert await run(code_tool, PRISTINE_CODE) == PRISTINE


@pytest.mark.parametrize("attack", params(ATTACKS))
async def test_patched_built_ins_stay_in_their_realm(
    code_tool: CodeModeTool, attack: Attack
) -> None:
    await check_attack(code_tool, attack)
    assert await run(code_tool, PRISTINE_CODE) == PRISTINE


SELF_STALLING = {
    # The bootstrap's own call table: its program's calls never settle.
    "break-map": "Map.prototype.get = () => undefined; return await external_echo({ m: 1 })",
}


@pytest.mark.parametrize("code", SELF_STALLING.values(), ids=SELF_STALLING.keys())
async def test_breaking_the_bootstrap_only_stalls_the_program(
    quick_code_tool: CodeModeTool, code_tool: CodeModeTool, code: str
) -> None:
    assert await run(quick_code_tool, code) == TIMED_OUT
    assert await run(code_tool, PRISTINE_CODE) == PRISTINE
