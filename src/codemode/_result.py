"""The result a code tool returns, in exactly the spec's shape (plus the paused state)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

__all__ = ["CodeModeError", "CodeModeToolResult", "ExecutionStatus", "PendingCall", "PendingKind"]

ExecutionStatus = Literal["completed", "failed", "paused"]
PendingKind = Literal["approval", "in_doubt"]


class CodeModeError(BaseModel):
    """Why a program failed: the message and name the model should act on, and the line in its
    own program when one is known (1 is the first line of the submitted code)."""

    message: str
    name: str | None = None
    line: int | None = None


class PendingCall(BaseModel):
    """A call a paused execution waits on. ``kind`` is ``"approval"`` (a person must approve or
    deny it) or ``"in_doubt"`` (it was running when its host stopped: an operator decides
    whether to run it again). ``call_id`` is the key for ``resume(decisions=...)``; it names
    the call's step and input, so a decision can never apply to another call."""

    call_id: str
    tool_id: str
    input: Any = None
    line: int | None = None
    kind: PendingKind = "approval"


class CodeModeToolResult(BaseModel):
    """What one execution produced. ``model_dump(exclude_none=True)`` gives the spec's
    ``CodeModeToolResult``: ``result`` is absent when the program returned ``undefined``.

    ``status`` is ``"completed"`` or ``"failed"`` (derived from ``success``), or ``"paused"``
    when calls wait for a decision: then ``execution_id`` and ``pending`` say what waits. Only
    a paused result shows ``status`` and ``pending`` in its JSON, so results of executions
    without a store keep the spec's exact shape.
    """

    success: bool
    status: ExecutionStatus = Field(default="completed", exclude_if=lambda s: s != "paused")
    result: Any = None
    logs: list[str] = Field(default_factory=list)
    error: CodeModeError | None = None
    execution_id: str | None = None
    pending: list[PendingCall] = Field(default_factory=list, exclude_if=lambda calls: not calls)

    @model_validator(mode="after")
    def _derive_status(self) -> CodeModeToolResult:
        if "status" not in self.model_fields_set:
            self.status = "completed" if self.success else "failed"
        return self

    def to_json(self) -> dict[str, Any]:
        """The spec's JSON shape (absent fields omitted), ready to hand back to a model."""
        return self.model_dump(mode="json", exclude_none=True)
