"""Nested workers. A nested worker is a fresh realm with a fresh ``Deno`` global, so nothing the
bootstrap locks applies inside it; each also costs a thread and an isolate.

* ``Worker`` is replaced before the program runs by a locked stand-in that counts against
  ``max_workers`` (0 by default) and raises ``WorkerLimitError``; the real constructor lives
  only in the bootstrap's closure and every route back to it is shown closed below.
* ``node:worker_threads`` creates workers through Deno's internals, which a program cannot be
  denied without slowing every execution (~30 ms per realm). The host counts the process's
  threads instead and kills it, with ``WorkerLimitError``, past its allowance; any nested
  worker ends with the execution's realm.
"""

from __future__ import annotations

import asyncio

import pytest
from _support import (
    HEALTHY,
    HEALTHY_CODE,
    Attack,
    check_attack,
    failed,
    params,
    run,
    succeeded,
)

from codemode import CodeModeTool, DenoSandbox, Tool, create_code_mode

pytestmark = pytest.mark.asyncio(loop_scope="module")

REFUSED = failed(
    "The program tried to start a Worker, over the limit of 0 per execution; do the work in "
    "the program itself.",
    "WorkerLimitError",
)
TOO_MANY_THREADS = failed(
    "The program started more than 40 threads (nested workers, node:worker_threads included; "
    "the allowance for max_workers=0); do the work in the program itself.",
    "WorkerLimitError",
    line=None,
)
SOURCE = '"data:application/javascript,postMessage(1)", { type: "module" }'

ATTACKS = [
    Attack(
        "blob-worker",
        'new Worker(URL.createObjectURL(new Blob(["1"])), { type: "module" }); return 1',
        failed(
            "URL.createObjectURL is not available in the sandbox: a blob URL outlives the program.",
            "TypeError",
        ),
    ),
    Attack("data-worker", f"new Worker({SOURCE}); return 1", REFUSED),
    Attack(
        "runner-as-worker",
        'new Worker(new URL("file:///" + "runner.ts"), { type: "module" }); return 1',
        REFUSED,
    ),
    Attack(
        "fork-bomb",
        'const bomb = () => new Worker("data:application/javascript," + encodeURIComponent("(" + '
        'bomb + ")()"), '
        '{ type: "module" }); bomb(); return 1',
        REFUSED,
    ),
    # Every way back to the real constructor.
    Attack(
        "prototype-constructor", f"new Worker.prototype.constructor({SOURCE}); return 1", REFUSED
    ),
    Attack("subclass", f"class Mine extends Worker {{}}; new Mine({SOURCE}); return 1", REFUSED),
    Attack("reflect-construct", f"Reflect.construct(Worker, [{SOURCE}]); return 1", REFUSED),
    Attack(
        "call-without-new",
        f"Worker({SOURCE}); return 1",
        failed("Failed to construct 'Worker': Please use the 'new' operator.", "TypeError"),
    ),
    Attack(
        "delete-global",
        "delete globalThis.Worker; return typeof Worker",
        failed("Cannot delete property 'Worker' of #<DedicatedWorkerGlobalScope>", "TypeError"),
    ),
    Attack(
        "redefine-global",
        'Object.defineProperty(globalThis, "Worker", { value: 1 }); return 1',
        failed("Cannot redefine property: Worker", "TypeError"),
    ),
    Attack(
        "redefine-prototype-constructor",
        'Object.defineProperty(Worker.prototype, "constructor", { value: 1 }); return 1',
        failed("Cannot redefine property: constructor", "TypeError"),
    ),
    Attack(
        "reach-through-realms",
        'const vm = await import("node:vm"); '
        'return [Function("return this")().Worker === Worker, vm.runInNewContext("typeof Worker"), '
        "Object.getPrototypeOf(Worker.prototype).constructor.name, typeof SharedWorker]",
        succeeded([True, "undefined", "EventTarget", "undefined"]),
    ),
    Attack(
        "deno-internal-ops",
        "return Object.getOwnPropertyNames(Deno[Deno.internal].core.ops).filter(n => "
        "/worker/i.test(n))",
        succeeded([]),
    ),
    Attack(
        "node-worker-bomb",
        'const { Worker: W } = await import("node:worker_threads"); const all = []; '
        'for (let i = 0; i < 200; i++) all.push(new W("setInterval(() => {}, 1000)", { eval: '
        "true })); "
        "await new Promise(r => setTimeout(r, 10_000)); return all.length",
        TOO_MANY_THREADS,
    ),
    Attack(
        "node-worker-bomb-require",
        'const { createRequire } = await import("node:module"); '
        'const { Worker: W } = createRequire("file:///x.js")("worker_threads"); '
        "const all = []; for (let i = 0; i < 200; i++) { "
        'all.push(new W("setInterval(() => {}, 1000)", { eval: true })); await new Promise(r => '
        "setTimeout(r, 1)) } "
        "return all.length",
        TOO_MANY_THREADS,
    ),
]


@pytest.mark.parametrize("attack", params(ATTACKS))
async def test_nested_workers_are_refused(code_tool: CodeModeTool, attack: Attack) -> None:
    await check_attack(code_tool, attack)


async def test_a_node_worker_ends_with_its_execution(
    one_process: DenoSandbox, echo_tool: Tool
) -> None:
    """Below the thread allowance a node worker may start, but it ends with the realm of the
    execution that made it: the next execution in the same process hears nothing from it."""
    tool = create_code_mode(tools=[echo_tool], sandbox=one_process).tool
    started = await run(
        tool,
        'const { Worker: W } = await import("node:worker_threads"); '
        'new W(\'const c = new BroadcastChannel("leak"); setInterval(() => '
        'c.postMessage("alive"), 10)\', { eval: true }); '
        'const c = new BroadcastChannel("leak"); '
        "await new Promise(r => { c.onmessage = r }); c.close(); return Deno.cwd()",
    )
    assert started["success"] is True
    listened = await run(
        tool,
        'const c = new BroadcastChannel("leak"); let heard = 0; c.onmessage = () => { heard += 1 '
        "}; "
        "await new Promise(r => setTimeout(r, 300)); c.close(); return [Deno.cwd(), heard]",
    )
    assert listened == succeeded([started["result"], 0])
    await asyncio.sleep(0)
    assert await run(tool, HEALTHY_CODE) == HEALTHY
