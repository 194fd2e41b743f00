"""Python programs in Monty beside TypeScript programs in Deno: the same workloads, the same
tools (pydantic input and output models), printed side by side in one run.

    python bench/bench_monty.py                  # every figure, both languages
    python bench/bench_monty.py trivial calls    # some of them
    python bench/bench_monty.py --harness        # also pydantic-ai-harness's CodeMode

Figures: a trivial program on warm workers; the first execution of a new sandbox (cold);
1,000 sequential tool calls (wall time, and CPU time of this process and the sandbox's
processes); 100 calls of 50 ms gathered; executions per second with 8 callers; the memory of
idle workers (RSS, and PSS/USS: RSS counts the shared binary in each process).

``--harness`` compares with pydantic-ai-harness's ``CodeMode`` (which also runs Python in
Monty) on the workloads it can run here: both are driven as a pydantic-ai agent whose scripted
model makes one code call, so both pay the same agent overhead. The harness needs
pydantic-ai-slim 2.62 exactly, so it runs in a venv of its own under
~/.cache/codemode-bench (created on first use; ``bench/_harness_workloads.py`` is its side).
Each line prints ``BENCH {json}`` for machines, then a table row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil
from pydantic import BaseModel

from codemode import (
    CodeModeTool,
    DenoSandbox,
    MontySandbox,
    Sandbox,
    Tool,
    create_code_mode,
    create_tool,
)

HERE = Path(__file__).parent
CACHE = Path.home() / ".cache" / "codemode-bench"
HARNESS_VENV = CACHE / "harness-venv"


# -- realistic tools: pydantic input and output models --------------------------------------------


class OrderInput(BaseModel):
    order_id: str


class Line(BaseModel):
    sku: str
    quantity: int
    unit_price: float


class Order(BaseModel):
    order_id: str
    customer: str
    lines: list[Line]
    total: float


class DelayInput(BaseModel):
    ms: int
    tag: str


class Delayed(BaseModel):
    tag: str
    waited_ms: int


async def fetch_order(input: OrderInput) -> Order:
    lines = [Line(sku=f"sku-{i}", quantity=i + 1, unit_price=2.5 * (i + 1)) for i in range(3)]
    return Order(
        order_id=input.order_id,
        customer="ada",
        lines=lines,
        total=sum(line.quantity * line.unit_price for line in lines),
    )


async def delay(input: DelayInput) -> Delayed:
    await asyncio.sleep(input.ms / 1000)
    return Delayed(tag=input.tag, waited_ms=input.ms)


def tools() -> list[Tool]:
    return [
        create_tool(
            id="get_order",
            description="Get an order with its lines",
            input_schema=OrderInput,
            output_schema=Order,
            execute=fetch_order,
        ),
        create_tool(
            id="delay",
            description="Wait, then answer",
            input_schema=DelayInput,
            output_schema=Delayed,
            execute=delay,
        ),
    ]


PROGRAMS: dict[str, dict[str, str]] = {
    "trivial": {"typescript": "return 1", "python": "1"},
    "one_call": {
        "typescript": "return (await external_get_order({ order_id: 'o-1' })).total",
        "python": "(await external_get_order(order_id='o-1'))['total']",
    },
    "calls": {
        "typescript": "let total = 0\nfor (let i = 0; i < 1000; i++) {\n"
        "  total += (await external_get_order({ order_id: `o-${i}` })).total\n}\nreturn total",
        "python": "total = 0\nfor i in range(1000):\n"
        "    total += (await external_get_order(order_id=f'o-{i}'))['total']\ntotal",
    },
    "gather": {
        "typescript": "const all = await Promise.all(Array.from({ length: 100 }, (_, i) =>\n"
        "  external_delay({ ms: 50, tag: `t${i}` })))\nreturn all.length",
        "python": "import asyncio\nall = await asyncio.gather(\n"
        "    *[external_delay(ms=50, tag=f't{i}') for i in range(100)])\nlen(all)",
    },
}
LANGUAGES = ("typescript", "python")


def new_sandbox(language: str, **options: Any) -> Sandbox:
    return DenoSandbox(**options) if language == "typescript" else MontySandbox(**options)


def code_tool(sandbox: Sandbox, **options: Any) -> CodeModeTool:
    return create_code_mode(tools=tools(), sandbox=sandbox, **options).tool


async def execute(tool: CodeModeTool, code: str) -> Any:
    result = await tool.execute({"code": code})
    if not result.success:
        raise RuntimeError(f"benchmark program failed: {result.error}")
    return result.result


# -- reporting -------------------------------------------------------------------------------------


def summarise(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "min": round(ordered[0], 3),
        "median": round(statistics.median(ordered), 3),
        "p90": round(p90, 3),
        "n": len(ordered),
    }


def report(figure: str, runtime: str, unit: str, values: dict[str, Any]) -> None:
    print(f"BENCH {json.dumps({'figure': figure, 'runtime': runtime, 'unit': unit, **values})}")
    shown = "  ".join(f"{k}={v}" for k, v in values.items())
    print(f"  {figure:<22} {runtime:<22} {shown} {unit}", flush=True)


async def timed(runs: int, once: Callable[[], Awaitable[Any]]) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await once()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def sandbox_processes(language: str) -> list[psutil.Process]:
    name = "deno" if language == "typescript" else "monty"
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() == name:
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


# -- workloads ---------------------------------------------------------------------------------


async def bench_trivial(language: str, runs: int) -> None:
    async with new_sandbox(language) as sandbox:
        tool = code_tool(sandbox)
        await execute(tool, PROGRAMS["trivial"][language])
        samples = await timed(runs, lambda: execute(tool, PROGRAMS["trivial"][language]))
    report("trivial warm", language, "ms", summarise(samples))


async def bench_cold(language: str, runs: int) -> None:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        sandbox = new_sandbox(language, prestart=0)
        await execute(code_tool(sandbox), PROGRAMS["one_call"][language])
        samples.append((time.perf_counter() - started) * 1000)
        await sandbox.aclose()
    report("cold first execution", language, "ms", summarise(samples))


async def bench_calls(language: str, runs: int) -> None:
    async with new_sandbox(language) as sandbox:
        tool = code_tool(sandbox)
        await execute(tool, PROGRAMS["one_call"][language])
        me = psutil.Process()
        workers = sandbox_processes(language)
        host_before, sandbox_before = cpu_seconds([me]), cpu_seconds(workers)
        samples = await timed(runs, lambda: execute(tool, PROGRAMS["calls"][language]))
        host_cpu = (cpu_seconds([me]) - host_before) / runs
        sandbox_cpu = (cpu_seconds(workers) - sandbox_before) / runs
    report("1000 sequential calls", language, "ms", summarise(samples))
    report(
        "1000 calls CPU",
        language,
        "ms",
        {"host": round(host_cpu * 1000, 1), "sandbox": round(sandbox_cpu * 1000, 1)},
    )


async def bench_gather(language: str, runs: int) -> None:
    async with new_sandbox(language) as sandbox:
        tool = code_tool(sandbox)
        await execute(tool, PROGRAMS["trivial"][language])
        samples = await timed(runs, lambda: execute(tool, PROGRAMS["gather"][language]))
    report("100 x 50 ms gathered", language, "ms", summarise(samples))


async def bench_throughput(language: str, seconds: float, callers: int) -> None:
    async with new_sandbox(language, prestart=callers, max_processes=max(callers, 16)) as sandbox:
        tool = code_tool(sandbox)
        await asyncio.gather(
            *(execute(tool, PROGRAMS["one_call"][language]) for _ in range(callers))
        )
        done = 0
        deadline = time.perf_counter() + seconds

        async def caller() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                await execute(tool, PROGRAMS["one_call"][language])
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        elapsed = time.perf_counter() - started
    report(f"throughput {callers} callers", language, "exec/s", {"rate": round(done / elapsed, 1)})


async def bench_idle_memory(language: str, processes: int) -> None:
    async with new_sandbox(language, prestart=processes, max_processes=max(processes, 16)) as box:
        tool = code_tool(box)
        await asyncio.gather(
            *(execute(tool, PROGRAMS["one_call"][language]) for _ in range(processes))
        )
        await asyncio.sleep(1.0)  # recycled realms settle
        found = sandbox_processes(language)
        rss, pss, uss = [], [], []
        for process in found:
            try:
                full = process.memory_full_info()
            except psutil.Error:
                continue
            rss.append(full.rss / 2**20)
            pss.append(getattr(full, "pss", 0) / 2**20)
            uss.append(full.uss / 2**20)
    report(
        "idle worker memory",
        language,
        "MB each",
        {
            "workers": len(rss),
            "rss": round(statistics.median(rss), 1),
            "pss": round(statistics.median(pss), 1),
            "uss": round(statistics.median(uss), 1),
        },
    )


# -- pydantic-ai-harness -----------------------------------------------------------------------


def harness_python() -> Path:
    """The harness venv's interpreter, created on first use."""
    python = HARNESS_VENV / "bin" / "python"
    if not python.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(HARNESS_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "pydantic-ai-harness[code-mode]==0.62.0",
             "pydantic-monty==1.4.0", "psutil"],
            check=True,
        )  # fmt: skip
    return python


