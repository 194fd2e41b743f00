"""Faults around a program: in its tools, in the sandbox process, in the runner and on the
channel. Each ends the execution with ``success=False`` and its own error name, the pool
replaces whatever broke, the next execution succeeds, and nothing is left behind.

A faulty runner is simulated by pointing ``DenoSandbox`` at a small stand-in runner script.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from pydantic import BaseModel

import codemode.sandboxes.deno as deno_module
from _helpers import Matches, process_gone, run, sandbox_pid
from codemode import CodeModeTool, DenoSandbox, Tool, create_code_mode, create_tool

if TYPE_CHECKING:
    from conftest import Census

HEALTHY_CODE = "return [6 * 7, await external_echo({ ok: true })]"
HEALTHY = {"success": True, "result": [42, {"ok": True}], "logs": []}


def failed(name: str, message: str | Matches, line: int | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "name": name}
    if line is not None:
        error["line"] = line
    return {"success": False, "logs": [], "error": error}


class Count(BaseModel):
    n: int


class Tools:
    """Tools that misbehave, and what happened to them."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.pid = 0

    def echo(self, value: Any) -> Any:
        return value

    def vault(self, value: Any) -> Any:
        raise PermissionError("no access to the vault")

    async def hang(self, value: dict[str, str]) -> None:
        self.pid = sandbox_pid(value["cwd"])
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise

    def note(self, value: dict[str, str]) -> None:
        self.pid = sandbox_pid(value["cwd"])
        self.started.set()

    def count(self, value: Any) -> Any:
        return {"n": "not a number"}

    def nan(self, value: Any) -> Any:
        return {"mean": float("nan")}

    def all(self) -> list[Tool]:
        def make(id: str, execute: Any, output_schema: Any = None) -> Tool:
            return create_tool(
                id=id,
                description=id,
                input_schema={"type": "object"},
                execute=execute,
                output_schema=output_schema,
            )

        return [
            make("echo", self.echo),
            make("vault", self.vault),
            make("hang", self.hang),
            make("note", self.note),
            make("count", self.count, output_schema=Count),
            make("nan", self.nan),
        ]


@pytest.fixture
def tools() -> Tools:
    return Tools()


@pytest.fixture
async def sandbox(census: Census) -> AsyncIterator[DenoSandbox]:
    """A default sandbox whose processes and files must all be gone once it is closed."""
    before = census.now()
    box = DenoSandbox()
    try:
        yield box
    finally:
        await box.aclose()
    after = await census.settled(before)
    assert (after.deno_pids, after.temp_dirs) == (before.deno_pids, before.temp_dirs)
    assert (sorted(after.fds - before.fds), sorted(before.fds - after.fds)) == ([], [])


def code_tool(sandbox: DenoSandbox, tools: Tools, timeout: int = 2000) -> CodeModeTool:
    return create_code_mode(tools=tools.all(), sandbox=sandbox, timeout=timeout).tool


# -- tools -------------------------------------------------------------------------------------


async def test_a_tool_that_raises(sandbox: DenoSandbox, tools: Tools) -> None:
    tool = code_tool(sandbox, tools)
    assert await run(tool, "return await external_vault({})") == failed(
        "PermissionError", "no access to the vault", line=1
    )
    caught = await run(
        tool,
        "try { await external_vault({}) } catch (e) { return [e.name, e.message, e instanceof "
        "Error] }",
    )
    assert caught == {
        "success": True,
        "result": ["PermissionError", "no access to the vault", True],
        "logs": [],
    }
    assert await run(tool, HEALTHY_CODE) == HEALTHY


async def test_a_tool_that_hangs_past_the_timeout_is_cancelled(
    sandbox: DenoSandbox, tools: Tools
) -> None:
    tool = code_tool(sandbox, tools, timeout=1000)
    assert await run(tool, "return await external_hang({ cwd: Deno.cwd() })") == failed(
        "TimeoutError",
        "The program did not finish within the timeout of 1000 ms; make it do less work or run "
        "independent calls in parallel with Promise.all.",
    )
    assert tools.cancelled.is_set()
    assert await process_gone(tools.pid)
    assert await run(tool, HEALTHY_CODE) == HEALTHY


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            "external_count({})",
            "Tool output validation failed for count:\n- n: Input should be a valid integer, "
            "unable to parse string as an integer",
        ),
        # A hole: NaN went out as bare `NaN`, which the runner could not parse, and it crashed.
        (
            "external_nan({})",
            "The tool returned a value that is not JSON (Out of range float values are not JSON "
            "compliant).",
        ),
    ],
    ids=["against-its-schema", "nan"],
)
async def test_a_tool_that_returns_invalid_output(
    sandbox: DenoSandbox, tools: Tools, call: str, message: str
) -> None:
    tool = code_tool(sandbox, tools)
    assert await run(tool, f"return await {call}") == failed("ValidationError", message, line=1)
    assert await run(tool, HEALTHY_CODE) == HEALTHY


# -- the sandbox process -----------------------------------------------------------------------


async def test_a_process_killed_from_outside(sandbox: DenoSandbox, tools: Tools) -> None:
    tool = code_tool(sandbox, tools, timeout=10_000)
    execution = asyncio.create_task(run(tool, "return await external_hang({ cwd: Deno.cwd() })"))
    await tools.started.wait()
    os.kill(tools.pid, signal.SIGKILL)
    assert await execution == failed(
        "SandboxCrashError",
        "The sandbox process ended during the program: it was killed by signal SIGKILL",
    )
    assert tools.cancelled.is_set()
    assert await run(tool, HEALTHY_CODE) == HEALTHY


