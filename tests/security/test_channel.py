"""Attacks on the buffer a program's calls cross in (runner.ts, "The channel to the worker").

Each execution gets its own SharedArrayBuffer, shared by its worker (the program's realm) and
the runner. The program must gain nothing from it: the runner copies what it reads and checks
every record as strictly as a message, answers forged calls as the host would, and ends the
execution when the buffer makes no sense. Here each program is handed its buffer
(``expose_channel``), as if it had found it, and forges, truncates and scribbles; the last test
hunts for the buffer through patched built-ins without that help.
"""

from __future__ import annotations

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

# Long enough for the runner to see what the program wrote and end the execution.
WAIT = "await new Promise((r) => setTimeout(r, 1000));"


@pytest.fixture(scope="module", autouse=True)
def exposed(sandbox: DenoSandbox) -> Iterator[None]:
    sandbox._expose_channel = True  # type: ignore[misc]
    yield
    sandbox._expose_channel = False  # type: ignore[misc]


def broken(why: str) -> dict[str, object]:
    message = f"The program broke its channel to the runner: {why}."
    return failed(message, "ProtocolError", line=None)


ATTACKS = [
    # Forged calls, posted or written in the ring, are calls like any other: a tool index the
    # job lacks is refused by the runner, anything else is checked by the host.
    Attack(
        "posted-call-unknown-index",
        channel_program('self.postMessage(call(1e6, 9, "{}")); return await answer(1e6)'),
        succeeded(
            [
                "E",
                {
                    "name": "ReferenceError",
                    "message": "There is no tool number 9: the call was forged.",
                },
            ]
        ),
    ),
    Attack(
        "ring-call-unknown-index",
        channel_program('inRing(call(1e6, 2 ** 32 - 1, "{}")); return await answer(1e6)'),
        succeeded(
            [
                "E",
                {
                    "name": "ReferenceError",
                    "message": "There is no tool number 4294967295: the call was forged.",
                },
            ]
        ),
    ),
    Attack(
        "ring-call-own-tool",
        channel_program("inRing(call(1e6, 0, '{\"x\":1}')); return await answer(1e6)"),
        succeeded(["R", {"x": 1}]),
    ),
    Attack(
        "ring-call-not-json",
        channel_program('inRing(call(1e6, 0, "{not json")); return await answer(1e6)'),
        succeeded(["E", {"name": "TypeError", "message": "The input of tool echo is not JSON."}]),
    ),
    Attack(
        "ring-call-newline",  # a newline would end the host's line and start a forged one
        channel_program("inRing(call(1e6, 0, '{}\\nC1 0 {}')); return await answer(1e6)"),
        succeeded(
            ["E", {"name": "TypeError", "message": "The input of external_echo is not JSON."}]
        ),
    ),
    Attack(
        "posted-call-too-large",
        channel_program(
            'self.postMessage(call(1e6, 0, JSON.stringify({ x: "y".repeat(10_000_000) }))); '
            "return await answer(1e6)"
        ),
        succeeded(
            [
                "E",
                {
                    "name": "TypeError",
                    "message": "The input of external_echo is 10000008 bytes, over the limit of "
                    "10000000.",
                },
            ]
        ),
    ),
    Attack(
        "ring-call-too-short",  # not a call: ignored, as a junk message is
        channel_program(
            "inRing([67, 1, 2]); await taken(); return await external_echo({ after: 1 })"
        ),
        succeeded({"after": 1}),
    ),
    # Records only the runner writes, forged in the up ring: ignored. (The program waits until
    # the runner has read them: the worker's next call is written at the worker's own tail,
    # over bytes the runner may not have read yet, which breaks the channel instead.)
    Attack(
        "ring-forged-reply",
        channel_program(
            "inRing([82, ...u32(1), ...new TextEncoder().encode('\"spoofed\"')]); await taken(); "
            "return await external_echo({ real: true })"
        ),
        succeeded({"real": True}),
    ),
    # A forged log line is the program's own log line.
    Attack(
        "ring-log",
        channel_program(
            "inRing([76, ...new TextEncoder().encode('forged')]); await taken(); "
            "return await external_echo({ real: true })"
        ),
        succeeded({"real": True}, logs=["forged"]),
    ),
    # Lengths and positions that make no sense end the execution, and only it.
    Attack(
        "oversized-length",
        channel_program(f"writeUp([...u32(2 ** 32 - 16), 67, 0, 0, 0]); {WAIT}"),
        broken("a record at byte 0 of 8 has a length past the end"),
    ),
    Attack(
        "zero-length",
        channel_program(f"writeUp(u32(0)); {WAIT}"),
        broken("a record at byte 0 of 4 has a length past the end"),
    ),
    Attack(
        "truncated-length",
        channel_program(f"writeUp([1, 0]); {WAIT}"),
        broken("a record at byte 0 of 2 has a length past the end"),
    ),
    Attack(
        "tail-past-the-ring",
        channel_program(
            f"Atomics.store(i32, UP_TAIL, 1 << 20); Atomics.notify(i32, UP_TAIL); {WAIT}"
        ),
        broken("it published 1048576 bytes in a ring of 65536"),
    ),
    Attack(
        "tail-behind-head",
        channel_program(
            "await external_echo({ first: 1 }); "
            "Atomics.sub(i32, UP_TAIL, 1); Atomics.notify(i32, UP_TAIL); " + WAIT
        ),
        broken("it published 4294967295 bytes in a ring of 65536"),
    ),
    Attack(
        "barrier-wrong-size",
        channel_program(f"inRing([80, 1, 2]); {WAIT}"),
        broken("a barrier record of the wrong size"),
    ),
    # A barrier for posted records that never come: the worker sees the ring's head where it
    # never wrote, takes the ring for full and posts its call, which the barrier lets by.
    Attack(
        "forged-barrier",
        channel_program(
            "inRing([80, ...u32(1e6)]); await taken(); return await external_echo({ a: 1 })"
        ),
        succeeded({"a": 1}),
    ),
    # The heads are the readers' reports to the writers: nonsense there only means "full", and
    # the records go by message instead, in order.
    Attack(
        "heads-scribbled",
        channel_program(
            """
            let sum = 0
            for (let i = 0; i < 50; i++) {
              Atomics.store(i32, DOWN_HEAD, (i * 7919) | 0)
              Atomics.store(i32, UP_HEAD, -i)
              sum += (await external_echo({ i })).i
            }
            const all = await Promise.all(Array.from({ length: 30 }, (_, i) => {
              Atomics.store(i32, DOWN_HEAD, 2 ** 31 - 1)
              return external_echo({ i })
            }))
            return [sum, all.map((r) => r.i).join(",")]
            """
        ),
        succeeded([1225, ",".join(str(i) for i in range(30))]),
    ),
]


