"""The host side of one execution: each ``external_*`` call the sandbox reports becomes a real
tool call here, with the allow-list, validation, approval, context and tracing of a direct call.

A call passes through layers, each a small async function ``(site, next) -> reply``: the
allow-list, tracing (only when spans are collected), validation, approval, and the tool run.
A durable execution adds the journal's two layers (``durable``): one outermost, which numbers
the call and answers it from the record on replay, and one around the run, which records the
call as started before it runs and its outcome after.

Calls run concurrently, each in a task the bridge owns; closing the bridge cancels whatever is
still running, so no tool call outlives the program that made it.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, cast

from ._json import loads
from ._tools import ApprovalAnswer, Approve, Tool, ToolCall, ToolContext, ToolValidationError
from ._tracing import span, tracing
from .sandboxes._base import ToolReply
from .stores._base import call_id

__all__ = ["ApprovalDeniedError", "Bridge", "CallSite", "Layer", "Next"]

# Python 3.12+ can start a task eagerly (its first step runs inside create, as the caller).
_EAGER: dict[str, Any] = {"eager_start": True} if sys.version_info >= (3, 12) else {}


class ApprovalDeniedError(Exception):
    """A tool that requires approval was not approved."""


class CallSite:
    """One call as it passes the layers: what the program asked for and what is known of it."""

    __slots__ = (
        "args_json",
        "decided",
        "execution_id",
        "input",
        "input_hash",
        "line",
        "name",
        "step",
        "tool",
    )

    def __init__(self, name: str, args_json: str | None, tool: Tool | None) -> None:
        self.name = name
        self.args_json = args_json
        self.tool = tool
        self.input: Any = None  # the validated input, once validated
        self.decided = False  # a person approved this call: approval is not asked again
        # Durable executions only:
        self.step: int | None = None
        self.line: int | None = None
        self.input_hash: str | None = None
        self.execution_id: str | None = None

    @property
    def idempotency_key(self) -> str | None:
        if self.execution_id is None or self.step is None:
            return None
        return f"{self.execution_id}:{self.step}"


Next = Callable[[CallSite], Awaitable[ToolReply | None]]
"""The rest of the layers. ``None`` means no reply: the call waits (deferred for approval)."""

Layer = Callable[[CallSite, Next], Awaitable[ToolReply | None]]


class CallJournal(Protocol):
    """What the bridge needs of a durable execution's journal (``codemode.durable``)."""

    async def replay(self, site: CallSite, next: Next) -> ToolReply | None:
        """The outermost layer: number, check and answer from the record."""

    async def record(self, site: CallSite, next: Next) -> ToolReply | None:
        """The layer around the run: recorded as started before, its outcome after."""

    def arrived(self, site: CallSite) -> None:
        """Number a call as it arrives (before its task starts)."""

    def tape(self, journal: Any) -> None: ...

    def idle(self, probe: Any, waiting: Any, journal: Any) -> None: ...

    def attach(self, control: Callable[[dict[str, Any]], None]) -> None: ...


