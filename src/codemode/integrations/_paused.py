"""A paused program as the framework adapters hand it to an application: which execution, which
calls wait, and how a person's decisions are matched to them.

Each framework carries a pause its own way (pydantic-ai's deferred tools, a turn that ends in
the OpenAI Agents SDK, a ToolMessage in LangChain); all of them carry this, as JSON data."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from .._result import CodeModeToolResult, PendingCall
from ..stores._base import Decision

__all__ = ["PausedExecution"]


@dataclass(frozen=True)
class PausedExecution:
    """A code tool's program that waits for decisions.

    ``pending`` are the calls it waits on (``PendingCall.kind`` is ``"approval"`` or
    ``"in_doubt"``); ``message`` is what the model was told; ``tool_call_id`` is the framework's
    id of the code tool call that paused, when the framework has one."""

    execution_id: str
    pending: tuple[PendingCall, ...]
    message: str = ""
    tool_call_id: str | None = None
    tool_name: str | None = field(default=None, compare=False)

    @classmethod
    def from_result(
        cls, result: CodeModeToolResult | Mapping[str, Any] | str | None, **ids: Any
    ) -> PausedExecution | None:
        """The pause in a code tool's result (the model object, its JSON data or JSON text),
        or None when the result is anything else."""
        data: Any = result
        if isinstance(result, CodeModeToolResult):
            data = result.to_json()
        elif isinstance(result, str):
            try:
                data = json.loads(result)
            except ValueError:
                return None
        if not isinstance(data, Mapping) or data.get("status") != "paused":
            return None
        execution_id = data.get("execution_id")
        if not isinstance(execution_id, str):
            return None
        try:
            pending = tuple(PendingCall.model_validate(p) for p in data.get("pending") or ())
        except pydantic.ValidationError:
            return None
        error = data.get("error")
        message = error.get("message", "") if isinstance(error, Mapping) else ""
        return cls(execution_id, pending, message, **ids)

    def to_json(self) -> dict[str, Any]:
        """JSON data a framework can carry (and ``from_result`` reads back)."""
        return {
            "status": "paused",
            "execution_id": self.execution_id,
            "pending": [call.model_dump(mode="json") for call in self.pending],
            "error": {"name": "ExecutionPaused", "message": self.message},
        }

    def decisions(
        self, decisions: Mapping[str, Decision], *, otherwise: Decision | None = None
    ) -> dict[str, Decision]:
        """The decisions that concern this execution: those of ``decisions`` whose key is one
        of its pending ``call_id``s, and ``otherwise`` for its other calls awaiting approval
        (calls in doubt are decided only by name: running one again may repeat its effect).
        Calls left out wait again when the execution resumes."""
        chosen: dict[str, Decision] = {}
        for call in self.pending:
            if call.call_id in decisions:
                chosen[call.call_id] = decisions[call.call_id]
            elif otherwise is not None and call.kind == "approval":
                chosen[call.call_id] = otherwise
        return chosen
