"""Fixtures for escape attempts: one sandbox per test module, shared by all its attacks (so each
attack also proves it did not poison the pool for the next one), and code tools over a harmless
``echo`` tool and a ``secret`` tool that belongs to another code mode.

Every attack runs three times, once behind each wall alone and once behind both:

* ``deno``: ``DenoSandbox(confinement=None)``, Deno's permission checks alone;
* ``wall``: ``LocalSandbox(confinement=Confinement())``, Deno with every permission granted inside
  the OS wall alone (the situation after a total Deno or V8 permission bypass);
* ``deno+wall``: ``DenoSandbox()``, the default, both.

An attack states its result for each (``Attack.expected``, ``.walled``, ``.both``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from codemode import (
    CodeModeTool,
    Confinement,
    DenoSandbox,
    LocalSandbox,
    Tool,
    create_code_mode,
    create_tool,
)

pytest.register_assert_rewrite("_support")

from _support import (  # noqa: E402 - after the rewrite hook, so asserts explain themselves
    HOST_SECRET,
    Recorder,
)

SANDBOXES: dict[str, Callable[..., DenoSandbox]] = {
    "deno": lambda **options: DenoSandbox(confinement=None, **options),
    "wall": lambda **options: LocalSandbox(confinement=Confinement(), **options),
    "deno+wall": lambda **options: DenoSandbox(**options),
}
LAYERS = {"deno": 1, "wall": 1, "deno+wall": 2}


@pytest.fixture(scope="module", params=list(SANDBOXES))
def walls(request: pytest.FixtureRequest) -> Iterator[str]:
    """Which walls stand (see the module docstring). The host's environment holds a secret
    meanwhile, which no program may read."""
    os.environ["CODEMODE_HOST_SECRET"] = HOST_SECRET
    try:
        yield str(request.param)
    finally:
        del os.environ["CODEMODE_HOST_SECRET"]


def _checked(box: DenoSandbox, walls: str) -> DenoSandbox:
    # A run meant to test a wall must have it: a machine without one fails here, loudly.
    assert len(box.confinement_report().layers) == LAYERS[walls], box.confinement_report()
    return box


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sandbox(walls: str) -> AsyncIterator[DenoSandbox]:
    async with _checked(SANDBOXES[walls](), walls) as box:
        yield box


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def one_process(walls: str) -> AsyncIterator[DenoSandbox]:
    """A sandbox whose executions all run one after another in the same process (the default
    pool may hand consecutive executions to different processes), for attacks on state that
    could survive from one execution to the next."""
    async with _checked(SANDBOXES[walls](prestart=0, max_idle=1, max_processes=1), walls) as box:
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