async def agent_seconds(language: str, program: str, runs: int) -> list[float]:
    """Wall time of pydantic-ai agent runs whose scripted model makes one code call."""
    from pydantic_ai import Agent
    from pydantic_ai.messages import (
        ModelMessage,
        ModelResponse,
        TextPart,
        ToolCallPart,
        ToolReturnPart,
    )
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    from codemode.integrations.pydantic_ai import to_pydantic_ai

    async with new_sandbox(language) as sandbox:
        tool = code_tool(sandbox)

        def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
            done = any(isinstance(p, ToolReturnPart) for m in messages for p in m.parts)
            if done:
                return ModelResponse(parts=[TextPart("done")])
            return ModelResponse(parts=[ToolCallPart(tool.id, {"code": program})])

        agent = Agent(FunctionModel(respond), tools=[to_pydantic_ai(tool)])
        await agent.run("go")
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            await agent.run("go")
            samples.append((time.perf_counter() - started) * 1000)
    return samples


async def bench_harness(runs: int) -> None:
    """The same workloads as agent runs: codemode (both languages) beside the harness."""
    workloads = {"trivial": max(runs, 20), "calls": max(runs // 10, 3), "gather": max(runs // 5, 5)}
    for name, n in workloads.items():
        for language in LANGUAGES:
            samples = await agent_seconds(language, PROGRAMS[name][language], n)
            report(f"agent: {name}", f"codemode {language}", "ms", summarise(samples))
        lines: list[dict[str, Any]] = []
        for _ in range(2):  # once more if the harness's process failed (its exit can abort)
            done = subprocess.run(
                [str(harness_python()), str(HERE / "_harness_workloads.py"), name, str(n)],
                capture_output=True,
                text=True,
                check=False,
            )
            lines = [json.loads(line) for line in done.stdout.splitlines() if line[:1] == "{"]
            if lines:
                break
            print(
                f"  harness {name} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}",
                flush=True,
            )
        if not lines:
            continue
        report(f"agent: {name}", "pydantic-ai-harness", "ms", summarise(lines[0]["samples"]))


FIGURES = ("trivial", "cold", "calls", "gather", "throughput", "memory")


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("figures", nargs="*", choices=[*FIGURES, []], default=[])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--harness", action="store_true")
    args = parser.parse_args(argv)
    chosen = args.figures or list(FIGURES)
    print(f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}", flush=True)
    for figure in chosen:
        for language in LANGUAGES:
            if figure == "trivial":
                await bench_trivial(language, args.runs)
            elif figure == "cold":
                await bench_cold(language, max(args.runs // 6, 3))
            elif figure == "calls":
                await bench_calls(language, max(args.runs // 6, 3))
            elif figure == "gather":
                await bench_gather(language, max(args.runs // 3, 5))
            elif figure == "throughput":
                await bench_throughput(language, 5.0, 8)
            elif figure == "memory":
                await bench_idle_memory(language, 4)
    if args.harness:
        await bench_harness(args.runs)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
