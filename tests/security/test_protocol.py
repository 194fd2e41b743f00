"""Forging protocol messages, and reading or consuming the host's replies.

The program's channels to the trusted runner are ``postMessage`` and its execution's buffer
(test_channel.py), and the runner treats everything on them as untrusted data: it assigns the
call ids the host sees, checks tool numbers and sizes, and ignores anything that is not a call,
a log line or the program's own end. A program can therefore only lie about itself: forging its
own result is the same as returning it. Here programs get their buffer (``expose_channel``) to
read the runner's answers to forged calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

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

from _helpers import channel_program
from codemode import CodeModeTool, DenoSandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module", autouse=True)
def exposed(sandbox: DenoSandbox) -> Iterator[None]:
    sandbox._expose_channel = True  # type: ignore[misc]
    yield
    sandbox._expose_channel = False  # type: ignore[misc]


WAIT = "await new Promise(r => setTimeout(r, 100));"


def forged_call(index: int, input_js: str) -> str:
    """A program that posts a call record (tool ``index``, input JSON text ``input_js``, a
    JavaScript expression) and returns the runner's answer to it from its channel."""
    return channel_program(
        f"self.postMessage(call(1e6, {index}, {input_js})); return await answer(1e6)"
    )


def refused(name: str, message: str) -> dict[str, object]:
    return succeeded(["E", {"name": name, "message": message}])


TRUNCATED = "[logs truncated: over the limit of 1000000 bytes]"

ATTACKS = [
    # A forged end is the program's own result: no different from `return`.
    Attack(
        "forged-done",
        f'self.postMessage({{ t: "done", ok: true, r: \'"forged"\' }}); {WAIT} return "real"',
        succeeded("forged"),
    ),
    # ...but what the host parses must be JSON (a hole: the host used to raise here).
    Attack(
        "forged-done-not-json",
        f'self.postMessage({{ t: "done", ok: true, r: "{{not json" }}); {WAIT} return 1',
        failed("The sandbox returned a result that is not valid JSON.", "ProtocolError", line=None),
    ),
    Attack(
        "forged-done-nan",
        f'self.postMessage({{ t: "done", ok: true, r: "NaN" }}); {WAIT} return 1',
        failed("The sandbox returned a result that is not valid JSON.", "ProtocolError", line=None),
    ),
    Attack(
        "forged-done-not-text",
        f'self.postMessage({{ t: "done", ok: true, r: {{ a: 1 }} }}); {WAIT} return "real"',
        succeeded("real"),
    ),
    Attack(
        "forged-done-too-large",
        'self.postMessage({ t: "done", ok: true, r: JSON.stringify("x".repeat(10_000_000)) }); '
        f"{WAIT} return 1",
        failed("The result is over the limit of 10000000 bytes.", "ResultTooLargeError", line=None),
    ),
    # A program may name its own errors as it likes (`throw` can too); a bad line is dropped.
    Attack(
        "forged-error",
        'self.postMessage({ t: "done", ok: false, '
        f'e: {{ name: "TimeoutError", message: "fake", line: 2.5 }} }}); {WAIT}',
        failed("fake", "TimeoutError", line=None),
    ),
    Attack(
        "forged-runner-messages",
        'for (const t of ["ready", "boot", "run", "ret"]) self.postMessage({ t, c: 1, ok: true, '
        'v: 1, source: "return 2" }); '
        "return await external_echo({ real: true })",
        succeeded({"real": True}),
    ),
    Attack(
        "forged-junk-messages",
        "self.postMessage(null); self.postMessage(42); self.postMessage(new SharedArrayBuffer(8)); "
        'const ch = new MessageChannel(); self.postMessage({ t: "log", m: ch.port1 }, [ch.port1]); '
        'self.postMessage({ t: "log", m: 7 }); self.postMessage({ t: "call", c: "1", n: "echo" '
        '}); return "ok"',
        succeeded("ok"),
    ),
    Attack(
        "forged-call-unknown-tool",
        forged_call(1, '"{}"'),
        refused("ReferenceError", "There is no tool number 1: the call was forged."),
    ),
    Attack(
        "forged-call-args-newline",
        forged_call(0, '"{\\n}"'),
        refused("TypeError", "The input of external_echo is not JSON."),
    ),
    Attack(
        "forged-call-args-not-json",
        forged_call(0, '"{not json"'),
        refused("TypeError", "The input of tool echo is not JSON."),
    ),
    Attack(
        "forged-call-args-too-large",
        forged_call(0, 'JSON.stringify({ x: "y".repeat(10_000_000) })'),
        refused(
            "TypeError", "The input of external_echo is 10000008 bytes, over the limit of 10000000."
        ),
    ),
    # Answering a host call itself: the runner takes replies from the host only.
    Attack(
        "forged-reply",
        'self.postMessage({ t: "ret", c: 1, ok: true, v: "spoofed" }); return await '
        "external_echo({ real: true })",
        succeeded({"real": True}),
    ),
    # Log records posted directly skip the worker's own count; the runner counts again.
    Attack(
        "forged-log-flood",
        "const line = new Uint8Array(1001).fill(120); line[0] = 76; "
        "for (let i = 0; i < 2000; i++) self.postMessage(line); "
        f"{WAIT} return 1",
        succeeded(1, logs=["x" * 1000] * 939 + [TRUNCATED]),  # 1064 bytes a line
    ),
]


