"""Durable execution benchmarks: what a store costs when nothing pauses, what a pause costs,
and what a resume costs (a replay of 100 recorded calls).

    python bench/bench_durable.py                 # every figure
    python bench/bench_durable.py overhead pause  # some of them
    python bench/bench_durable.py --runs 30

Each comparison runs its variants interleaved in one process (A, B, A, B, ...) so that load
from other work on the machine falls on both alike; figures are medians of wall time and of
CPU time per execution (the host process, every thread, and the sandbox's Deno processes, from
the kernel's per-thread nanosecond counters), with the ratio side by side.
Each figure prints a human row and one JSON line (prefixed ``BENCH``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil

from codemode import (
    CodeModeTool,
    CodeModeToolResult,
    DenoSandbox,
    Tool,
    create_code_mode,
    create_tool,
)
from codemode.stores import SqliteStore


def echo_tool() -> Tool:
    async def echo(value: Any) -> Any:
        return value

    return create_tool(id="echo", description="Echo", input_schema={}, execute=echo)


def gated_tool() -> Tool:
    async def pay(value: Any) -> Any:
        return value

    return create_tool(
        id="pay", description="Pay", input_schema={}, execute=pay, require_approval=True
    )


def sandbox_cpu() -> float:
    """Seconds on CPU of every thread of every Deno process we started, in nanoseconds from
    /proc/<pid>/task/<tid>/schedstat (``cpu_times`` ticks in 10 ms, too coarse here)."""
    total = 0
    for process in psutil.Process().children(recursive=True):
        try:
            if "deno" not in process.name():
                continue
            for task in Path(f"/proc/{process.pid}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])
        except (psutil.Error, OSError):
            continue
    return total / 1e9


SETTLE_S = 0.1


class Meter:
    """Wall and CPU time (host, sandbox) of one awaited execution."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.host: list[float] = []
        self.sandbox: list[float] = []

    async def measure(self, run: Callable[[], Awaitable[CodeModeToolResult]]) -> Any:
        host_before, sandbox_before = time.process_time(), sandbox_cpu()
        started = time.perf_counter()
        result = await run()
        self.wall.append((time.perf_counter() - started) * 1000)
        # The CPU window also takes what the execution leaves to do (the sandbox booting the
        # realm for the next job, a write committing): each variant pays for its own.
        await asyncio.sleep(SETTLE_S)
        self.host.append((time.process_time() - host_before) * 1000)
        self.sandbox.append((sandbox_cpu() - sandbox_before) * 1000)
        return result

    def figures(self) -> dict[str, float]:
        return {
            "wall_ms": round(statistics.median(self.wall), 2),
            "host_cpu_ms": round(statistics.median(self.host), 2),
            "sandbox_cpu_ms": round(statistics.median(self.sandbox), 2),
            "n": len(self.wall),
        }


def report(name: str, base: Meter, other: Meter, labels: tuple[str, str]) -> None:
    a, b = base.figures(), other.figures()
    ratio = {
        key: round(b[key] / a[key], 2) if a[key] else None
        for key in ("wall_ms", "host_cpu_ms", "sandbox_cpu_ms")
    }
    line = {"figure": name, labels[0]: a, labels[1]: b, "ratio": ratio}
    print(f"BENCH {json.dumps(line)}")
    print(f"  {name}")
    for label, figures in ((labels[0], a), (labels[1], b)):
        shown = "  ".join(f"{k}={v}" for k, v in figures.items())
        print(f"    {label:<28} {shown}")
    shown = "  ".join(f"{k}={v}" for k, v in ratio.items())
    print(f"    {'ratio':<28} {shown}", flush=True)


def expect(result: CodeModeToolResult, status: str) -> CodeModeToolResult:
    if result.status != status:
        raise SystemExit(f"benchmark program ended {result.status}, not {status}: {result.error}")
    return result


async def bench_overhead(runs: int, store_dir: Path) -> None:
    """An execution with a store that never pauses, against the same without a store."""
    code = "let n = 0\nfor (let i = 0; i < 20; i++) n += await external_echo(i)\nreturn n"
    async with DenoSandbox(prestart=1, max_processes=1) as sandbox:
        plain = create_code_mode(tools=[echo_tool()], sandbox=sandbox).tool
        for synchronous in ("full", "normal"):
            path = store_dir / f"overhead-{synchronous}.db"
            async with SqliteStore(path, synchronous=synchronous) as store:
                await compare_overhead(plain, store, sandbox, code, runs, synchronous)


