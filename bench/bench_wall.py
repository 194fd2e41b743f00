"""What the OS wall costs: cold start, warm trivial execution and per tool call, without the wall
and behind each of its layers, side by side in one run (rounds interleaved, so that load on a
shared machine falls on every configuration alike).

    python bench/bench_wall.py                 # 15 rounds
    python bench/bench_wall.py --rounds 40

Cold start is a fresh sandbox's first execution (process spawn, wall, Deno start, first realm);
its CPU is the user+sys time of the processes it started (the next realm's boot included).
Warm trivial is ``return 1`` on a started process. Per call is (a program making 200 calls
minus a program making none) / 200. CPU figures add the host's and the sandbox processes'.
Each figure prints a table row and one JSON line prefixed ``BENCH``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
from typing import Any

import psutil

from codemode import Confinement, DenoSandbox, create_code_mode, create_tool

CONFIGS: dict[str, Any] = {
    "no wall": None,
    "bubblewrap+seccomp": Confinement(layer="bubblewrap"),
    "landlock+seccomp": Confinement(layer="landlock"),
}
CALLS = 200


def processes_cpu(before: set[int]) -> float:
    """Seconds of user+sys CPU of this process's descendants not in ``before`` (read while they
    live: behind bubblewrap, Deno is reaped by the wall's init, not by us)."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        if child.pid not in before:
            with contextlib.suppress(psutil.Error):
                times = child.cpu_times()
                total += times.user + times.system
    return total


async def cold(confinement: Any) -> tuple[float, float]:
    """Milliseconds to a fresh sandbox's first result, and the CPU its processes used."""
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    start = time.perf_counter()
    async with DenoSandbox(confinement=confinement, prestart=0, max_idle=1) as box:
        tool = create_code_mode(tools=[], sandbox=box).tool
        result = await tool.execute({"code": "return 1"})
        elapsed = (time.perf_counter() - start) * 1000
        cpu = processes_cpu(before)
    assert result.success, result
    return elapsed, cpu * 1000


async def warm(confinement: Any, runs: int) -> dict[str, list[float]]:
    """Per execution of ``return 1`` and per tool call: milliseconds, and CPU milliseconds of
    the host and the sandbox's processes together (CPU does not count waiting for a core, so it
    is steadier on a busy machine)."""

    async def echo(value: Any) -> Any:
        return value

    tool_echo = create_tool(id="echo", description="Echo", input_schema={}, execute=echo)
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    figures: dict[str, list[float]] = {"trivial": [], "call": [], "trivial cpu": [], "call cpu": []}
    async with DenoSandbox(confinement=confinement, prestart=1, max_processes=1) as box:
        tool = create_code_mode(tools=[tool_echo], sandbox=box).tool
        many = f"for (let i = 0; i < {CALLS}; i++) await external_echo({{ i }}); return 1"
        for _ in range(3):  # warm both programs' paths
            await tool.execute({"code": "return 1"})
            await tool.execute({"code": many})

        def cpu() -> float:
            return time.process_time() + processes_cpu(before)

        for _ in range(runs):
            cpu0, start = cpu(), time.perf_counter()
            await tool.execute({"code": "return 1"})
            cpu1, middle = cpu(), time.perf_counter()
            await tool.execute({"code": many})
            cpu2, end = cpu(), time.perf_counter()
            figures["trivial"].append((middle - start) * 1000)
            figures["call"].append(((end - middle) - (middle - start)) * 1000 / CALLS)
            figures["trivial cpu"].append((cpu1 - cpu0) * 1000)
            figures["call cpu"].append(((cpu2 - cpu1) - (cpu1 - cpu0)) * 1000 / CALLS)
    return figures


def row(figure: str, unit: str, samples: dict[str, list[float]]) -> None:
    base = statistics.median(samples["no wall"])
    for name, values in samples.items():
        median = statistics.median(values)
        figures = {
            "config": name,
            "median": round(median, 3),
            "min": round(min(values), 3),
            "ratio": round(median / base, 2) if base else None,
            "n": len(values),
        }
        print(f"BENCH {json.dumps({'figure': figure, 'unit': unit, **figures})}")
        print(
            f"  {figure:<18} {name:<20} median {median:8.3f} {unit}  min {min(values):8.3f}  "
            f"x{figures['ratio']} of no wall",
            flush=True,
        )


async def main(rounds: int) -> None:
    for name, confinement in CONFIGS.items():  # probe every layer before the clock
        report = DenoSandbox(confinement=confinement).confinement_report()
        print(f"# {name}: {report}")
    cold_ms: dict[str, list[float]] = {name: [] for name in CONFIGS}
    cold_cpu: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(rounds):
        for name, confinement in CONFIGS.items():
            elapsed, cpu = await cold(confinement)
            cold_ms[name].append(elapsed)
            cold_cpu[name].append(cpu)
    warmed: dict[str, dict[str, list[float]]] = {}
    for _ in range(3):  # three sandboxes per configuration, interleaved
        for name, confinement in CONFIGS.items():
            for figure, values in (await warm(confinement, max(5, rounds))).items():
                warmed.setdefault(figure, {}).setdefault(name, []).extend(values)
    row("cold start", "ms", cold_ms)
    row("cold start CPU", "ms", cold_cpu)
    row("warm trivial", "ms", warmed["trivial"])
    row("warm trivial CPU", "ms", warmed["trivial cpu"])
    row("per tool call", "ms", warmed["call"])
    row("per tool call CPU", "ms", warmed["call cpu"])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    asyncio.run(main(parser.parse_args().rounds))
