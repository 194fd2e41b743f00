"""The result a code tool returns, in exactly the spec's shape."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

from ._model_output import DEFAULT_MAX_MODEL_OUTPUT_CHARS, bound_result_payload

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

    # How many characters of JSON ``to_json()`` gives a model; the code tool sets its own.
    _max_model_output_chars: int | None = PrivateAttr(default=DEFAULT_MAX_MODEL_OUTPUT_CHARS)

    def to_json(self, *, max_chars: int | bool | None = True) -> dict[str, Any]:
        """The spec's JSON shape (absent fields omitted), ready to hand back to a model.

        It is bounded for the model: past the code tool's ``max_model_output_chars`` (by
        default about 5,000 tokens), long arrays, strings and logs are cut with markers and a
        ``note`` says so (see ``_model_output``). ``max_chars`` sets another bound, or None
        for the full value; the result's attributes always keep the full value.
        """
        payload = self.model_dump(mode="json", exclude_none=True)
        limit = self._max_model_output_chars if max_chars is True else max_chars
        if limit is None or limit is False:
            return payload
        return bound_result_payload(payload, int(limit))