async def compare_overhead(
    plain: CodeModeTool,
    store: SqliteStore,
    sandbox: DenoSandbox,
    code: str,
    runs: int,
    synchronous: str,
) -> None:
    durable = create_code_mode(tools=[echo_tool()], sandbox=sandbox, store=store).tool
    base, other = Meter(), Meter()
    for _ in range(3):
        await plain.execute({"code": code})
        await durable.execute({"code": code})
    for _ in range(runs):
        expect(await base.measure(lambda: plain.execute({"code": code})), "completed")
        expect(await other.measure(lambda: durable.execute({"code": code})), "completed")
    report(
        f"20 calls, store no pause (synchronous={synchronous})",
        base,
        other,
        ("no store", "SqliteStore"),
    )


async def bench_pause(runs: int, store_dir: Path) -> None:
    """A program that pauses on a gated call, against the same approved without a store."""
    code = "const a = await external_echo(1)\nreturn await external_pay(a)"
    async with (
        DenoSandbox(prestart=1, max_processes=1) as sandbox,
        SqliteStore(store_dir / "pause.db") as store,
    ):
        tools = [echo_tool(), gated_tool()]
        plain = create_code_mode(tools=tools, sandbox=sandbox, approve=lambda call: True).tool
        durable = create_code_mode(
            tools=tools, sandbox=sandbox, store=store, approve=lambda call: None
        ).tool
        base, other = Meter(), Meter()
        for _ in range(3):
            await plain.execute({"code": code})
            await durable.execute({"code": code})
        for _ in range(runs):
            expect(await base.measure(lambda: plain.execute({"code": code})), "completed")
            expect(await other.measure(lambda: durable.execute({"code": code})), "paused")
        report("pause on a gated call", base, other, ("approved, no store", "paused"))


async def paused_executions(tool: CodeModeTool, code: str, count: int) -> list[tuple[str, str]]:
    paused = []
    for _ in range(count):
        result = expect(await tool.execute({"code": code}), "paused")
        assert result.execution_id is not None
        paused.append((result.execution_id, result.pending[0].call_id))
    return paused


async def bench_resume(runs: int, store_dir: Path) -> None:
    """Resuming after 100 recorded calls (replayed, not run) and one approved call, against
    running the same 101 calls live without a store."""
    code = (
        "let n = 0\nfor (let i = 0; i < 100; i++) n += await external_echo(i)\n"
        "return n + await external_pay(1)"
    )
    async with (
        DenoSandbox(prestart=1, max_processes=1) as sandbox,
        SqliteStore(store_dir / "resume.db") as store,
    ):
        tools = [echo_tool(), gated_tool()]
        plain = create_code_mode(tools=tools, sandbox=sandbox, approve=lambda call: True).tool
        durable = create_code_mode(
            tools=tools, sandbox=sandbox, store=store, approve=lambda call: None
        ).tool
        waiting = await paused_executions(durable, code, runs + 3)
        base, other = Meter(), Meter()
        for execution_id, call_id in waiting[:3]:  # warm up
            await plain.execute({"code": code})
            await durable.resume(execution_id, {call_id: True})
        for execution_id, call_id in waiting[3:]:
            expect(await base.measure(lambda: plain.execute({"code": code})), "completed")
            resumed = await other.measure(
                functools.partial(durable.resume, execution_id, {call_id: True})
            )
            if expect(resumed, "completed").result != 4951:
                raise SystemExit(f"resumed program returned {resumed.result}")
        report(
            "resume: replay 100 recorded calls + 1 live",
            base,
            other,
            ("101 calls live, no store", "resume"),
        )


FIGURES = {"overhead": bench_overhead, "pause": bench_pause, "resume": bench_resume}


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("figures", nargs="*", choices=[*FIGURES, []], help="default: all")
    parser.add_argument("--runs", type=int, default=20, help="runs per variant (default 20)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="codemode-bench-durable-") as directory:
        for name in args.figures or list(FIGURES):
            await FIGURES[name](args.runs, Path(directory))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
