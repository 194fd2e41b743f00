"""The result a code tool returns, in exactly the spec's shape."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["CodeModeError", "CodeModeToolResult"]


class CodeModeError(BaseModel):
    """Why a program failed: the message and name the model should act on, and the line in its
    own program when one is known (1 is the first line of the submitted code)."""

    message: str
    name: str | None = None
    line: int | None = None


class CodeModeToolResult(BaseModel):
    """What one execution produced. ``model_dump(exclude_none=True)`` gives the spec's
    ``CodeModeToolResult``: ``result`` is absent when the program returned ``undefined``."""

    success: bool
    result: Any = None
    logs: list[str] = Field(default_factory=list)
    error: CodeModeError | None = None

    def to_json(self) -> dict[str, Any]:
        """The spec's JSON shape (absent fields omitted), ready to hand back to a model."""
        return self.model_dump(mode="json", exclude_none=True)
