"""Durable execution benchmarks: what a store costs when nothing pauses, what a pause costs,
and what a resume costs (a replay of 100 recorded calls), for each store side by side:
SqliteStore, RedisStore and PostgresStore.

    python bench/bench_durable.py                 # every figure
    python bench/bench_durable.py overhead pause  # some of them
    python bench/bench_durable.py --runs 30
    python bench/bench_durable.py --stores sqlite # only some stores
    python bench/bench_durable.py --language python   # Python programs in Monty

Redis and Postgres are throwaway servers this command starts (tests/_servers.py, as the tests
do), configured as a deployment that must not lose a recorded call would run them: Redis with
its append-only file synced on every write, Postgres with fsync on; ``--redis-url`` /
``--postgres-dsn`` use servers of your own instead. A store that cannot run is left out, said
on stderr.

Each comparison runs its variants interleaved in one process (A, B, A, B, ...) so that load
from other work on the machine falls on both alike; figures are medians of wall time and of
CPU time per execution (the host process, every thread, and the sandbox's Deno or Monty
processes, from the kernel's per-thread nanosecond counters), with the ratio side by side.
Each figure prints a human row and one JSON line (prefixed ``BENCH``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import psutil

from codemode import (
    CodeModeTool,
    CodeModeToolResult,
    DenoSandbox,
    MontySandbox,
    Sandbox,
    Tool,
    create_code_mode,
    create_tool,
)
from codemode.stores import ExecutionStore, SqliteStore, open_store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _servers import ServerMissing, postgres_server, redis_server


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


LANGUAGE = "typescript"  # --language


def make_sandbox() -> Sandbox:
    """One warm worker for the language benchmarked."""
    if LANGUAGE == "python":
        return MontySandbox(prestart=1, max_processes=1)
    return DenoSandbox(prestart=1, max_processes=1)


def program(programs: dict[str, str]) -> str:
    return programs[LANGUAGE]


def sandbox_cpu() -> dict[int, float]:
    """Seconds on CPU of every thread of every Deno or Monty process we started, per process,
    from /proc/<pid>/task/<tid>/schedstat (``cpu_times`` ticks in 10 ms, too coarse here)."""
    found: dict[int, float] = {}
    for process in psutil.Process().children(recursive=True):
        try:
            if "deno" not in process.name() and "monty" not in process.name():
                continue
            total = 0
            for task in Path(f"/proc/{process.pid}/task").iterdir():
                total += int((task / "schedstat").read_text().split()[0])
        except (psutil.Error, OSError):
            continue
        found[process.pid] = total / 1e9
    return found


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> float | None:
    """CPU seconds the sandbox processes spent between two readings, or None when a process
    ended in between (a pause ends the Monty worker that ran the program) and took its share
    with it: it cannot be measured from outside."""
    if any(pid not in after for pid in before):
        return None
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


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
        spent = cpu_spent(sandbox_before, sandbox_cpu())
        if spent is not None:
            self.sandbox.append(spent * 1000)
        return result

    def figures(self) -> dict[str, float | None]:
        return {
            "wall_ms": round(statistics.median(self.wall), 2),
            "host_cpu_ms": round(statistics.median(self.host), 2),
            # None: every run ended a sandbox process (see `cpu_spent`)
            "sandbox_cpu_ms": round(statistics.median(self.sandbox), 2) if self.sandbox else None,
            "n": len(self.wall),
        }


def report(name: str, meters: dict[str, Meter]) -> None:
    """One figure: each variant's medians, and each one's ratio to the first (the baseline)."""
    (base_label, base), *others = meters.items()
    a = base.figures()
    line: dict[str, Any] = {"figure": name, base_label: a}
    print(f"  {name}")
    shown = "  ".join(f"{k}={v}" for k, v in a.items())
    print(f"    {base_label:<36} {shown}")
    for label, meter in others:
        b = meter.figures()
        ratio = {
            key: round(x / y, 2) if x is not None and y else None
            for key in ("wall_ms", "host_cpu_ms", "sandbox_cpu_ms")
            for x, y in [(b[key], a[key])]
        }
        line[label] = {**b, "ratio": ratio}
        shown = "  ".join(f"{k}={v}" for k, v in b.items())
        ratios = "  ".join(f"{k}={v}" for k, v in ratio.items())
        print(f"    {label:<36} {shown}")
        print(f"    {'':<36} ratio: {ratios}")
    print(f"BENCH {json.dumps(line)}", flush=True)


def expect(result: CodeModeToolResult, status: str) -> CodeModeToolResult:
    if result.status != status:
        raise SystemExit(f"benchmark program ended {result.status}, not {status}: {result.error}")
    return result


Stores = dict[str, ExecutionStore]


async def bench_overhead(runs: int, stores: Stores) -> None:
    """An execution with a store that never pauses, against the same without a store."""
    code = program(
        {
            "typescript": "let n = 0\nfor (let i = 0; i < 20; i++) n += await external_echo(i)"
            "\nreturn n",
            "python": "n = 0\nfor i in range(20):\n    n += await external_echo(i)\nn",
        }
    )
    async with make_sandbox() as sandbox:
        variants = {"no store": create_code_mode(tools=[echo_tool()], sandbox=sandbox).tool}
        for label, store in stores.items():
            variants[label] = create_code_mode(
                tools=[echo_tool()], sandbox=sandbox, store=store
            ).tool
        meters = {label: Meter() for label in variants}
        for _ in range(3):
            for tool in variants.values():
                await tool.execute({"code": code})
        for _ in range(runs):  # interleaved: load from other work falls on all alike
            for label, tool in variants.items():
                run = functools.partial(tool.execute, {"code": code})
                expect(await meters[label].measure(run), "completed")
        report("20 calls, store no pause", meters)


async def bench_pause(runs: int, stores: Stores) -> None:
    """A program that pauses on a gated call, against the same approved without a store."""
    code = program(
        {
            "typescript": "const a = await external_echo(1)\nreturn await external_pay(a)",
            "python": "a = await external_echo(1)\nawait external_pay(a)",
        }
    )
    async with make_sandbox() as sandbox:
        tools = [echo_tool(), gated_tool()]
        plain = create_code_mode(tools=tools, sandbox=sandbox, approve=lambda call: True).tool
        variants = {"approved, no store": (plain, "completed")}
        for label, store in stores.items():
            durable = create_code_mode(
                tools=tools, sandbox=sandbox, store=store, approve=lambda call: None
            ).tool
            variants[f"paused, {label}"] = (durable, "paused")
        meters = {label: Meter() for label in variants}
        for _ in range(3):
            for tool, _status in variants.values():
                await tool.execute({"code": code})
        for _ in range(runs):
            for label, (tool, status) in variants.items():
                run = functools.partial(tool.execute, {"code": code})
                expect(await meters[label].measure(run), status)
        report("pause on a gated call", meters)


async def paused_executions(tool: CodeModeTool, code: str, count: int) -> list[tuple[str, str]]:
    paused = []
    for _ in range(count):
        result = expect(await tool.execute({"code": code}), "paused")
        assert result.execution_id is not None
        paused.append((result.execution_id, result.pending[0].call_id))
    return paused


async def bench_resume(runs: int, stores: Stores) -> None:
    """Resuming after 100 recorded calls (replayed, not run) and one approved call, against
    running the same 101 calls live without a store."""
    code = program(
        {
            "typescript": "let n = 0\nfor (let i = 0; i < 100; i++) n += await external_echo(i)\n"
            "return n + await external_pay(1)",
            "python": "n = 0\nfor i in range(100):\n    n += await external_echo(i)\n"
            "n + await external_pay(1)",
        }
    )
    async with make_sandbox() as sandbox:
        tools = [echo_tool(), gated_tool()]
        plain = create_code_mode(tools=tools, sandbox=sandbox, approve=lambda call: True).tool
        durables = {
            label: create_code_mode(
                tools=tools, sandbox=sandbox, store=store, approve=lambda call: None
            ).tool
            for label, store in stores.items()
        }
        waiting = {
            label: await paused_executions(tool, code, runs + 3) for label, tool in durables.items()
        }
        meters = {"101 calls live, no store": Meter()}
        meters.update({f"resume, {label}": Meter() for label in durables})
        for round in range(runs + 3):
            warm = round < 3
            if warm:
                await plain.execute({"code": code})
            else:
                base = meters["101 calls live, no store"]
                run = functools.partial(plain.execute, {"code": code})
                expect(await base.measure(run), "completed")
            for label, tool in durables.items():
                execution_id, call_id = waiting[label][round]
                resume = functools.partial(tool.resume, execution_id, {call_id: True})
                resumed = (
                    await resume() if warm else await meters[f"resume, {label}"].measure(resume)
                )
                if expect(resumed, "completed").result != 4951:
                    raise SystemExit(f"resumed program returned {resumed.result}")
        report("resume: replay 100 recorded calls + 1 live", meters)


@contextlib.contextmanager
def servers(args: argparse.Namespace) -> Iterator[dict[str, str]]:
    """Where each chosen store lives: its own server when given, else a throwaway one."""
    found: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        for kind, given, start in [
            ("redis", args.redis_url, redis_server),
            ("postgres", args.postgres_dsn, postgres_server),
        ]:
            if kind not in args.stores:
                continue
            if given:
                found[kind] = given
                continue
            try:
                server = stack.enter_context(start(durable=True))
            except ServerMissing as exc:
                print(f"leaving {kind} out: {exc}", file=sys.stderr)
                continue
            found[kind] = getattr(server, "url", None) or server.dsn
        yield found


@contextlib.asynccontextmanager
async def opened_stores(
    chosen: list[str], directory: Path, where: dict[str, str]
) -> AsyncIterator[Stores]:
    """One store of each chosen kind, empty (a fresh file, key prefix or schema)."""
    unique = f"bench{uuid.uuid4().hex[:8]}"
    stores: Stores = {}
    async with contextlib.AsyncExitStack() as stack:
        for kind in chosen:
            if kind == "sqlite":
                for synchronous in ("full", "normal"):
                    path = directory / f"{unique}-{synchronous}.db"
                    store = SqliteStore(path, synchronous=synchronous)  # type: ignore[arg-type]
                    stores[f"SqliteStore (synchronous={synchronous})"] = store
                    stack.push_async_callback(store.aclose)
            elif kind in where:
                option = "prefix" if kind == "redis" else "schema"
                store = open_store(where[kind], **{option: unique})
                label = "RedisStore (appendfsync always)" if kind == "redis" else "PostgresStore"
                stores[label] = store
                stack.push_async_callback(store.aclose)
        yield stores


FIGURES = {"overhead": bench_overhead, "pause": bench_pause, "resume": bench_resume}


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("figures", nargs="*", choices=[*FIGURES, []], help="default: all")
    parser.add_argument("--runs", type=int, default=20, help="runs per variant (default 20)")
    parser.add_argument(
        "--stores",
        default="sqlite,redis,postgres",
        help="the stores to compare, comma-separated (default: sqlite,redis,postgres)",
    )
    parser.add_argument("--redis-url", help="a Redis to use instead of a throwaway one")
    parser.add_argument("--postgres-dsn", help="a Postgres to use instead of a throwaway one")
    parser.add_argument(
        "--language",
        choices=["typescript", "python"],
        default="typescript",
        help="the programs' language: TypeScript in Deno (default) or Python in Monty",
    )
    args = parser.parse_args(argv)
    global LANGUAGE
    LANGUAGE = args.language
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = set(args.stores) - {"sqlite", "redis", "postgres"}
    if unknown:
        parser.error(f"unknown stores: {', '.join(sorted(unknown))}")
    with (
        tempfile.TemporaryDirectory(prefix="codemode-bench-durable-") as directory,
        servers(args) as where,
    ):
        for name in args.figures or list(FIGURES):
            async with opened_stores(args.stores, Path(directory), where) as stores:
                await FIGURES[name](args.runs, stores)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
