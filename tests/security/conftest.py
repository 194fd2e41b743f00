"""Fixtures for escape attempts: one default ``DenoSandbox`` per test module, shared by all its
attacks (so each attack also proves it did not poison the pool for the next one), and code
tools over a harmless ``echo`` tool and a ``secret`` tool that belongs to another code mode."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from codemode import CodeModeTool, DenoSandbox, Tool, create_code_mode, create_tool

pytest.register_assert_rewrite("_support")

from _support import Recorder  # noqa: E402 - after the rewrite hook, so asserts explain themselves


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sandbox() -> AsyncIterator[DenoSandbox]:
    async with DenoSandbox() as box:
        yield box


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def one_process() -> AsyncIterator[DenoSandbox]:
    """A sandbox whose executions all run one after another in the same process (the default
    pool may hand consecutive executions to different processes), for attacks on state that
    could survive from one execution to the next."""
    async with DenoSandbox(prestart=0, max_idle=1, max_processes=1) as box:
        yield box


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def calls(recorder: Recorder) -> Recorder:
    """The module's recorder, emptied for this test."""
    recorder.calls.clear()
    return recorder


@pytest.fixture(scope="module")
def echo_tool(recorder: Recorder) -> Tool:
    async def echo(value: Any) -> Any:
        recorder.calls.append(("echo", value))
        return value

    return create_tool(
        id="echo", description="Returns its input.", input_schema={"type": "object"}, execute=echo
    )


@pytest.fixture(scope="module")
def code_tool(sandbox: DenoSandbox, echo_tool: Tool) -> CodeModeTool:
    """The code tool under attack: default settings, one tool (``echo``)."""
    return create_code_mode(tools=[echo_tool], sandbox=sandbox).tool


@pytest.fixture(scope="module")
def quick_code_tool(sandbox: DenoSandbox, echo_tool: Tool) -> CodeModeTool:
    """The same, with a 2 s timeout, for attacks whose outcome is the timeout."""
    return create_code_mode(tools=[echo_tool], sandbox=sandbox, timeout=2000).tool


@pytest.fixture(scope="module")
def other_code_tool(sandbox: DenoSandbox, recorder: Recorder) -> CodeModeTool:
    """Another code mode on the same sandbox, with a tool the first one must never reach."""

    async def secret(value: Any) -> Any:
        recorder.calls.append(("secret", value))
        return "the secret"

    secret_tool = create_tool(
        id="secret",
        description="Not for the other code mode.",
        input_schema={"type": "object"},
        execute=secret,
    )
    return create_code_mode(tools=[secret_tool], sandbox=sandbox, id="other_code").tool
