"""The warm pool: processes started ahead of demand, bounded, recycled, and never left behind."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from typing import Any

import psutil
import pytest

from codemode import DenoSandbox, create_code_mode, create_tool


def all_deno_children() -> set[int]:
    return {
        p.pid
        for p in psutil.Process().children(recursive=True)
        if p.is_running() and p.status() != psutil.STATUS_ZOMBIE and "deno" in p.name()
    }


_BEFORE: set[int] = set()


@pytest.fixture(autouse=True)
def _only_this_tests_processes() -> None:
    """Other tests' sandboxes (e.g. the one behind execute_sync) may still hold processes."""
    _BEFORE.clear()
    _BEFORE.update(all_deno_children())


def deno_children() -> set[int]:
    return all_deno_children() - _BEFORE


async def settle(expected: int, steady: float = 0.3) -> set[int]:
    """Processes start and stop in the background: wait (up to 5 s) for the count to be
    ``expected`` and stay so for ``steady`` seconds (behind bubblewrap, a starting process
    shows as a Deno process a moment after it was spawned)."""
    since: float | None = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pids = deno_children()
        if len(pids) != expected:
            since = None
        elif since is None:
            since = time.monotonic()
        elif time.monotonic() - since >= steady:
            return pids
        await asyncio.sleep(0.01)
    return deno_children()


@pytest.mark.parametrize(("max_idle", "after"), [(3, 3), (4, 4)])
async def test_prestart_refill_idle_bound_and_clean_shutdown(max_idle: int, after: int) -> None:
    assert deno_children() == set()
    async with DenoSandbox(prestart=3, max_idle=max_idle) as sandbox:
        assert len(deno_children()) == 3  # ready before the first execution
        code_tool = create_code_mode(tools=[], sandbox=sandbox).tool
        assert (await code_tool.execute({"code": "return 1"})).result == 1
        # With room under max_idle, a spare was started while the used process booted its
        # next realm; without, none was (the used one comes back).
        assert len(await settle(after)) == after
        await asyncio.sleep(0.2)
        assert len(deno_children()) == after
    assert deno_children() == set()


async def test_a_full_pool_serves_one_caller_without_starting_or_killing_a_process() -> None:
    # prestart == max_idle: a spare started beside the busy process used to push one out of
    # the idle set when it came back, so every execution started and killed a process.
    async with DenoSandbox(prestart=3, max_idle=3) as sandbox:
        code_tool = create_code_mode(tools=[], sandbox=sandbox).tool
        assert (await code_tool.execute({"code": "return 0"})).result == 0
        before = await settle(3)
        for i in range(12):
            assert (await code_tool.execute({"code": f"return {i}"})).result == i
            await asyncio.sleep(0.03)  # each used process is back, with its next realm
        assert await settle(3) == before


async def test_process_count_is_bounded_and_callers_wait_their_turn() -> None:
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, len(deno_children()))
            await asyncio.sleep(0.01)

    async with DenoSandbox(prestart=1, max_processes=2) as sandbox:
        code_tool = create_code_mode(tools=[], sandbox=sandbox).tool
        watcher = asyncio.create_task(watch())
        started = time.perf_counter()
        program = "await new Promise(r => setTimeout(r, 200)); return 'slept'"
        results = await asyncio.gather(*(code_tool.execute({"code": program}) for _ in range(5)))
        elapsed = time.perf_counter() - started
        watcher.cancel()
    assert [r.result for r in results] == ["slept"] * 5
    assert peak == 2
    assert elapsed >= 0.6  # five 200 ms programs through two processes: three rounds


async def test_processes_are_retired_after_max_uses() -> None:
    seen: set[int] = set()

    def record(_: Any) -> None:
        seen.update(deno_children())

    probe = create_tool(id="probe", description="", input_schema={}, execute=record)
    async with DenoSandbox(prestart=0, max_idle=1, max_processes=1, max_uses=2) as sandbox:
        code_tool = create_code_mode(tools=[probe], sandbox=sandbox).tool
        for _ in range(4):
            assert (await code_tool.execute({"code": "await external_probe({})"})).success
    assert len(seen) == 2  # four executions, two uses each


async def test_a_crash_in_one_execution_never_touches_another() -> None:
    async with DenoSandbox(heap_mb=64, memory_mb=2048) as sandbox:
        code_tool = create_code_mode(tools=[], sandbox=sandbox).tool
        bomb = "const xs: number[][] = []\nwhile (true) xs.push(new Array(1e6).fill(1))"
        calm = "await new Promise(r => setTimeout(r, 300)); return 'unharmed'"
        crashed, calm_result = await asyncio.gather(
            code_tool.execute({"code": bomb}), code_tool.execute({"code": calm})
        )
        after = await code_tool.execute({"code": "return 'next'"})
    assert crashed.error is not None and crashed.error.name == "MemoryLimitError"
    assert calm_result.result == "unharmed"
    assert after.result == "next"


@pytest.mark.parametrize("close", [False, True], ids=["interpreter-exit", "aclose"])
def test_no_process_outlives_the_interpreter(close: bool) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, psutil
        from codemode import DenoSandbox, create_code_mode

        async def main():
            sandbox = DenoSandbox(prestart=2)
            await sandbox.start()
            tool = create_code_mode(tools=[], sandbox=sandbox).tool
            assert (await tool.execute({{"code": "return 1"}})).result == 1
            kids = [p.pid for p in psutil.Process().children(recursive=True)]
            print(" ".join(map(str, kids)), flush=True)
            if {close}:
                await sandbox.aclose()

        asyncio.run(main())
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr
    pids = [int(p) for p in completed.stdout.split()]
    assert len(pids) >= 2
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(psutil.pid_exists(p) for p in pids):
        time.sleep(0.02)
    alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert alive == []


async def test_a_stuck_recycling_process_does_not_stall_the_next_execution(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from codemode.sandboxes import deno

    async def never_ready(self: Any, process: Any) -> None:
        await asyncio.sleep(3600)  # a runner that never reports its next realm

    monkeypatch.setattr(deno._Pool, "_recycle", never_ready)
    async with DenoSandbox(prestart=0, max_processes=4) as sandbox:
        code_tool = create_code_mode(tools=[], sandbox=sandbox).tool
        assert (await code_tool.execute({"code": "return 1"})).result == 1
        started = time.perf_counter()
        assert (await code_tool.execute({"code": "return 2"})).result == 2
        assert time.perf_counter() - started < 1.0


async def test_a_start_cut_short_as_the_runner_connects_reports_nothing(tmp_path: Any) -> None:
    # The runner's connection arrives in the loop iteration in which the start is cancelled:
    # the accept's callback is already queued when the listener closes.
    import socket

    from codemode.sandboxes.deno import _close_listener

    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    path = str(tmp_path / "host.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.setblocking(False)
    accepted = asyncio.ensure_future(loop.sock_accept(listener))
    await asyncio.sleep(0)  # the accept waits on the listener
    runner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    runner.connect(path)  # readable from the next poll on

    def cut_short() -> None:  # queued before that poll, so it runs first in that iteration
        accepted.cancel()
        _close_listener(listener)

    try:
        loop.call_soon(cut_short)
        await asyncio.sleep(0.05)
    finally:
        runner.close()
        loop.set_exception_handler(None)
    assert accepted.cancelled()
    assert reported == []
