"""The one protocol every sandbox runtime implements.

A sandbox runs a prepared program and reports every ``external_*`` call and log line to an
``ExecutionHost`` (the bridge). It never sees tools, schemas or approvals: those stay on the
host, so a runtime cannot weaken them. Cancelling ``Sandbox.execute`` must end the execution's
processes before it returns.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from .._result import CodeModeError
from ..languages import Language, get_language

__all__ = [
    "DurableHost",
    "DurableRun",
    "ExecutionHost",
    "ExecutionLimits",
    "Job",
    "Outcome",
    "Sandbox",
    "SandboxError",
    "ToolReply",
]


@dataclass(frozen=True)
class ExecutionLimits:
    """Limits that apply to one execution; the runtime enforces them inside the sandbox and
    the host checks them again."""

    max_tool_calls: int = 10_000
    max_concurrent_tool_calls: int = 256
    max_log_bytes: int = 1_000_000  # a line counts its UTF-8 bytes plus 64 (its cost on the host)
    max_result_bytes: int = 10_000_000
    max_workers: int = 0  # nested Workers a program may start; each is a realm with no guards


@dataclass(frozen=True)
class DurableRun:
    """What the worker replays before it goes live, in a durable execution: the order of
    events (``s<id>`` settled calls, ``t<id>`` fired timers, ``a<id>`` finished operations) and
    the clock and random values, as ``[kind, value]``, that earlier passes recorded. (Each
    runtime has its own kinds: runner.ts's, and MontySandbox's in ``_monty_tape.py``, which
    keeps everything, the order of results included, in ``values``.)"""

    events: tuple[str, ...] = ()
    values: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Job:
    """One program to run: the module source, its line offset and the allowed tool names.
    ``last_line`` is the last line of the model's code (see ``Program``). ``durable`` is set
    for a durable execution (then the host is a ``DurableHost``)."""

    source: str
    line_offset: int
    tools: tuple[str, ...]
    limits: ExecutionLimits
    last_line: int | None = None
    durable: DurableRun | None = None


@dataclass(frozen=True)
class ToolReply:
    """A tool call's outcome as the program will see it: a JSON value or an error."""

    ok: bool
    value: Any = None
    error_message: str = ""
    error_name: str = "Error"


@dataclass(frozen=True)
class Outcome:
    """How a program ended: ``result_json`` is the JSON text of its value (None for undefined)."""

    ok: bool
    result_json: str | None = None
    error: CodeModeError | None = None


class SandboxError(Exception):
    """The sandbox failed around the program (crash, limit, protocol); ``name`` is the error name
    the model sees."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


class ExecutionHost(Protocol):
    """The host side of one execution, as a sandbox sees it."""

    def start_call(
        self, name: str, args_json: str | None, reply: Callable[[ToolReply], None]
    ) -> None:
        """Begin a tool call; ``reply`` is called exactly once unless the execution ends first."""

    def log(self, text: str) -> None:
        """Record one line of program output."""


class DurableHost(ExecutionHost, Protocol):
    """The host of a durable execution, which also hears the worker's journal. Everything the
    worker reports is untrusted data (the program's own), used only to replay it."""

    def record(self, journal: Any) -> None:
        """The worker's journal since its last report (sent with a call, before it)."""

    def idle(self, probe: Any, waiting: Any, journal: Any) -> None:
        """The worker's answer to ``probe``: nothing left to do but wait on ``waiting`` calls."""

    def attach(self, control: Callable[[dict[str, Any]], None]) -> None:
        """How the host talks to the running program: ``{"t": "probe", "n": n}`` asks whether
        it is idle, ``{"t": "stop"}`` ends it (the sandbox then returns its outcome)."""


class Sandbox(abc.ABC):
    """Where programs run. Implementations: ``DenoSandbox`` (isolated) and ``LocalSandbox``.

    A sandbox names the language its programs are written in (TypeScript unless a runtime says
    otherwise); the code tool takes its declarations, contract and program preparation from it.
    """

    @property
    def language(self) -> Language:
        """The language of the programs this sandbox runs."""
        return get_language("typescript")

    @property
    def supports_durable(self) -> bool:
        """Whether this sandbox runs durable jobs (``Job.durable``): its worker records and
        replays, and it relays the journal to a ``DurableHost``."""
        return False

    @abc.abstractmethod
    async def execute(self, job: Job, host: ExecutionHost) -> Outcome:
        """Run ``job`` to completion. Raise ``SandboxError`` when the sandbox, not the program,
        failed. Cancellation must end every process of the execution."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release processes and files held for future executions."""

    async def __aenter__(self) -> Sandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