@pytest.mark.parametrize("attack", params(ATTACKS))
async def test_forged_messages_change_only_the_program_itself(
    code_tool: CodeModeTool, calls: Recorder, attack: Attack
) -> None:
    await check_attack(code_tool, attack)
    assert "secret" not in calls.names()


async def test_a_program_sees_only_its_own_replies(
    code_tool: CodeModeTool, other_code_tool: CodeModeTool
) -> None:
    """Two executions at once, each listening to every message its realm receives: each sees
    its own replies (one by one, or several in one message) and nothing of the other's."""
    program = """
        const seen = []
        self.addEventListener("message", e => seen.push(e.data))
        await Promise.all(Array.from({ length: 20 }, (_, i) => external_%s({ tag: "%s", i })))
        await new Promise(r => setTimeout(r, 50))
        // every reply in the channel's down ring, and any that came by message
        const replies = []
        const tail = Atomics.load(i32, DOWN_TAIL)
        for (let at = 0; at < tail;) {
          const length = getU32(u8, DOWN_DATA + at)
          const record = u8.slice(DOWN_DATA + at + 4, DOWN_DATA + at + 4 + length)
          const value = JSON.parse(new TextDecoder().decode(record.slice(5)))
          replies.push([String.fromCharCode(record[0]), value.tag ?? value])
          at += 4 + length
        }
        return [replies, seen.length]
    """
    for _ in range(3):
        mine, theirs = await asyncio.gather(
            run(code_tool, channel_program(program % ("echo", "A"))),
            run(other_code_tool, channel_program(program % ("secret", "B"))),
        )
        assert mine == succeeded([[["R", "A"]] * 20, 0])
        assert theirs == succeeded([[["R", "the secret"]] * 20, 0])
    assert await run(code_tool, HEALTHY_CODE) == HEALTHY


async def test_consuming_its_own_replies_only_stalls_itself(
    quick_code_tool: CodeModeTool, code_tool: CodeModeTool
) -> None:
    """Without the bootstrap's table of calls a program's calls never settle: it times out,
    while an execution beside it is untouched."""
    stalled, beside = await asyncio.gather(
        run(
            quick_code_tool,
            "Map.prototype.get = () => undefined; return await external_echo({ a: 1 })",
        ),
        run(
            code_tool,
            "await new Promise(r => setTimeout(r, 300)); return await external_echo({ b: 2 })",
        ),
    )
    assert stalled == failed(
        "The program did not finish within the timeout of 2000 ms; make it do less work or "
        "run independent calls in parallel with Promise.all.",
        "TimeoutError",
        line=None,
    )
    assert beside == succeeded({"b": 2})
    assert await run(code_tool, HEALTHY_CODE) == HEALTHY
