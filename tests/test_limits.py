"""Every limit, hit by an attack: each ends in its own error name with a message naming the
limit and its value, the host's own memory stays bounded while it happens, and the next
execution on the same code tool succeeds.

| limit                    | default    | set with                       | error               |
| ------------------------ | ---------- | ------------------------------ | ------------------- |
| wall-clock time          | 30 000 ms  | ``create_code_mode(timeout=)`` | TimeoutError        |
| V8 heap                  | 256 MB     | ``DenoSandbox(heap_mb=)``      | MemoryLimitError    |
| process memory (RSS)     | 512 MB     | ``DenoSandbox(memory_mb=)``    | MemoryLimitError    |
| log bytes                | 1 000 000  | ``max_log_bytes=``             | (truncated, marker) |
| result bytes             | 10 000 000 | ``max_result_bytes=``          | ResultTooLargeError |
| tool calls per execution | 10 000     | ``max_tool_calls=``            | ToolCallLimitError  |
| tool calls in flight     | 256        | ``max_concurrent_tool_calls=`` | (queued)            |
| nested workers / threads | 0 / 40     | ``max_workers=``               | WorkerLimitError    |
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from _helpers import run
from codemode import (
    CodeModeTool,
    DenoSandbox,
    ExecutionLimits,
    Tool,
    create_code_mode,
    create_tool,
)

if TYPE_CHECKING:
    from conftest import HostMemory

HEALTHY_CODE = "return [6 * 7, await external_echo({ ok: true })]"
HEALTHY = {"success": True, "result": [42, {"ok": True}], "logs": []}
HOST_GROWTH_MB = 64  # what the host may grow by while a sandbox is under attack


class Echo:
    """A tool that returns its input and tracks how many of its calls run at once."""

    def __init__(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, value: Any) -> Any:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            return value
        finally:
            self.in_flight -= 1

    def tool(self) -> Tool:
        return create_tool(
            id="echo",
            description="Returns its input.",
            input_schema={"type": "object"},
            execute=self,
        )


@pytest.fixture
def echo() -> Echo:
    return Echo()


def code_tool(sandbox: DenoSandbox, echo: Echo, **options: Any) -> CodeModeTool:
    return create_code_mode(tools=[echo.tool()], sandbox=sandbox, **options).tool


def failed(name: str, message: str, logs: list[str] | None = None) -> dict[str, Any]:
    return {"success": False, "logs": logs or [], "error": {"name": name, "message": message}}


async def attack(
    tool: CodeModeTool, code: str, host_memory: type[HostMemory]
) -> tuple[dict[str, Any], float]:
    """Run ``code`` while watching the host's memory; check the tool works afterwards."""
    with host_memory() as memory:
        started = time.monotonic()
        outcome = await run(tool, code)
        elapsed = time.monotonic() - started
    assert memory.growth_mb < HOST_GROWTH_MB
    assert await run(tool, HEALTHY_CODE) == HEALTHY
    return outcome, elapsed


# -- defaults and configuration ----------------------------------------------------------------


