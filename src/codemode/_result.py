"""The result a code tool returns, in exactly the spec's shape.

``result`` is the program's value. ``null`` is a value (the program returned ``null``, Python's
``None``) and is kept; a program that returned nothing (``undefined``) has no ``result`` at all.
The model-facing JSON (``to_json()``, MCP, the adapters) keeps that difference, and the JSON
Schema that MCP clients see describes each field in plain sentences.

An execution with a store may also pause: then ``status`` is ``"paused"`` and
``execution_id`` and ``pending`` say what waits. Only a paused result shows ``status`` and
``pending``, so results of executions without a store keep the spec's exact shape.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from ._model_output import DEFAULT_MAX_MODEL_OUTPUT_CHARS, bound_result_payload

__all__ = ["CodeModeError", "CodeModeToolResult", "ExecutionStatus", "PendingCall", "PendingKind"]

ExecutionStatus = Literal["completed", "failed", "paused"]
PendingKind = Literal["approval", "in_doubt"]


def _no_default(schema: dict[str, Any]) -> None:
    """An optional field that is absent rather than null: no ``"default": null`` in its schema."""
    schema.pop("default", None)


def _any_json_value(schema: dict[str, Any]) -> None:
    """Say "any JSON value" in the schema's own terms rather than with an empty schema, which
    clients' linters read as a field nobody described."""
    _no_default(schema)
    kinds = ["object", "array", "string", "number", "boolean", "null"]
    schema["anyOf"] = [{"type": kind} for kind in kinds]


class CodeModeError(BaseModel):
    """Why a program failed: the message and name the model should act on, and the line in its
    own program when one is known (1 is the first line of the submitted code)."""

    model_config = ConfigDict(
        title="CodeModeError",
        json_schema_extra={"description": "Why the program failed."},
    )

    message: str = Field(description="What went wrong and what to change.")
    name: str | SkipJsonSchema[None] = Field(
        default=None,
        description="The error's name, such as TypeError, ValidationError or TimeoutError.",
        json_schema_extra=_no_default,
    )
    line: int | SkipJsonSchema[None] = Field(
        default=None,
        description="The line of the submitted program where it failed; 1 is the first line.",
        json_schema_extra=_no_default,
    )


class PendingCall(BaseModel):
    """A call a paused execution waits on. ``kind`` is ``"approval"`` (a person must approve or
    deny it) or ``"in_doubt"`` (it was running when its host stopped: an operator decides
    whether to run it again). ``call_id`` is the key for ``resume(decisions=...)``; it names
    the call's step and input, so a decision can never apply to another call."""

    model_config = ConfigDict(
        title="PendingCall",
        json_schema_extra={"description": "A tool call that waits for a person's decision."},
    )

    call_id: str = Field(description="The key a decision for this call is given under.")
    tool_id: str = Field(description="The tool the program called.")
    input: Any = Field(
        default=None,
        description="The input the program passed.",
        json_schema_extra=_any_json_value,
    )
    line: int | SkipJsonSchema[None] = Field(
        default=None,
        description="The line of the program that made the call.",
        json_schema_extra=_no_default,
    )
    kind: PendingKind = Field(
        default="approval",
        description=(
            "approval: the call waits for a person to approve or deny it; in_doubt: it was "
            "running when its host stopped, and a person decides whether to run it again."
        ),
    )


class CodeModeToolResult(BaseModel):
    """What one execution produced. ``model_dump(exclude_none=True)`` gives the spec's
    ``CodeModeToolResult``: ``result`` is absent when the program returned ``undefined`` and
    ``None`` when it returned ``null``."""

    model_config = ConfigDict(
        title="CodeModeToolResult",
        json_schema_extra={
            "description": "What the program produced: its result and logs, or why it failed."
        },
    )

    success: bool = Field(description="Whether the program ran to the end without an error.")
    status: ExecutionStatus = Field(
        default="completed",
        description=(
            "paused when tool calls wait for a person's decision (then the program has not "
            "finished: do not run it again); shown only when paused."
        ),
        exclude_if=lambda status: status != "paused",
        json_schema_extra=_no_default,
    )
    result: Any = Field(
        default=None,
        description=(
            "The value the program returned: any JSON value, null included. Absent when the "
            "program returned nothing."
        ),
        json_schema_extra=_any_json_value,
    )
    logs: list[str] = Field(
        default_factory=list, description="Lines the program printed, in order."
    )
    error: CodeModeError | SkipJsonSchema[None] = Field(
        default=None,
        description="Why the program failed; present only when success is false.",
        json_schema_extra=_no_default,
    )
    execution_id: str | SkipJsonSchema[None] = Field(
        default=None,
        description="The durable execution this result belongs to (with a store only).",
        json_schema_extra=_no_default,
    )
    pending: list[PendingCall] = Field(
        default_factory=list,
        description="The tool calls a paused execution waits on; shown only when paused.",
        exclude_if=lambda calls: not calls,
    )

    @model_validator(mode="after")
    def _derive_status(self) -> CodeModeToolResult:
        if "status" not in self.model_fields_set:
            self.status = "completed" if self.success else "failed"
        return self

    # No return annotation: pydantic would take it for the JSON Schema of what this serialises
    # to, and MCP clients would see ``{}`` instead of the fields.
    @model_serializer(mode="wrap")
    def _keep_null_result(  # type: ignore[no-untyped-def]
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ):
        data = handler(self)
        # exclude_none drops None everywhere; a null the program returned is a value to keep.
        if (
            info.exclude_none
            and isinstance(data, dict)
            and "result" not in data
            and "result" in self.model_fields_set
            and self.result is None
            and not _excluded(info, "result")
        ):
            data = {"success": data.pop("success"), "result": None, **data}
        return data

    @property
    def has_result(self) -> bool:
        """Whether the program returned a value (``null`` included) rather than nothing."""
        return "result" in self.model_fields_set

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


def _excluded(info: SerializationInfo, field: str) -> bool:
    exclude = info.exclude
    if isinstance(exclude, dict | set) and field in exclude:
        return True
    include = info.include
    return isinstance(include, dict | set) and field not in include
