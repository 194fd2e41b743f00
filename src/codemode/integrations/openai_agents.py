"""codemode tools as OpenAI Agents SDK tools (``pip install 'codemode[openai-agents]'``).

```python
tool, instructions = create_code_mode(tools=tools, sandbox=DenoSandbox())
agent = Agent(name="shop-assistant",
              instructions=join_instructions("You are a helpful shopping assistant.", instructions),
              tools=[to_openai_agents(tool)])
```

``request_context`` comes from the run's context (``Runner.run(..., context=...)``): a mapping
is the request context itself, ``None`` is empty, and any other object is passed whole as
``{"context": context}``. Pass ``request_context=`` to choose differently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from agents import FunctionTool, RunContextWrapper

from .._tool_formats import function_parameters, tool_name
from .._tools import Tool
from ._common import invalid_arguments, request_context_from, result_text, run_for_model

__all__ = ["join_instructions", "to_openai_agents"]

RequestContextFromRun = Callable[[RunContextWrapper[Any]], Mapping[str, Any]]


def _context_as_request_context(ctx: RunContextWrapper[Any]) -> Mapping[str, Any]:
    return request_context_from(ctx.context, "context")


def to_openai_agents(
    tool: Tool,
    *,
    request_context: RequestContextFromRun | None = None,
    strict_json_schema: bool = False,
) -> FunctionTool:
    """An Agents SDK ``FunctionTool`` that runs ``tool``.

    The model gets the result as JSON text (the spec's ``CodeModeToolResult`` for the code tool).
    Arguments that are not JSON or fail the tool's input schema come back to the model as the
    tool's output, so it can fix its call; errors raised by a tool itself fail the run, per the
    SDK's ``FunctionTool`` contract. A tool created with ``require_approval=True`` interrupts the
    run for the SDK's approval step. ``strict_json_schema`` is off because the host validates
    every call anyway and strict mode rejects schemas with optional fields or open objects.
    """
    context_of = request_context or _context_as_request_context

    async def on_invoke_tool(ctx: RunContextWrapper[Any], arguments_json: str) -> str:
        try:
            arguments = json.loads(arguments_json) if arguments_json.strip() else {}
        except json.JSONDecodeError as exc:
            return f"Tool input for {tool.id} is not valid JSON ({exc}); send a JSON object."
        problem = invalid_arguments(tool, arguments)
        if problem is not None:
            return problem
        return result_text(await run_for_model(tool, arguments, context_of(ctx)))

    return FunctionTool(
        name=tool_name(tool),
        description=tool.description,
        params_json_schema=function_parameters(tool),
        on_invoke_tool=on_invoke_tool,
        strict_json_schema=strict_json_schema,
        needs_approval=tool.may_require_approval,
    )


def join_instructions(*parts: str) -> str:
    """One instructions string from several (the SDK's ``Agent(instructions=...)`` takes one),
    e.g. your own prompt and each code tool's instructions."""
    return "\n\n".join(part.strip() for part in parts if part.strip())
