"""The host side of one execution: each ``external_*`` call the sandbox reports becomes a real
tool call here, with the allow-list, validation, approval, context and tracing of a direct call.

Calls run concurrently, each in a task the bridge owns; closing the bridge cancels whatever is
still running, so no tool call outlives the program that made it.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from ._json import loads
from ._tools import Approve, Tool, ToolCall, ToolContext, ToolValidationError
from ._tracing import span, tracing
from .sandboxes._base import ToolReply

__all__ = ["ApprovalDeniedError", "Bridge"]


# Python 3.12+ can start a task eagerly (its first step runs inside create, as the caller).
_EAGER: dict[str, Any] = {"eager_start": True} if sys.version_info >= (3, 12) else {}


class ApprovalDeniedError(Exception):
    """A tool that requires approval was not approved."""


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
    ) -> None:
        self._tools = tools
        self._input_hint = input_hint
        self._approve = approve
        self._request_context = request_context
        self._code_mode_id = code_mode_id
        self._tasks: set[asyncio.Task[None]] = set()
        self.logs: list[str] = []
        self.tool_calls = 0
        # Work decided once per execution, not once per call: the caller's context (a sandbox
        # may report calls from a callback that runs in another), whether spans are collected,
        # and each tool's ToolContext (immutable).
        self._context = contextvars.copy_context()
        self._traced = tracing()
        self._contexts: dict[str, ToolContext] = {}

    # ExecutionHost -------------------------------------------------------------------------
    def log(self, text: str) -> None:
        self.logs.append(text)

    def start_call(
        self, name: str, args_json: str | None, reply: Callable[[ToolReply], None]
    ) -> None:
        self.tool_calls += 1
        call = self._call_traced if self._traced else self._call
        # Each call sees the caller's context variables, as a task started by the caller would.
        # Where asyncio can (3.12+), the call runs at once, up to its first await: a tool that
        # answers without waiting is answered within the loop iteration that read the call.
        task = asyncio.Task(
            call(name, args_json, reply),
            loop=asyncio.get_running_loop(),
            context=self._context.copy(),
            **_EAGER,
        )
        if not task.done():
            self._tasks.add(task)

    # ---------------------------------------------------------------------------------------
    async def _call(
        self, name: str, args_json: str | None, reply: Callable[[ToolReply], None]
    ) -> None:
        tool = self._tools.get(name)
        if tool is None:  # the runner checks too; a forged name never reaches a tool
            reply(_undefined(name))
            return
        try:
            answer = ToolReply(True, value=await self._run(name, tool, args_json))
        except Exception as exc:  # every tool failure reaches the program as an Error
            answer = ToolReply(False, error_message=_message(exc), error_name=_error_name(exc))
        finally:
            self._forget_current_task()
        reply(answer)

    def _forget_current_task(self) -> None:
        # Here rather than in a done callback, which would cost the loop another iteration.
        task = asyncio.current_task()
        if task is not None:
            self._tasks.discard(task)

    async def _call_traced(
        self, name: str, args_json: str | None, reply: Callable[[ToolReply], None]
    ) -> None:
        tool = self._tools.get(name)
        if tool is None:
            reply(_undefined(name))
            return
        started = time.perf_counter()
        with span(
            f"codemode.tool_call {tool.id}",
            {"codemode.tool.id": tool.id, "codemode.id": self._code_mode_id},
        ) as current:
            outcome = "ok"
            try:
                value = await self._run(name, tool, args_json)
                answer = ToolReply(True, value=value)
            except asyncio.CancelledError:
                outcome = "cancelled"
                raise
            except Exception as exc:  # every tool failure reaches the program as an Error
                outcome = "error"
                answer = ToolReply(False, error_message=_message(exc), error_name=_error_name(exc))
            finally:
                if current is not None:
                    current.set_attribute("codemode.tool.outcome", outcome)
                    current.set_attribute(
                        "codemode.tool.duration_ms", (time.perf_counter() - started) * 1000
                    )
                self._forget_current_task()
        reply(answer)

    async def _run(self, name: str, tool: Tool, args_json: str | None) -> Any:
        try:
            raw = {} if args_json is None else loads(args_json)
        except ValueError:  # the runner relays the text as the program sent it: maybe forged
            raise TypeError(f"The input of tool {tool.id} is not JSON.") from None
        try:
            validated = tool.validate_input(raw)
        except ToolValidationError as exc:
            if self._input_hint is None:
                raise
            # The expected input in one line, so the model can fix the call without looking
            # back at its instructions.
            raise ToolValidationError(f"{exc}\nExpected: {self._input_hint(name)}") from None
        if tool.require_approval:
            call = ToolCall(tool.id, validated, self._request_context)
            if not await self._approved(call):
                raise ApprovalDeniedError(f"Tool {tool.id} requires approval and was not approved")
        context = self._contexts.get(tool.id)
        if context is None:
            context = ToolContext(self._request_context, tool.id, self._code_mode_id)
            self._contexts[tool.id] = context
        return await tool.run(validated, context)

    async def _approved(self, call: ToolCall) -> bool:
        if self._approve is None:
            return False
        answer = self._approve(call)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer is True

    async def aclose(self) -> None:
        """Cancel tool calls still running and wait for them to finish cancelling."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


def _undefined(name: str) -> ToolReply:
    return ToolReply(
        False, error_message=f"external_{name} is not defined", error_name="ReferenceError"
    )


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, ToolValidationError):
        return "ValidationError"
    return type(exc).__name__


def _message(exc: BaseException) -> str:
    text = str(exc)
    return text if text else type(exc).__name__