@pytest.mark.parametrize("attack", params(ATTACKS))
async def test_the_channel_gives_a_program_nothing(
    code_tool: CodeModeTool, calls: Recorder, attack: Attack
) -> None:
    await check_attack(code_tool, attack)
    assert set(calls.names()) <= {"echo"}
    assert all(isinstance(value, dict) for _, value in calls.calls)  # its schema: an object


async def test_scribbling_over_the_buffer_breaks_only_its_own_execution(
    quick_code_tool: CodeModeTool, code_tool: CodeModeTool, calls: Recorder
) -> None:
    """Random bytes anywhere in the buffer, over and over while calls cross it: the execution
    may fail in any way, or see its own calls and replies changed (which depends on where the
    bytes land), but the host gets only calls to the program's own tool, each validated, and
    the next execution is healthy."""
    program = channel_program(
        """
        let seed = 7
        const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff)
        const timer = setInterval(() => {
          for (let i = 0; i < 64; i++) u8[random() % u8.length] = random() & 255
        }, 1)
        let sum = 0
        for (let i = 0; i < 300; i++) sum += (await external_echo({ i })).i ?? 0
        clearInterval(timer)
        return sum
        """
    )
    for _ in range(3):
        outcome = await run(quick_code_tool, program)
        # Its own inputs and replies may change under its bytes: it returns some number, or
        # fails.
        assert outcome["success"] in (True, False)
        if outcome["success"]:
            assert isinstance(outcome["result"], int)
        assert await run(code_tool, HEALTHY_CODE) == HEALTHY
    assert set(calls.names()) <= {"echo"}
    assert all(isinstance(value, dict) for _, value in calls.calls)  # its schema: an object