async def test_cancelling_the_caller_ends_the_process_and_its_tool_calls(
    sandbox: DenoSandbox, tools: Tools
) -> None:
    tool = code_tool(sandbox, tools, timeout=30_000)
    execution = asyncio.create_task(run(tool, "return await external_hang({ cwd: Deno.cwd() })"))
    await tools.started.wait()
    execution.cancel()
    with pytest.raises(asyncio.CancelledError):
        await execution
    assert tools.cancelled.is_set()
    assert await process_gone(tools.pid)
    assert await run(tool, HEALTHY_CODE) == HEALTHY


async def test_cancelling_the_caller_ends_a_busy_program(
    sandbox: DenoSandbox, tools: Tools
) -> None:
    tool = code_tool(sandbox, tools, timeout=30_000)
    execution = asyncio.create_task(
        run(tool, "await external_note({ cwd: Deno.cwd() }); while (true) {}")
    )
    await tools.started.wait()
    process = psutil.Process(tools.pid)
    before = sum(process.cpu_times()[:2])
    await asyncio.sleep(0.5)
    assert sum(process.cpu_times()[:2]) - before > 0.05  # spinning (on a busy machine too)
    execution.cancel()
    with pytest.raises(asyncio.CancelledError):
        await execution
    assert await process_gone(tools.pid)
    assert await run(tool, HEALTHY_CODE) == HEALTHY


# -- the runner and the channel ----------------------------------------------------------------

FAKE_RUNNER = """
const conn = await Deno.connect({ transport: "unix", path: Deno.env.get("CODEMODE_SOCKET") });
const send = (text) => conn.write(new TextEncoder().encode(text));
const read = async () => {
  const b = new Uint8Array(1 << 20);
  return new TextDecoder().decode(b.subarray(0, await conn.read(b)));
};
await send('{"t":"ready"}\\n');
await read();
setInterval(() => {}, 1 << 30);  // stay alive, whatever the action leaves pending
%s
"""

FAULTY_RUNNERS = {
    "exits-early": (
        "Deno.exit(3);",
        failed(
            "SandboxExitError",
            "The sandbox process ended during the program: it exited with code 3",
        ),
    ),
    "crashes": (
        'throw new Error("runner bug");',
        failed(
            "SandboxExitError",
            Matches(
                r"The sandbox process ended during the program: it exited with code 1; it said: "
                r"error: Uncaught \(in promise\) Error: runner bug\n.*runner\.js:\d+:\d+\)?"
            ),
        ),
    ),
    "not-json": (
        'await send("this is not json\\n");',
        failed(
            "ProtocolError",
            "The sandbox sent a malformed message: Expecting value: line 1 column 1 (char 0)",
        ),
    ),
    "wrong-shape": (
        "await send('[1, 2]\\n');",
        failed(
            "ProtocolError",
            "The sandbox sent a malformed message: list indices must be integers or slices, not "
            "str",
        ),
    ),
    "oversized": (
        "const line = new Uint8Array(80 << 20).fill(120); "
        "for (let at = 0; at < line.length;) at += await conn.write(line.subarray(at));",
        failed(
            "MessageTooLargeError",
            "The sandbox sent a message over the size limit of 67108864 bytes",
        ),
    ),
    # Both in one write, so they are in the host's buffer together, whatever the load.
    "too-many-calls-at-once": (
        "await send('C1 0 {}\\nC2 0 {}\\n');",
        failed("ProtocolError", "The sandbox broke the tool-call limits it was given"),
    ),
    # The host checks names again: a runner asking for a tool outside the job is broken.
    "calls-another-tool": (
        "await send('C1 7 {}\\n');",
        failed("ProtocolError", "The sandbox called tool number 7; the job has 6 tools"),
    ),
}


@pytest.fixture
def fake_runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Install a stand-in runner that acts out ``action`` on its first job; undo with the
    returned function (the real runner is restored at the end of the test in any case)."""

    def install(action: str) -> None:
        script = tmp_path / "runner.js"
        script.write_text(FAKE_RUNNER % action)
        monkeypatch.setattr(deno_module, "RUNNER", script)

    yield install


@pytest.mark.parametrize(("action", "expected"), FAULTY_RUNNERS.values(), ids=FAULTY_RUNNERS.keys())
async def test_a_faulty_runner(
    census: Census,
    fake_runner: Any,
    monkeypatch: pytest.MonkeyPatch,
    tools: Tools,
    action: str,
    expected: dict[str, Any],
) -> None:
    before = census.now()
    real_runner = deno_module.RUNNER
    async with DenoSandbox(prestart=0) as sandbox:
        tool = create_code_mode(
            tools=tools.all(), sandbox=sandbox, timeout=10_000, max_concurrent_tool_calls=1
        ).tool
        fake_runner(action)
        outcome = await run(tool, "return 1")
        monkeypatch.setattr(deno_module, "RUNNER", real_runner)
        assert outcome == expected
        assert await run(tool, HEALTHY_CODE) == HEALTHY
    assert await census.settled(before) == before


async def test_a_runner_that_never_starts(
    census: Census, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tools: Tools
) -> None:
    before = census.now()
    script = tmp_path / "runner.js"
    script.write_text("Deno.exit(5);")
    monkeypatch.setattr(deno_module, "RUNNER", script)
    async with DenoSandbox(prestart=0) as sandbox:
        tool = create_code_mode(tools=tools.all(), sandbox=sandbox).tool
        assert await run(tool, "return 1") == failed(
            "SandboxStartError", "The Deno sandbox process did not start: it exited with code 5"
        )
    assert await census.settled(before) == before
