"""Ending the runner early, and trapping signals.

``Deno.exit``, ``process.exit`` and ``close()`` inside a worker end only the worker, silently,
which used to leave the host waiting for the whole timeout (a hole: 30 s per attempt). The
bootstrap now locks them so that they end the program with an ``ExitError`` at once. Killing
its own process is allowed by Deno and ends in a ``SandboxCrashError``; the host ends every
process it gives up on with SIGKILL to its process group, which no signal listener can trap.
"""

from __future__ import annotations

import asyncio

import pytest
from _support import (
    HEALTHY,
    HEALTHY_CODE,
    Attack,
    Recorder,
    check_attack,
    failed,
    params,
    run,
    succeeded,
)

from _helpers import process_gone, sandbox_pid
from codemode import CodeModeTool

pytestmark = pytest.mark.asyncio(loop_scope="module")


def exited(how: str, line: int = 1) -> dict[str, object]:
    return failed(
        f"The program called {how}; a program ends by returning a value or throwing an Error.",
        "ExitError",
        line,
    )


ENDINGS = [
    Attack("deno-exit", "Deno.exit(0)", exited("exit(0)")),
    Attack("deno-exit-code", "Deno.exit(3)", exited("exit(3)")),
    Attack("deno-exit-no-code", "Deno.exit()", exited("exit()")),
    Attack("self-close", "self.close(); return 1", exited("close()")),
    Attack("global-close", "close(); return 1", exited("close()")),
    Attack("node-process-exit", "process.exit(2)", exited("exit(2)")),
    Attack("node-really-exit", "process.reallyExit(1)", exited("exit(1)")),
    Attack(
        "node-process-module-exit",
        '(await import("node:process")).default.exit(4)',
        exited("exit(4)"),
    ),
    Attack("exit-caught", 'try { Deno.exit(0) } catch {} return "went on"', exited("exit(0)")),
    Attack(
        "exit-later",
        "setTimeout(() => Deno.exit(5), 10)\nawait new Promise(r => setTimeout(r, 1000)); return 1",
        exited("exit(5)"),
    ),
    Attack(
        "exit-restore-delete",
        "delete Deno.exit; return 1",
        failed("Cannot delete property 'exit' of #<Object>", "TypeError"),
    ),
    Attack(
        "exit-restore-assign",
        "Deno.exit = () => {}; return 1",
        failed("Cannot assign to read only property 'exit' of object '#<Object>'", "TypeError"),
    ),
    Attack(
        "exit-restore-define",
        'Object.defineProperty(globalThis, "close", { value: () => 1 }); return 1',
        failed("Cannot redefine property: close", "TypeError"),
    ),
    Attack(
        "node-abort",
        "process.abort()",
        failed("process.abort() is not supported in workers", "TypeError"),
    ),
    Attack(
        "kill-own-process",
        'Deno.kill(Deno.pid, "SIGKILL"); return 1',
        failed(
            "The sandbox process ended during the program: it was killed by signal SIGKILL",
            "SandboxCrashError",
            line=None,
        ),
    ),
    Attack(
        "terminate-own-process",
        'Deno.kill(Deno.pid, "SIGTERM"); await new Promise(r => setTimeout(r, 1000)); return 1',
        failed(
            "The sandbox process ended during the program: it was killed by signal SIGTERM",
            "SandboxCrashError",
            line=None,
        ),
    ),
    Attack(
        "node-kill-own-process",
        'process.kill(process.pid, "SIGKILL"); return 1',
        failed(
            "The sandbox process ended during the program: it was killed by signal SIGKILL",
            "SandboxCrashError",
            line=None,
        ),
    ),
    # Traps outlive the execution in the process (Deno never restores a signal's default), but
    # the host never relies on a catchable signal.
    Attack(
        "trap-signals",
        'for (const s of ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1"]) Deno.addSignalListener(s, '
        "() => {}); "
        'return "trapped"',
        succeeded("trapped"),
    ),
    Attack(
        "node-trap-signal",
        'process.on("SIGTERM", () => {}); return "trapped"',
        succeeded("trapped"),
    ),
]


@pytest.mark.parametrize("attack", params(ENDINGS))
async def test_a_program_cannot_end_the_runner_unnoticed(
    code_tool: CodeModeTool, attack: Attack
) -> None:
    await check_attack(code_tool, attack)


TIMED_OUT = failed(
    "The program did not finish within the timeout of 2000 ms; make it do less work or run "
    "independent calls in parallel with Promise.all.",
    "TimeoutError",
    line=None,
)

STUCK = {
    "sigterm-trapped": 'Deno.addSignalListener("SIGTERM", () => {}); while (true) {}',
    "node-sigterm-trapped": 'process.on("SIGTERM", () => {}); while (true) {}',
    "every-signal-trapped": (
        'for (const s of ["SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"]) '
        "Deno.addSignalListener(s, () => {}); await new Promise(() => {})"
    ),
    "stopped": 'Deno.kill(Deno.pid, "SIGSTOP"); return 1',
}


@pytest.mark.parametrize("code", STUCK.values(), ids=STUCK.keys())
async def test_a_stuck_program_is_killed_whatever_it_traps(
    quick_code_tool: CodeModeTool, calls: Recorder, code: str
) -> None:
    """The timeout ends the process group with SIGKILL (behind bubblewrap, the wall's processes
    and with them its pid namespace): traps and SIGSTOP change nothing."""
    execution = asyncio.create_task(
        run(quick_code_tool, f"await external_echo({{ cwd: Deno.cwd() }}); {code}")
    )
    while not calls.calls and not execution.done():
        await asyncio.sleep(0.01)
    # Its host pid, found while it runs (Deno.pid is its pid namespace's behind bubblewrap).
    pid = sandbox_pid(calls.calls[0][1]["cwd"])
    assert await execution == TIMED_OUT
    assert await process_gone(pid)
    assert await run(quick_code_tool, HEALTHY_CODE) == HEALTHY
