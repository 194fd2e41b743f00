"""Calling tools outside the allow-list, reaching another code mode's tools, and skipping the
host's validation or approval. The worker defines only its own code mode's ``external_*``
functions; a call crosses as a number in the job's list of tools, which the runner and the host
both check, and the bridge looks the name up again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

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
from pydantic import BaseModel

from _helpers import channel_program
from codemode import CodeModeTool, DenoSandbox, Tool, create_code_mode, create_tool

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module", autouse=True)
def exposed(sandbox: DenoSandbox) -> Iterator[None]:
    """Programs get their channel (``__codemodeChannel``) to read the runner's answers."""
    sandbox._expose_channel = True  # type: ignore[misc]
    yield
    sandbox._expose_channel = False  # type: ignore[misc]


class Count(BaseModel):
    n: int


@pytest.fixture(scope="module")
def guarded_code_tool(sandbox: DenoSandbox, echo_tool: Tool, recorder: Recorder) -> CodeModeTool:
    """``echo``, a tool that needs an approval nobody gives, and one with a strict schema."""

    def guarded(value: Any) -> str:
        recorder.calls.append(("guarded", value))
        return "ran"

    def strict(value: Count) -> int:
        recorder.calls.append(("strict", value.n))
        return value.n * 2

    tools = [
        echo_tool,
        create_tool(
            id="guarded",
            description="Needs approval.",
            input_schema={"type": "object"},
            execute=guarded,
            require_approval=True,
        ),
        create_tool(id="strict", description="Takes {n: int}.", input_schema=Count, execute=strict),
    ]
    return create_code_mode(tools=tools, sandbox=sandbox).tool


def forged(index: int, input_json: str) -> str:
    """A program that posts a call record for tool number ``index`` of its job (echo, guarded,
    strict) straight to the runner, and returns the runner's answer from its channel. Only an
    index crosses, never a name: the runner and the host look it up in the job's own list."""
    return channel_program(
        f"self.postMessage(call(1e6, {index}, {input_json!r})); return await answer(1e6)"
    )


def unknown(index: int) -> dict[str, Any]:
    message = f"There is no tool number {index}: the call was forged."
    return succeeded(["E", {"name": "ReferenceError", "message": message}])


ATTACKS = [
    Attack(
        "other-code-mode-tool",
        "return await external_secret({})",
        # the hint lists this code mode's own functions, never the other's
        failed(
            "external_secret is not defined. Available: external_echo, external_guarded, "
            "external_strict.",
            "ReferenceError",
        ),
    ),
    Attack(
        "other-code-mode-tool-by-global",
        "return [typeof globalThis.external_secret, "
        'Object.getOwnPropertyNames(globalThis).filter(n => n.startsWith("external_")).sort()]',
        succeeded(["undefined", ["external_echo", "external_guarded", "external_strict"]]),
    ),
    Attack(
        "rebind-allowed-name",
        'Object.defineProperty(globalThis, "external_echo", { value: () => 1 }); return 1',
        failed("Cannot redefine property: external_echo", "TypeError"),
    ),
    Attack("forged-tool-past-the-end", forged(3, "{}"), unknown(3)),
    Attack("forged-tool-max-index", forged(2**32 - 1, "{}"), unknown(2**32 - 1)),
    Attack(
        "skip-approval",
        "return await external_guarded({})",
        failed("Tool guarded requires approval and was not approved", "ApprovalDeniedError"),
    ),
    Attack(
        "skip-validation",
        'return await external_strict({ n: "1; DROP TABLE" })',
        failed(
            "Tool input validation failed for strict:\n"
            "- n: Input should be a valid integer, unable to parse string as an integer\n"
            "Expected: external_strict(input: { n: number; })",
            "ValidationError",
        ),
    ),
    Attack(
        "skip-approval-forged",
        forged(1, "{}"),
        succeeded(
            [
                "E",
                {
                    "name": "ApprovalDeniedError",
                    "message": "Tool guarded requires approval and was not approved",
                },
            ]
        ),
    ),
    Attack(
        "skip-validation-forged",
        forged(2, '"not an object"'),
        succeeded(
            [
                "E",
                {
                    "name": "ValidationError",
                    "message": "Tool input validation failed for strict:\n"
                    "- (root): Input should be a valid dictionary or instance of Count\n"
                    "Expected: external_strict(input: { n: number; })",
                },
            ]
        ),
    ),
]


@pytest.mark.parametrize("attack", params(ATTACKS))
async def test_only_allowed_tools_run_as_declared(
    guarded_code_tool: CodeModeTool, calls: Recorder, attack: Attack
) -> None:
    await check_attack(guarded_code_tool, attack)
    assert set(calls.names()) <= {"echo"}  # the health check's own call


async def test_two_code_modes_on_one_sandbox_stay_apart(
    code_tool: CodeModeTool, other_code_tool: CodeModeTool, calls: Recorder
) -> None:
    """Run side by side on the same sandbox, each code mode reaches its own tool only."""
    for _ in range(3):
        mine, theirs = await asyncio.gather(
            run(
                code_tool,
                "return [typeof globalThis.external_secret, await external_echo({ me: 1 })]",
            ),
            run(
                other_code_tool,
                "return [typeof globalThis.external_echo, await external_secret({})]",
            ),
        )
        assert mine == succeeded(["undefined", {"me": 1}])
        assert theirs == succeeded(["undefined", "the secret"])
    assert sorted(calls.calls, key=repr) == [("echo", {"me": 1})] * 3 + [("secret", {})] * 3
    assert await run(code_tool, HEALTHY_CODE) == HEALTHY