async def test_the_defaults_are_safe(deno_sandbox: DenoSandbox, echo: Echo) -> None:
    tool = code_tool(deno_sandbox, echo)
    assert tool.timeout_ms == 30_000
    assert tool.limits == ExecutionLimits(
        max_tool_calls=10_000,
        max_concurrent_tool_calls=256,
        max_log_bytes=1_000_000,
        max_result_bytes=10_000_000,
        max_workers=0,
    )
    assert (deno_sandbox.heap_mb, deno_sandbox.memory_mb) == (256, 512)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("timeout", 0, "timeout is in milliseconds and must be a positive int, got 0"),
        ("max_tool_calls", 0, "max_tool_calls must be at least 1, got 0"),
        ("max_concurrent_tool_calls", 0, "max_concurrent_tool_calls must be at least 1, got 0"),
        ("max_log_bytes", 0, "max_log_bytes must be at least 1, got 0"),
        ("max_result_bytes", -1, "max_result_bytes must be at least 1, got -1"),
        ("max_workers", -1, "max_workers must be at least 0, got -1"),
    ],
)
def test_limits_are_checked_when_configured(option: str, value: int, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        options: dict[str, Any] = {option: value}
        create_code_mode(tools=[], sandbox=DenoSandbox(), **options)
    assert str(raised.value) == message


def test_sandbox_memory_settings_are_checked() -> None:
    with pytest.raises(ValueError) as raised:
        DenoSandbox(heap_mb=8)
    assert str(raised.value) == "heap_mb must be at least 16, got 8"
    with pytest.raises(ValueError) as raised:
        DenoSandbox(heap_mb=256, memory_mb=128)
    assert str(raised.value) == "memory_mb (128) must be at least heap_mb (256)"


# -- wall-clock time ---------------------------------------------------------------------------

TIMED_OUT = failed(
    "TimeoutError",
    "The program did not finish within the timeout of 1000 ms; make it do less work or run "
    "independent calls in parallel with Promise.all.",
)

STALLS = {
    "sync-loop": "while (true) {}",
    "microtask-loop": (
        "const spin = () => Promise.resolve().then(spin); spin(); await new Promise(() => {})"
    ),
    "never-settles": "await new Promise(() => {})",
    "timer-chain": "const tick = () => setTimeout(tick, 0); tick(); await new Promise(() => {})",
    "catastrophic-regex": 'return /^(a+)+$/.test("a".repeat(40) + "b")',
    "tool-call-loop": "while (true) await external_echo({})",
}


@pytest.mark.parametrize("code", STALLS.values(), ids=STALLS.keys())
async def test_the_timeout_ends_any_stall(
    deno_sandbox: DenoSandbox, echo: Echo, host_memory: type[HostMemory], code: str
) -> None:
    # The call limit is out of the way: at ~10,000 calls/s the loop of calls could reach the
    # default (10,000) before the timeout, and this is about the timeout.
    tool = code_tool(deno_sandbox, echo, timeout=1000, max_tool_calls=1_000_000)
    outcome, elapsed = await attack(tool, f"console.log(String(Deno.pid)); {code}", host_memory)
    pid = outcome["logs"][0]
    assert outcome == {**TIMED_OUT, "logs": [pid]}
    assert 1.0 <= elapsed < 2.5


# -- memory ------------------------------------------------------------------------------------


@pytest.fixture
async def small_sandbox() -> AsyncIterator[DenoSandbox]:
    async with DenoSandbox(heap_mb=64, memory_mb=256) as sandbox:
        yield sandbox


async def test_a_heap_bomb_hits_the_v8_heap_limit(
    small_sandbox: DenoSandbox, echo: Echo, host_memory: type[HostMemory]
) -> None:
    tool = code_tool(small_sandbox, echo)
    outcome, _ = await attack(
        tool,
        'const all = []; while (true) all.push({ n: all.length, s: "item " + all.length })',
        host_memory,
    )
    assert outcome == failed(
        "MemoryLimitError",
        "The program ran out of JavaScript heap (the V8 heap limit of 64 MB); use less memory.",
    )


async def test_a_string_bomb_is_a_catchable_error(
    small_sandbox: DenoSandbox, echo: Echo, host_memory: type[HostMemory]
) -> None:
    tool = code_tool(small_sandbox, echo)
    outcome, _ = await attack(tool, 'let s = "x"; while (true) s += s', host_memory)
    assert outcome == {
        "success": False,
        "logs": [],
        "error": {"name": "RangeError", "message": "Invalid string length", "line": 1},
    }


OUTSIDE_THE_HEAP = {
    "array-buffers": "const keep = []; while (true) keep.push(new Uint8Array(16 << 20).fill(1))",
    "shared-array-buffers": (
        "const keep = []; while (true) { const b = new SharedArrayBuffer(16 << 20); "
        "new Uint8Array(b).fill(1); keep.push(b) }"
    ),
    "webassembly-memory": (
        "const m = new WebAssembly.Memory({ initial: 1, maximum: 65536 }); "
        "while (true) { m.grow(256); new Uint8Array(m.buffer).fill(1, m.buffer.byteLength - (256 "
        "<< 16)) }"
    ),
    "array-buffers-async": (
        "const keep = []; while (true) { keep.push(new Uint8Array(8 << 20).fill(1)); "
        "await new Promise(r => setTimeout(r, 0)) }"
    ),
}


@pytest.mark.parametrize("code", OUTSIDE_THE_HEAP.values(), ids=OUTSIDE_THE_HEAP.keys())
async def test_memory_outside_the_heap_hits_the_memory_limit(
    small_sandbox: DenoSandbox, echo: Echo, host_memory: type[HostMemory], code: str
) -> None:
    tool = code_tool(small_sandbox, echo)
    outcome, _ = await attack(tool, code, host_memory)
    assert outcome == failed(
        "MemoryLimitError",
        "The program used more than the memory limit of 256 MB (including ArrayBuffers and "
        "WebAssembly); use less memory.",
    )


# -- output ------------------------------------------------------------------------------------


LOG_LINE_COST = 64  # what holding one more line costs the host, counted with its bytes


def kept_lines(lines: list[str], limit: int) -> list[str]:
    """The lines a log limit keeps (each counted as its UTF-8 bytes plus ``LOG_LINE_COST``),
    then the marker."""
    kept: list[str] = []
    total = 0
    for line in lines:
        total += len(line.encode()) + LOG_LINE_COST
        if total > limit:
            return [*kept, f"[logs truncated: over the limit of {limit} bytes]"]
        kept.append(line)
    return kept


async def test_a_log_flood_is_truncated_then_ignored(
    deno_sandbox: DenoSandbox, echo: Echo, host_memory: type[HostMemory]
) -> None:
    tool = code_tool(deno_sandbox, echo, max_log_bytes=1000)
    outcome, _ = await attack(
        tool,
        'for (let i = 0; i < 200000; i++) console.log("line " + i, "é"); return "done"',
        host_memory,
    )
    expected = kept_lines([f"line {i} é" for i in range(200)], 1000)
    assert outcome == {"success": True, "result": "done", "logs": expected}
    assert len(expected) == 14  # 13 lines of 73 or 74 bytes, then the marker


async def test_the_default_log_limit_holds_a_flood_of_every_kind(
    deno_sandbox: DenoSandbox, echo: Echo, host_memory: type[HostMemory]
) -> None:
    tool = code_tool(deno_sandbox, echo)
    outcome, _ = await attack(
        tool,
        'const big = "z".repeat(2_000_000); console.error(big); '
        'for (let i = 0; i < 300000; i++) console.warn("w" + i); return "done"',
        host_memory,
    )
    assert outcome == {
        "success": True,
        "result": "done",
        "logs": ["[logs truncated: over the limit of 1000000 bytes]"],
    }


RAW_FLOODS = {
    "stdout": "const b = new Uint8Array(1 << 16).fill(120); while (true) Deno.stdout.writeSync(b)",
    "stderr": "const b = new Uint8Array(1 << 16).fill(120); while (true) Deno.stderr.writeSync(b)",
    "node-fd": (
        'const fs = await import("node:fs"); const b = "x".repeat(1 << 16); '
        "while (true) fs.writeSync(2, b)"
    ),
    "async-stdout": (
        "const b = new Uint8Array(1 << 16).fill(120); "
        "while (true) await Promise.all([Deno.stdout.write(b), Deno.stderr.write(b)])"
    ),
}


@pytest.mark.parametrize("code", RAW_FLOODS.values(), ids=RAW_FLOODS.keys())
async def test_raw_output_floods_are_never_collected(
    deno_sandbox: DenoSandbox, echo: Echo, host_memory: type[HostMemory], code: str
) -> None:
    """stdout goes to /dev/null and the host keeps the last 8 KB of stderr (for crash
    reports): a flood costs the host nothing, and the timeout ends it."""
    tool = code_tool(deno_sandbox, echo, timeout=1000)
    outcome, _ = await attack(tool, code, host_memory)
    assert outcome == TIMED_OUT


async def test_a_100_mb_result_is_refused_in_the_sandbox(
    deno_sandbox: DenoSandbox, echo: Echo, host_memory: type[HostMemory]
) -> None:
    tool = code_tool(deno_sandbox, echo)
    outcome, _ = await attack(tool, 'return "x".repeat(100_000_000)', host_memory)
    assert outcome == failed(
        "ResultTooLargeError",
        "The result is 100000002 bytes of JSON, over the limit of 10000000; return a smaller "
        "value (filter, aggregate or paginate).",
    )


async def test_the_result_limit_is_configurable(
    deno_sandbox: DenoSandbox, echo: Echo, host_memory: type[HostMemory]
) -> None:
    tool = code_tool(deno_sandbox, echo, max_result_bytes=100)
    assert await run(tool, 'return "x".repeat(98)') == {
        "success": True,
        "result": "x" * 98,
        "logs": [],
    }
    outcome, _ = await attack(
        tool, 'return { items: [1, 2, 3], text: "x".repeat(100) }', host_memory
    )
    assert outcome == failed(
        "ResultTooLargeError",
        "The result is 127 bytes of JSON, over the limit of 100; return a smaller value "
        "(filter, aggregate or paginate).",
    )


# -- tool calls --------------------------------------------------------------------------------

HUNDRED_THOUSAND_CALLS = (
    "const all = await Promise.all(Array.from({ length: 100_000 }, (_, i) => external_echo({ i "
    "}))); "
    "return all.reduce((sum, r) => sum + r.i, 0)"
)


async def test_100_000_concurrent_calls_hit_the_call_limit(
    deno_sandbox: DenoSandbox, echo: Echo, host_memory: type[HostMemory]
) -> None:
    tool = code_tool(deno_sandbox, echo)
    outcome, _ = await attack(tool, HUNDRED_THOUSAND_CALLS, host_memory)
    assert outcome == failed(
        "ToolCallLimitError",
        "The program made more than 10000 tool calls (the limit per execution); batch work "
        "into fewer calls.",
    )
    assert echo.calls <= 10_000 + 1  # the health check's call
    assert echo.max_in_flight <= 256


async def test_100_000_concurrent_calls_are_queued_below_the_concurrency_limit(
    deno_sandbox: DenoSandbox, echo: Echo, host_memory: type[HostMemory]
) -> None:
    """The runner queues what is over the limit: the host never sees more at once, and every
    call completes."""
    tool = code_tool(
        deno_sandbox, echo, max_tool_calls=100_000, max_concurrent_tool_calls=64, timeout=60_000
    )
    outcome, _ = await attack(tool, HUNDRED_THOUSAND_CALLS, host_memory)
    assert outcome == {"success": True, "result": sum(range(100_000)), "logs": []}
    assert echo.calls == 100_000 + 1
    assert echo.max_in_flight == 64


# -- nested workers ----------------------------------------------------------------------------

DATA_WORKER = (
    '"data:application/javascript,onmessage = e => postMessage(e.data * 2)", { type: "module" }'
)


async def test_a_worker_fork_bomb_is_refused(
    deno_sandbox: DenoSandbox, echo: Echo, host_memory: type[HostMemory]
) -> None:
    tool = code_tool(deno_sandbox, echo)
    outcome, _ = await attack(
        tool,
        'const bomb = () => new Worker("data:application/javascript," + encodeURIComponent("(" + '
        'bomb + ")()"), '
        '{ type: "module" });\nwhile (true) bomb()',
        host_memory,
    )
    assert outcome == {
        "success": False,
        "logs": [],
        "error": {
            "name": "WorkerLimitError",
            "message": "The program tried to start a Worker, over the limit of 0 per execution; "
            "do the work in the program itself.",
            "line": 1,
        },
    }


async def test_workers_up_to_the_limit_run(
    deno_sandbox: DenoSandbox, echo: Echo, host_memory: type[HostMemory]
) -> None:
    tool = code_tool(deno_sandbox, echo, max_workers=2)
    outcome, _ = await attack(
        tool,
        f"""
        const ask = (w, n) => new Promise(r => {{ w.onmessage = e => r(e.data); w.postMessage(n) }})
        const a = new Worker({DATA_WORKER}), b = new Worker({DATA_WORKER})
        const answers = [await ask(a, 1), await ask(b, 2)]
        try {{ new Worker({DATA_WORKER}) }} catch (e) {{ answers.push(e.name + ": " + e.message) }}
        return answers
        """,
        host_memory,
    )
    assert outcome == {
        "success": True,
        "result": [
            2,
            4,
            "WorkerLimitError: The program tried to start a Worker, over the limit of 2 per "
            "execution; do the work in the program itself.",
        ],
        "logs": [],
    }


NODE_WORKER_BOMB = (
    'const { Worker: W } = await import("node:worker_threads"); const all = []; '
    'while (true) { all.push(new W("setInterval(() => {}, 1000)", { eval: true })); '
    "await new Promise(r => setTimeout(r, 1)) }"
)


@pytest.mark.parametrize(("max_workers", "threads"), [(0, 40), (2, 120)])
async def test_a_worker_bomb_past_the_constructor_hits_the_thread_limit(
    echo: Echo, host_memory: type[HostMemory], max_workers: int, threads: int
) -> None:
    """node:worker_threads starts workers the bootstrap cannot count; the host counts the
    process's threads instead: 40 per allowed worker, plus the program's own (each realm has a
    pool of up to 32 blocking threads)."""
    async with DenoSandbox(memory_mb=4096) as sandbox:  # the thread limit is the one to hit
        tool = code_tool(sandbox, echo, max_workers=max_workers)
        outcome, _ = await attack(tool, NODE_WORKER_BOMB, host_memory)
    assert outcome == failed(
        "WorkerLimitError",
        f"The program started more than {threads} threads (nested workers, node:worker_threads "
        f"included; the allowance for max_workers={max_workers}); do the work in the program "
        "itself.",
    )


async def test_blocking_work_stays_below_the_thread_limit(
    deno_sandbox: DenoSandbox, echo: Echo
) -> None:
    """Deno's blocking pool (crypto here) grows to 32 threads under load: not an attack."""
    tool = code_tool(deno_sandbox, echo)
    outcome = await run(
        tool,
        'const key = await crypto.subtle.importKey("raw", new Uint8Array(16), "PBKDF2", false, '
        '["deriveBits"]); '
        "const bits = await Promise.all(Array.from({ length: 200 }, () => crypto.subtle.deriveBits("
        '{ name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(8), iterations: 20000 }, key, '
        "256))); "
        "return bits.length",
    )
    assert outcome == {"success": True, "result": 200, "logs": []}
