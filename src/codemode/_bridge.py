"""The host side of one execution: each ``external_*`` call the sandbox reports becomes a real
tool call here, with the allow-list, validation, approval, context and tracing of a direct call.

Calls run concurrently, each in a task the bridge owns; closing the bridge cancels whatever is
still running, so no tool call outlives the program that made it.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from ._tools import Approve, Tool, ToolCall, ToolContext, ToolValidationError
from ._tracing import span
from .sandboxes._base import ToolReply

__all__ = ["ApprovalDeniedError", "Bridge"]


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

    # ExecutionHost -------------------------------------------------------------------------
    def log(self, text: str) -> None:
        self.logs.append(text)

    def start_call(
        self, name: str, args_json: str | None, reply: Callable[[ToolReply], None]
    ) -> None:
        self.tool_calls += 1
        task = asyncio.create_task(self._call(name, args_json, reply))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------------------------------
    async def _call(
        self, name: str, args_json: str | None, reply: Callable[[ToolReply], None]
    ) -> None:
        tool = self._tools.get(name)
        if tool is None:  # the runner checks too; a forged name never reaches a tool
            reply(
                ToolReply(
                    False,
                    error_message=f"external_{name} is not defined",
                    error_name="ReferenceError",
                )
            )
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
        reply(answer)

    async def _run(self, name: str, tool: Tool, args_json: str | None) -> Any:
        try:
            raw = {} if args_json is None else json.loads(args_json)
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
        context = ToolContext(self._request_context, tool.id, self._code_mode_id)
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


def _error_name(exc: BaseException) -> str:
    if isinstance(exc, ToolValidationError):
        return "ValidationError"
    return type(exc).__name__


def _message(exc: BaseException) -> str:
    text = str(exc)
    return text if text else type(exc).__name__
