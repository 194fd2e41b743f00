"""Sandbox benchmarks: latency, tool-call rate, concurrency, throughput and memory.

    python bench/bench_sandbox.py                     # every figure
    python bench/bench_sandbox.py trivial calls-json  # some of them
    python bench/bench_sandbox.py --runs 50

Each figure prints a human table row (min / median / p90) and one JSON line (prefixed
``BENCH``) for machines. The ``-json`` and ``-pydantic`` figures use realistic tools (input and
output schemas, see _workloads.py); the others use a tool with no schema, as the first figures
did. Anchor figures (Mastra's LocalSandbox on this kind of machine) are from the issue tracker;
bench_vs_mastra.py measures Mastra beside codemode in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psutil
from _workloads import PARALLEL_PROGRAM, calls_program, echo_tool, summarise
from _workloads import sleep_tool as realistic_sleep_tool

from codemode import DenoSandbox, Tool, create_code_mode, create_tool


def report(name: str, unit: str, figures: dict[str, Any], target: str, anchor: str) -> None:
    print(f"BENCH {json.dumps({'figure': name, 'unit': unit, **figures})}")
    shown = "  ".join(f"{k}={v}" for k, v in figures.items())
    print(f"  {name:<34} {shown} {unit}   (target {target}; anchor {anchor})", flush=True)


def sleep_tool(seconds: float) -> Tool:
    async def nap(value: Any) -> Any:
        await asyncio.sleep(seconds)
        return value

    return create_tool(id="sleep", description="Sleep", input_schema={}, execute=nap)


async def timed(runs: int, once: Callable[[], Awaitable[Any]]) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await once()
        samples.append((time.perf_counter() - started) * 1000)
        if not result.success:
            raise SystemExit(f"benchmark program failed: {result.error}")
    return samples


async def bench_trivial(runs: int) -> None:
    async with DenoSandbox() as sandbox:
        code_tool = create_code_mode(tools=[], sandbox=sandbox).tool
        await timed(5, lambda: code_tool.execute({"code": "return 1 + 1"}))  # warm up
        samples = await timed(runs, lambda: code_tool.execute({"code": "return 1 + 1"}))
    report("trivial program, warm", "ms", summarise(samples), "<= 5 ms, p90 <= 8 ms", "68-84 ms")


async def bench_cold(runs: int) -> None:
    samples = []
    for _ in range(runs):
        sandbox = DenoSandbox(prestart=0)
        code_tool = create_code_mode(tools=[], sandbox=sandbox).tool
        samples += await timed(1, lambda: code_tool.execute({"code": "return 1 + 1"}))  # noqa: B023
        await sandbox.aclose()
    report("cold first execution", "ms", summarise(samples), "<= 40 ms", "68 ms")


async def bench_calls(runs: int, calls: int, kind: str = "none") -> None:
    """``kind``: "none" (no schema: the earlier figure), "json" or "pydantic" (realistic)."""
    if kind == "none":
        code = f"let n = 0\nfor (let i = 0; i < {calls}; i++) n += await external_echo(i)\nreturn n"
    else:
        code = calls_program(calls)
    async with DenoSandbox() as sandbox:
        code_tool = create_code_mode(tools=[echo_tool(kind)], sandbox=sandbox).tool
        await timed(2, lambda: code_tool.execute({"code": code}))
        samples = await timed(runs, lambda: code_tool.execute({"code": code}))
    label = f"{calls} sequential calls" + ("" if kind == "none" else f" ({kind} tool)")
    report(f"{label}, whole program", "ms", summarise(samples), "-", "-")
    rates = summarise([calls / (ms / 1000) for ms in samples])
    figures = {k: round(v) for k, v in rates.items()}
    anchor = "3,800-5,000/s" if kind == "none" else "Mastra ~5,700/s"
    report(f"{label}, rate", "calls/s", figures, ">= 10,000/s", anchor)


def deno_processes() -> list[psutil.Process]:
    return [p for p in psutil.Process().children(recursive=True) if "deno" in p.name()]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:  # retired during the run: its time is lost, so this undercounts
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


async def bench_cost(runs: int, kind: str = "none") -> None:
    """Where the time goes: CPU per execution and per tool call, host and sandbox apart."""
    host = psutil.Process()
    calls = 2000
    if kind == "none":
        code = f"let n = 0\nfor (let i = 0; i < {calls}; i++) n += await external_echo(i)\nreturn n"
    else:
        code = calls_program(calls)
    # One process that is never retired: a retired process takes its CPU time with it.
    async with DenoSandbox(prestart=1, max_idle=1, max_processes=1, max_uses=10_000) as sandbox:
        code_tool = create_code_mode(tools=[echo_tool(kind)], sandbox=sandbox).tool
        await timed(3, lambda: code_tool.execute({"code": "return 1"}))
        for name, program, count, unit in [
            ("CPU per trivial execution", "return 1 + 1", runs, "execution"),
            ("CPU per tool call", code, calls * 5, "call"),
        ]:
            processes = deno_processes()
            host_before, sandbox_before = sum(host.cpu_times()[:2]), cpu_seconds(processes)
            await timed(
                runs if unit == "execution" else 5, lambda p=program: code_tool.execute({"code": p})
            )
            host_cpu = (sum(host.cpu_times()[:2]) - host_before) / count * 1e6
            sandbox_cpu = (cpu_seconds(processes) - sandbox_before) / count * 1e6
            figures = {"host_us": round(host_cpu), "sandbox_us": round(sandbox_cpu), "n": count}
            report(f"{name}" + ("" if kind == "none" else f" ({kind} tool)"), "", figures, "-", "-")


async def bench_parallel(runs: int) -> None:
    code = (
        "return (await Promise.all(Array.from({length: 100}, (_, i) => external_sleep(i)))).length"
    )
    async with DenoSandbox() as sandbox:
        code_tool = create_code_mode(tools=[sleep_tool(0.05)], sandbox=sandbox).tool
        await timed(2, lambda: code_tool.execute({"code": code}))
        samples = await timed(runs, lambda: code_tool.execute({"code": code}))
    report("100 x 50 ms calls, Promise.all", "ms", summarise(samples), "<= 60 ms", "130 ms")


async def bench_parallel_realistic(runs: int, kind: str) -> None:
    async with DenoSandbox() as sandbox:
        code_tool = create_code_mode(tools=[realistic_sleep_tool(kind)], sandbox=sandbox).tool
        await timed(2, lambda: code_tool.execute({"code": PARALLEL_PROGRAM}))
        samples = await timed(runs, lambda: code_tool.execute({"code": PARALLEL_PROGRAM}))
    label = f"100 x 50 ms calls, Promise.all ({kind} tool)"
    report(label, "ms", summarise(samples), "<= 60 ms", "Mastra ~120 ms")


async def bench_throughput(seconds: float, callers: int) -> None:
    async with DenoSandbox(prestart=callers, max_idle=callers) as sandbox:
        code_tool = create_code_mode(tools=[], sandbox=sandbox).tool
        await timed(3, lambda: code_tool.execute({"code": "return 1"}))
        done = 0
        failures = 0
        deadline = time.perf_counter() + seconds

        async def caller() -> None:
            nonlocal done, failures
            while time.perf_counter() < deadline:
                result = await code_tool.execute({"code": "return 1 + 1"})
                done += 1
                failures += result.result != 2

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        elapsed = time.perf_counter() - started
    figures = {"executions_per_s": round(done / elapsed, 1), "executions": done, "wrong": failures}
    report(f"throughput, {callers} callers", "", figures, ">= 150/s", "20/s")


async def bench_idle_rss(processes: int) -> None:
    async with DenoSandbox(prestart=processes, max_idle=processes) as sandbox:
        code_tool = create_code_mode(tools=[], sandbox=sandbox).tool
        await code_tool.execute({"code": "return 1"})
        await asyncio.sleep(1.0)  # let the spares settle after their boot
        memory = [
            p.memory_full_info()
            for p in psutil.Process().children(recursive=True)
            if "deno" in p.name()
        ]
    # RSS counts the Deno binary's pages in every process although the processes share them;
    # PSS divides shared pages among their users, USS is what one more process costs.
    report(
        "idle warm process RSS", "MB", summarise([m.rss / 2**20 for m in memory]), "<= 45 MB", "-"
    )
    report("idle warm process PSS", "MB", summarise([m.pss / 2**20 for m in memory]), "-", "-")
    report("idle warm process USS", "MB", summarise([m.uss / 2**20 for m in memory]), "-", "-")


FIGURES = [
    "trivial",
    "cold",
    "calls200",
    "calls",
    "calls-json",
    "calls-pydantic",
    "parallel",
    "parallel-json",
    "throughput",
    "rss",
    "cost",
    "cost-json",
    "cost-pydantic",
]


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "figures", nargs="*", choices=[*FIGURES, []], help="which figures (default all)"
    )
    parser.add_argument("--runs", type=int, default=20, help="runs per latency figure (default 20)")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput duration")
    args = parser.parse_args(argv)
    chosen = args.figures or FIGURES
    print(
        f"codemode sandbox benchmarks ({psutil.cpu_count()} cores, Python {sys.version.split()[0]})"
    )
    for figure in chosen:
        if figure == "trivial":
            await bench_trivial(args.runs)
        elif figure == "cold":
            await bench_cold(args.runs)
        elif figure == "calls200":
            await bench_calls(args.runs, 200)
        elif figure == "calls":
            await bench_calls(max(5, args.runs // 4), 1000)
        elif figure in ("calls-json", "calls-pydantic"):
            await bench_calls(max(5, args.runs // 4), 1000, figure.removeprefix("calls-"))
        elif figure == "parallel":
            await bench_parallel(args.runs)
        elif figure == "parallel-json":
            await bench_parallel_realistic(args.runs, "json")
        elif figure == "throughput":
            await bench_throughput(args.seconds, 8)
        elif figure == "rss":
            await bench_idle_rss(4)
        elif figure == "cost":
            await bench_cost(args.runs)
        elif figure in ("cost-json", "cost-pydantic"):
            await bench_cost(args.runs, figure.removeprefix("cost-"))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