class Bridge:
    """Dispatches one execution's tool calls and collects its logs."""

    def __init__(
        self,
        tools: Mapping[str, Tool],
        *,
        approve: Approve | None,
        request_context: Mapping[str, Any],
        code_mode_id: str,
        input_hint: Callable[[str], str] | None = None,
        journal: CallJournal | None = None,
    ) -> None:
        self._tools = tools
        self._request_context = request_context
        self._code_mode_id = code_mode_id
        self._journal = journal
        self._tasks: set[asyncio.Task[None]] = set()
        self.logs: list[str] = []
        self.tool_calls = 0
        # Calls run in the caller's context: a sandbox may report them from a callback that
        # runs in another (DenoSandbox's reads the socket as data arrives).
        self._context = contextvars.copy_context()
        # The layers this execution needs, decided once: tracing only when spans are collected.
        approval = Approval(approve, request_context, can_defer=journal is not None)
        layers: list[Layer] = [] if journal is None else [journal.replay]
        layers.append(_allow_list)
        traced = tracing()
        if traced:
            layers.append(_trace(code_mode_id))
        layers += [_validation(input_hint), approval]
        if journal is not None:
            layers.append(journal.record)
        self._handle = _compose(layers, self._execute)
        self._input_hint = input_hint
        # The common call, to a tool that needs no approval in an execution without a journal
        # or tracing, takes a fused path with the same checks (see `_start_direct`).
        self._direct = journal is None and not traced
        self._contexts: dict[str, ToolContext] = {}  # per tool: the same for each direct call

    # ExecutionHost -------------------------------------------------------------------------
    def log(self, text: str) -> None:
        self.logs.append(text)

    def start_call(
        self, name: str, args_json: str | None, reply: Callable[[ToolReply], None]
    ) -> None:
        self.tool_calls += 1
        tool = self._tools.get(name)
        if self._direct and tool is not None and tool.require_approval is False:
            self._start_direct(tool, name, args_json, reply)
            return
        site = CallSite(name, args_json, tool)
        if self._journal is not None:
            self._journal.arrived(site)
        # Each call sees the caller's context variables, as a task started by the caller would.
        # Where asyncio can (3.12+), the call runs at once, up to its first await: a tool that
        # answers without waiting is answered within the loop iteration that read the call.
        task = asyncio.Task(
            self._call(site, reply),
            loop=asyncio.get_running_loop(),
            context=self._context.copy(),
            name=name,  # what `aclose` reports if the program ends without awaiting the call
            **_EAGER,
        )
        if not task.done():
            self._tasks.add(task)

    def _start_direct(
        self, tool: Tool, name: str, args_json: str | None, reply: Callable[[ToolReply], None]
    ) -> None:
        """The layers fused: the allow-list (``tool`` is in it), validation, approval (none
        needed), the run. One coroutine instead of a chain of them, and the input checked before
        any task starts: a third less of the host's work per call."""
        context = self._context.copy()
        checked = context.run(check_input, tool, name, args_json, self._input_hint)
        if isinstance(checked, ToolReply):
            reply(checked)
            return
        task = asyncio.Task(
            self._run_direct(tool, checked, reply),
            loop=asyncio.get_running_loop(),
            context=context,
            name=name,  # what `aclose` reports if the program ends without awaiting the call
            **_EAGER,
        )
        if not task.done():
            self._tasks.add(task)

    async def _run_direct(
        self, tool: Tool, validated: Any, reply: Callable[[ToolReply], None]
    ) -> None:
        try:
            context = self._contexts.get(tool.id)
            if context is None:
                context = ToolContext(self._request_context, tool.id, self._code_mode_id)
                self._contexts[tool.id] = context
            try:
                answer = ToolReply(True, value=await tool.run(validated, context))
            except Exception as exc:  # every tool failure reaches the program as an Error
                answer = failure(exc)
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)
        reply(answer)

    # DurableHost: the worker's journal goes to the execution's journal ----------------------
    def record(self, journal: Any) -> None:
        if self._journal is not None:
            self._journal.tape(journal)

    def idle(self, probe: Any, waiting: Any, journal: Any) -> None:
        if self._journal is not None:
            self._journal.idle(probe, waiting, journal)

    def attach(self, control: Callable[[dict[str, Any]], None]) -> None:
        if self._journal is not None:
            self._journal.attach(control)

    # ---------------------------------------------------------------------------------------
    async def _call(self, site: CallSite, reply: Callable[[ToolReply], None]) -> None:
        try:
            answer = await self._handle(site)
        finally:
            # Here rather than in a done callback, which would cost the loop an iteration.
            task = asyncio.current_task()
            if task is not None:
                self._tasks.discard(task)
        if answer is not None:
            reply(answer)

    async def _execute(self, site: CallSite) -> ToolReply:
        """The innermost layer: run the tool on the validated input."""
        assert site.tool is not None
        context = ToolContext(
            self._request_context,
            site.tool.id,
            self._code_mode_id,
            execution_id=site.execution_id,
            idempotency_key=site.idempotency_key,
        )
        try:
            return ToolReply(True, value=await site.tool.run(site.input, context))
        except Exception as exc:  # every tool failure reaches the program as an Error
            return failure(exc)

    async def aclose(self) -> list[str]:
        """Cancel tool calls still running and wait for them to finish cancelling. Returns the
        tool names of the calls it cancelled: after a program that returned, calls it started
        and never awaited."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        return [task.get_name() for task in tasks]


def _compose(layers: Sequence[Layer], last: Next) -> Next:
    handler = last
    for layer in reversed(layers):  # a partial is called without a frame of its own
        handler = functools.partial(cast(Any, layer), next=handler)
    return handler


# -- layers ------------------------------------------------------------------------------------
async def _allow_list(site: CallSite, next: Next) -> ToolReply | None:
    if site.tool is None:  # the runner checks too; a forged name never reaches a tool
        return ToolReply(
            False, error_message=f"external_{site.name} is not defined", error_name="ReferenceError"
        )
    return await next(site)


def _trace(code_mode_id: str) -> Layer:
    async def trace(site: CallSite, next: Next) -> ToolReply | None:
        assert site.tool is not None
        started = time.perf_counter()
        with span(
            f"codemode.tool_call {site.tool.id}",
            {"codemode.tool.id": site.tool.id, "codemode.id": code_mode_id},
        ) as current:
            outcome = "cancelled"
            try:
                answer = await next(site)
                outcome = "deferred" if answer is None else "ok" if answer.ok else "error"
                return answer
            finally:
                if current is not None:
                    current.set_attribute("codemode.tool.outcome", outcome)
                    current.set_attribute(
                        "codemode.tool.duration_ms", (time.perf_counter() - started) * 1000
                    )

    return trace


def _validation(input_hint: Callable[[str], str] | None) -> Layer:
    async def validate(site: CallSite, next: Next) -> ToolReply | None:
        assert site.tool is not None
        checked = check_input(site.tool, site.name, site.args_json, input_hint)
        if isinstance(checked, ToolReply):
            return checked
        site.input = checked
        return await next(site)

    return validate


def check_input(
    tool: Tool, name: str, args_json: str | None, input_hint: Callable[[str], str] | None
) -> Any:
    """The validated input of a call, or the ``ToolReply`` that refuses it."""
    try:
        raw = {} if args_json is None else loads(args_json)
    except ValueError:  # the runner relays the text as the program sent it: maybe forged
        return ToolReply(
            False, error_message=f"The input of tool {tool.id} is not JSON.", error_name="TypeError"
        )
    try:
        return tool.validate_input(raw)
    except ToolValidationError as exc:
        if input_hint is not None:
            # The expected input in one line, so the model can fix the call without looking
            # back at its instructions.
            exc = ToolValidationError(f"{exc}\nExpected: {input_hint(name)}")
        return failure(exc)
    except Exception as exc:
        return failure(exc)


class Approval:
    """The approval layer: a call to a tool whose ``require_approval`` applies runs only if
    ``approve`` answers True. False or a reason denies it; None defers it when the execution
    can pause (it has a store), and denies it otherwise, as it always has."""

    def __init__(
        self, approve: Approve | None, request_context: Mapping[str, Any], *, can_defer: bool
    ) -> None:
        self._approve = approve
        self._request_context = request_context
        self._can_defer = can_defer

    async def __call__(self, site: CallSite, next: Next) -> ToolReply | None:
        tool = site.tool
        assert tool is not None
        if (
            tool.require_approval is not False
            and not site.decided
            and tool.needs_approval(site.input)
        ):
            try:
                answer = await self._ask(site)
            except Exception as exc:
                return failure(exc)
            if answer is None and self._can_defer:
                return None
            if answer is not True:
                return denial(tool.id, answer if isinstance(answer, str) else None)
        return await next(site)

    async def _ask(self, site: CallSite) -> ApprovalAnswer:
        if self._approve is None:
            return None
        assert site.tool is not None
        call = ToolCall(
            site.tool.id,
            site.input,
            self._request_context,
            execution_id=site.execution_id,
            call_id=_call_id(site),
        )
        answer = self._approve(call)
        if inspect.isawaitable(answer):
            answer = await answer
        if answer is True or answer is None or (isinstance(answer, str) and answer.strip()):
            return answer
        return False  # anything else is a no


def _call_id(site: CallSite) -> str | None:
    if site.step is None or site.input_hash is None:
        return None
    return call_id(site.step, site.input_hash)


def denial(tool_id: str, reason: str | None) -> ToolReply:
    """What the program gets for a call that was not approved."""
    message = f"Tool {tool_id} requires approval and was not approved"
    if reason:
        message += f": {reason}"
    return ToolReply(False, error_message=message, error_name="ApprovalDeniedError")


def failure(exc: BaseException) -> ToolReply:
    """A Python exception as the Error the program sees."""
    return ToolReply(False, error_message=_message(exc), error_name=_error_name(exc))


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, ToolValidationError):
        return "ValidationError"
    return type(exc).__name__


def _message(exc: BaseException) -> str:
    text = str(exc)
    return text if text else type(exc).__name__
