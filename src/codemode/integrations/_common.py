"""What every framework adapter shares: checking a model's arguments, running a tool the way a
model sees it, and turning a framework's run context into ``request_context``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .._code_mode import CodeModeTool
from .._tools import Tool, ToolValidationError

__all__ = ["invalid_arguments", "request_context_from", "result_text", "run_for_model"]


def invalid_arguments(tool: Tool, arguments: Any) -> str | None:
    """The model-facing message when ``arguments`` do not fit the tool's input, else ``None``.

    Adapters send this message down the framework's retry path, so the model can fix its call.
    """
    try:
        tool.validate_input(arguments)
    except ToolValidationError as exc:
        return str(exc)
    return None


async def run_for_model(tool: Tool, arguments: Any, request_context: Mapping[str, Any]) -> Any:
    """Run ``tool`` and return what the model should see as JSON data: the spec's
    ``CodeModeToolResult`` shape for a code tool, the tool's validated result otherwise."""
    if isinstance(tool, CodeModeTool):
        result = await tool.execute(arguments, request_context=request_context)
        return result.to_json()
    return await tool.execute(arguments, request_context=request_context)


def result_text(value: Any) -> str:
    """JSON text of a result, for frameworks whose tool results are strings."""
    return json.dumps(value, ensure_ascii=False)


def request_context_from(value: Any, key: str) -> dict[str, Any]:
    """A framework's per-run value as ``request_context``: a mapping is used as is, ``None`` is
    empty, and any other object is kept whole under ``key`` so tools can still reach it."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    return {key: value}
