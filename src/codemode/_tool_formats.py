"""A tool as the JSON that model APIs take: OpenAI function tools and Anthropic tools.

Function-calling APIs pass arguments as one JSON object, so the input schema must describe an
object; a tool whose input is anything else is a programmer error, reported when converting
rather than as an opaque API error at the first request.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._tools import Tool

__all__ = ["anthropic_tool", "function_parameters", "openai_tool"]

# The names both OpenAI and Anthropic accept.
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def function_parameters(tool: Tool) -> dict[str, Any]:
    """The tool's input JSON Schema as function-calling APIs want it: an object at the root."""
    schema = copy.deepcopy(tool.input_schema)
    kind = schema.get("type")
    if kind is None:
        # An untyped schema ({} or bare "properties") still receives an object from the model.
        schema["type"] = "object"
    elif kind != "object":
        raise ValueError(
            f"tool {tool.id!r}: function-calling APIs pass arguments as a JSON object, but its "
            f"input schema has type {kind!r}; wrap the input in an object (e.g. a pydantic "
            "model with one field)"
        )
    schema.setdefault("properties", {})
    return schema


def tool_name(tool: Tool) -> str:
    """The tool's id, checked against the names model APIs accept."""
    if not _NAME.match(tool.id):
        raise ValueError(
            f"tool id {tool.id!r} is not a valid function name for model APIs "
            "(letters, digits, '_' and '-', at most 64 characters); create the tool with "
            "such an id"
        )
    return tool.id


def openai_tool(tool: Tool) -> dict[str, Any]:
    """OpenAI Chat Completions function tool. For the Responses API, use
    ``{"type": "function", **openai_tool(t)["function"]}``."""
    return {
        "type": "function",
        "function": {
            "name": tool_name(tool),
            "description": tool.description,
            "parameters": function_parameters(tool),
        },
    }


def anthropic_tool(tool: Tool) -> dict[str, Any]:
    """Anthropic Messages API tool."""
    return {
        "name": tool_name(tool),
        "description": tool.description,
        "input_schema": function_parameters(tool),
    }
