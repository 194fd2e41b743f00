"""Soak: many executions, several at once, mixing normal programs, failing programs and
attacks, through one default ``DenoSandbox``. Every result is checked exactly; afterwards
nothing may be left behind.

    python bench/soak.py                          # 10,000 executions, 8 at once
    python bench/soak.py --executions 500 --concurrency 4 --seed 7

Prints a human table and one JSON line (prefixed ``SOAK``). Exits with status 1 when a result
was wrong, a process, file descriptor or temp file leaked, or the host's memory grew by 10 %
or more from the first thousand executions to the last.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from codemode import CodeModeTool, DenoSandbox, Tool, create_code_mode, create_tool

QUICK_TIMEOUT_MS = 500  # for the programs that stall on purpose
RSS_WINDOW = 1000  # executions compared at the start and at the end
MAX_RSS_GROWTH = 0.10


_NO_RESULT = object()  # the program returned undefined (no "result"); None is JSON null


def ok(result: Any = _NO_RESULT, logs: list[str] | None = None) -> dict[str, Any]:
    outcome: dict[str, Any] = {"success": True, "logs": logs or []}
    if result is not _NO_RESULT:
        outcome["result"] = result
    return outcome


def err(
    name: str, message: str, line: int | None = 1, logs: list[str] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "name": name}
    if line is not None:
        error["line"] = line
    return {"success": False, "logs": logs or [], "error": error}


def denied(what: str, flag: str, name: str = "NotCapable") -> dict[str, Any]:
    return err(name, f"Requires {what}, run again with the --allow-{flag} flag")


def flood_logs(lines: int, limit: int) -> list[str]:
    """What the log limit keeps of ``lines`` lines "flood i": whole lines, then a marker."""
    kept: list[str] = []
    total = 0
    for i in range(lines):
        line = f"flood {i}"
        total += len(line) + 64  # each line also counts what holding it costs the host
        if total > limit:
            return [*kept, f"[logs truncated: over the limit of {limit} bytes]"]
        kept.append(line)
    return kept


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # "normal", "failing" or "attack"
    weight: int
    code: str
    expected: dict[str, Any]
    quick: bool = False  # run by the code tool with the short timeout


CASES = [
    # -- normal programs ------------------------------------------------------------------------
    Case(
        "parallel-calls",
        "normal",
        20,
        "const xs = await Promise.all([1, 2, 3, 4, 5].map(n => external_square({ n }))); "
        "return xs.reduce((a, b) => a + b, 0)",
        ok(55),
    ),
    Case(
        "many-calls",
        "normal",
        5,
        "const rs = await Promise.all(Array.from({ length: 200 }, (_, i) => external_square({ n: "
        "i }))); "
        "return rs.length + rs[199]",
        ok(200 + 199 * 199),
    ),
    Case(
        "compute",
        "normal",
        15,
        "let s = 0; for (let i = 0; i < 100000; i++) s += i % 7; return s",
        ok(sum(i % 7 for i in range(100_000))),
    ),
    Case(
        "logs-and-data",
        "normal",
        10,
        'console.log("total", 3); console.warn({ low: true }); '
        'return { items: [1, 2, 3].map(n => ({ n, even: n % 2 === 0 })), when: "now" }',
        ok(
            {
                "items": [{"n": 1, "even": False}, {"n": 2, "even": True}, {"n": 3, "even": False}],
                "when": "now",
            },
            logs=["total 3", '[warn] {"low":true}'],
        ),
    ),
    Case(
        "sequential-calls",
        "normal",
        10,
        "let n = 1; for (let i = 0; i < 5; i++) n = await external_square({ n: n + 1 }); return n",
        ok(((((2**2 + 1) ** 2 + 1) ** 2 + 1) ** 2 + 1) ** 2),
    ),
    Case("undefined", "normal", 5, "const x = 1", ok()),
    # -- failing programs -----------------------------------------------------------------------
    Case("throws", "failing", 5, 'throw new TypeError("bad input")', err("TypeError", "bad input")),
    Case(
        "syntax-error",
        "failing",
        3,
        "const x = ;\nreturn x",
        err("SyntaxError", "Expression expected"),
    ),
    Case(
        "tool-error",
        "failing",
        4,
        "return await external_fail({})",
        err("LookupError", "no such record"),
    ),
    Case(
        "not-json",
        "failing",
        2,
        "return { big: 10n }",
        err(
            "ResultError",
            "result is not JSON: BigInt at result.big (convert it with Number() or String())",
            line=None,
        ),
    ),
    Case(
        "invalid-input",
        "failing",
        3,
        'return await external_square({ n: "two" })',
        err(
            "ValidationError",
            "Tool input validation failed for square:\n- /n: 'two' is not of type 'integer'\n"
            "Expected: external_square(input: { n: number; })",
        ),
    ),
    Case(
        "stall",
        "failing",
        1,
        "while (true) {}",
        err(
            "TimeoutError",
            f"The program did not finish within the timeout of {QUICK_TIMEOUT_MS} ms; make it do "
            "less work or run independent calls in parallel with Promise.all.",
            line=None,
        ),
        quick=True,
    ),
    # -- attacks --------------------------------------------------------------------------------
    Case(
        "read-file",
        "attack",
        3,
        'return Deno.readTextFileSync("/etc/passwd")',
        denied('read access to "/etc/passwd"', "read"),
    ),
    Case(
        "fetch",
        "attack",
        2,
        'return (await fetch("http://127.0.0.1:8443/")).status',
        denied('net access to "127.0.0.1:8443"', "net"),
    ),
    Case("env", "attack", 2, 'return Deno.env.get("HOME")', denied('env access to "HOME"', "env")),
    Case(
        "subprocess",
        "attack",
        2,
        'return (await new Deno.Command("/bin/sh").output()).code',
        denied('run access to "/bin/sh"', "run"),
    ),
    Case(
        "worker",
        "attack",
        2,
        'new Worker("data:application/javascript,1", { type: "module" }); return 1',
        err(
            "WorkerLimitError",
            "The program tried to start a Worker, over the limit of 0 per execution; do the work "
            "in the program itself.",
        ),
    ),
    Case(
        "exit",
        "attack",
        2,
        "Deno.exit(1)",
        err(
            "ExitError",
            "The program called exit(1); a program ends by returning a value or throwing an Error.",
        ),
    ),
    Case(
        "forged-done",
        "attack",
        2,
        'self.postMessage({ t: "done", ok: true, r: \'"forged"\' }); await new Promise(r => '
        "setTimeout(r, 50)); return 1",
        ok("forged"),
    ),
    Case(
        "forged-call",
        "attack",
        2,
        # A call record (C, call id 1e9, tool number 9, "{}") posted straight to the runner: it
        # answers "no such tool" into the channel, where nothing waits for it; the program's
        # own calls go on.
        "self.postMessage(new Uint8Array([67, 0, 202, 154, 59, 9, 0, 0, 0, 123, 125])); "
        "await new Promise(r => setTimeout(r, 20)); return await external_square({ n: 3 })",
        ok(9),
    ),
    Case(
        "blob-url",
        "attack",
        1,
        'return URL.createObjectURL(new Blob(["kept"]))',
        err(
            "TypeError",
            "URL.createObjectURL is not available in the sandbox: a blob URL outlives the program.",
        ),
    ),
    Case(
        "pollute",
        "attack",
        2,
        'Object.prototype.t = "done"; JSON.stringify = () => "1"; return await external_square({ '
        "n: 3 })",
        ok(9),
    ),
    Case(
        "state",
        "attack",
        2,
        "const seen = globalThis.seen ?? null; globalThis.seen = 1; return seen",
        ok(None),  # null: nothing seen
    ),
    Case(
        "kill-self",
        "attack",
        1,
        'Deno.kill(Deno.pid, "SIGKILL"); return 1',
        err(
            "SandboxCrashError",
            "The sandbox process ended during the program: it was killed by signal SIGKILL",
            line=None,
        ),
    ),
    Case(
        "memory-bomb",
        "attack",
        1,
        "const keep = []; while (true) keep.push(new Uint8Array(32 << 20).fill(1))",
        err(
            "MemoryLimitError",
            "The program used more than the memory limit of 512 MB (including ArrayBuffers and "
            "WebAssembly); use less memory.",
            line=None,
        ),
    ),
    Case(
        "log-flood",
        "attack",
        1,
        'for (let i = 0; i < 100000; i++) console.log("flood " + i); return "done"',
        ok("done", logs=flood_logs(100_000, 1_000_000)),
    ),
]


def make_tools() -> list[Tool]:
    def square(n: int) -> int:
        return n * n

    def fail(value: Any) -> Any:
        raise LookupError("no such record")

    return [
        create_tool(
            id="square",
            description="n squared",
            input_schema={
                "type": "object",
                "properties": {"n": {"type": "integer"}},
                "required": ["n"],
            },
            execute=lambda value: square(value["n"]),
        ),
        create_tool(
            id="fail", description="always fails", input_schema={"type": "object"}, execute=fail
        ),
    ]


# -- what is left behind -------------------------------------------------------------------------


@dataclass(frozen=True)
class Leftovers:
    processes: frozenset[int]
    fds: frozenset[str]
    temp_files: frozenset[str]


def leftovers(temp_root: Path) -> Leftovers:
    processes = set()
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if child.name() == "deno":
                processes.add(child.pid)
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            fds.add(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
    temp = {p.name for p in temp_root.glob("codemode-*") if not p.name.startswith("codemode-deno-")}
    return Leftovers(frozenset(processes), frozenset(fds), frozenset(temp))


@contextlib.contextmanager
def private_tempdir() -> Iterator[Path]:
    """Sandbox files go to a directory of our own, so other runs on the machine do not count."""
    root = Path(tempfile.mkdtemp(prefix="soak-"))
    saved = tempfile.tempdir
    tempfile.tempdir = str(root)
    try:
        yield root
    finally:
        tempfile.tempdir = saved
        shutil.rmtree(root, ignore_errors=True)


# -- the soak ------------------------------------------------------------------------------------


@dataclass
class Report:
    executions: int
    concurrency: int
    seconds: float = 0.0
    latency_ms: dict[str, list[float]] = field(default_factory=dict)
    wrong: list[dict[str, Any]] = field(default_factory=list)
    leaked_processes: int = 0
    leaked_fds: int = 0
    leaked_temp_files: int = 0
    rss_first_mb: float = 0.0
    rss_last_mb: float = 0.0

    @property
    def rss_growth(self) -> float:
        return (
            (self.rss_last_mb - self.rss_first_mb) / self.rss_first_mb if self.rss_first_mb else 0.0
        )

    @property
    def passed(self) -> bool:
        leaks = self.leaked_processes + self.leaked_fds + self.leaked_temp_files
        return not self.wrong and leaks == 0 and self.rss_growth < MAX_RSS_GROWTH

    def figures(self) -> dict[str, Any]:
        def summary(samples: list[float]) -> dict[str, float]:
            ordered = sorted(samples)
            return {
                "n": len(ordered),
                "min": round(ordered[0], 2),
                "median": round(statistics.median(ordered), 2),
                "p90": round(ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))], 2),
            }

        return {
            "executions": self.executions,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 1),
            "latency_ms": {kind: summary(s) for kind, s in self.latency_ms.items() if s},
            "wrong_results": len(self.wrong),
            "leaked_processes": self.leaked_processes,
            "leaked_fds": self.leaked_fds,
            "leaked_temp_files": self.leaked_temp_files,
            "host_rss_first_mb": round(self.rss_first_mb, 1),
            "host_rss_last_mb": round(self.rss_last_mb, 1),
            "host_rss_growth_pct": round(100 * self.rss_growth, 2),
            "passed": self.passed,
        }


async def soak(executions: int = 10_000, concurrency: int = 8, seed: int = 0) -> Report:
    """Run the soak and return its figures (it never raises for a wrong result)."""
    rng = random.Random(seed)
    schedule = rng.choices(CASES, weights=[case.weight for case in CASES], k=executions)
    report = Report(executions, concurrency)
    report.latency_ms = {"all": [], "normal": [], "failing": [], "attack": []}
    rss = [0] * executions
    me = psutil.Process()
    with private_tempdir() as temp_root:
        before = leftovers(temp_root)
        sandbox = DenoSandbox()
        tools = make_tools()
        main_tool: CodeModeTool = create_code_mode(tools=tools, sandbox=sandbox).tool
        quick_tool = create_code_mode(tools=tools, sandbox=sandbox, timeout=QUICK_TIMEOUT_MS).tool
        order = iter(range(executions))
        started = time.perf_counter()

        async def worker() -> None:
            for index in order:
                case = schedule[index]
                tool = quick_tool if case.quick else main_tool
                t0 = time.perf_counter()
                result = await tool.execute({"code": case.code})
                elapsed = (time.perf_counter() - t0) * 1000
                report.latency_ms["all"].append(elapsed)
                report.latency_ms[case.kind].append(elapsed)
                outcome = result.model_dump(exclude_none=True)
                if outcome != case.expected:
                    report.wrong.append({"index": index, "case": case.name, "outcome": outcome})
                rss[index] = me.memory_info().rss

        try:
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        finally:
            await sandbox.aclose()
        report.seconds = time.perf_counter() - started
        after = before
        for _ in range(100):  # reaping is asynchronous
            after = leftovers(temp_root)
            if after == before:
                break
            await asyncio.sleep(0.05)
        report.leaked_processes = len(after.processes - before.processes)
        report.leaked_fds = len(after.fds ^ before.fds)
        report.leaked_temp_files = len(after.temp_files - before.temp_files)
    window = min(RSS_WINDOW, max(1, executions // 4))
    report.rss_first_mb = statistics.median(rss[:window]) / 2**20
    report.rss_last_mb = statistics.median(rss[-window:]) / 2**20
    return report


def print_report(report: Report) -> None:
    figures = report.figures()
    print(
        f"soak: {report.executions} executions, {report.concurrency} at once, "
        f"{figures['seconds']} s"
    )
    print(f"  {'latency (ms)':<14}{'count':>8}{'min':>10}{'median':>10}{'p90':>10}")
    for kind, row in figures["latency_ms"].items():
        print(f"  {kind:<14}{row['n']:>8}{row['min']:>10}{row['median']:>10}{row['p90']:>10}")
    print(f"  wrong results      {figures['wrong_results']}")
    for wrong in report.wrong[:5]:
        print(f"    #{wrong['index']} {wrong['case']}: {json.dumps(wrong['outcome'])[:300]}")
    print(
        f"  leaked             processes {report.leaked_processes}, fds {report.leaked_fds}, "
        f"temp files {report.leaked_temp_files}"
    )
    print(
        f"  host RSS           first {figures['host_rss_first_mb']} MB, last "
        f"{figures['host_rss_last_mb']} MB ({figures['host_rss_growth_pct']:+} %)"
    )
    print(f"  {'PASSED' if report.passed else 'FAILED'}")
    print(f"SOAK {json.dumps(figures)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report = asyncio.run(soak(args.executions, args.concurrency, args.seed))
    print_report(report)
    sys.exit(0 if report.passed else 1)


if __name__ == "__main__":
    main()
