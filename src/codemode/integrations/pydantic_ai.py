"""codemode tools as pydantic-ai tools (``pip install 'codemode[pydantic-ai]'``).

```python
tool, instructions = create_code_mode(tools=tools, sandbox=DenoSandbox())
agent = Agent(model, instructions=["You are a helpful shopping assistant.", instructions],
              tools=[to_pydantic_ai(tool)])
```

``request_context`` comes from the run's deps (``agent.run(..., deps=...)``): a mapping is the
request context itself, ``None`` is empty, and any other object is passed whole as
``{"deps": deps}``. Pass ``request_context=`` to choose differently.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic_ai import ModelRetry, RunContext
from pydantic_ai import Tool as PydanticAITool
from pydantic_ai.toolsets import FunctionToolset

from .._code_mode import CodeModeTool
from .._tool_formats import function_parameters, tool_name
from .._tools import Tool
from ._common import invalid_arguments, request_context_from, run_for_model

__all__ = ["to_pydantic_ai", "to_pydantic_ai_toolset"]

RequestContextFromRun = Callable[[RunContext[Any]], Mapping[str, Any]]


def _deps_as_request_context(ctx: RunContext[Any]) -> Mapping[str, Any]:
    return request_context_from(ctx.deps, "deps")


def to_pydantic_ai(
    tool: Tool, *, request_context: RequestContextFromRun | None = None
) -> PydanticAITool[Any]:
    """A pydantic-ai ``Tool`` that runs ``tool``.

    Arguments that fail the tool's input schema raise ``ModelRetry``, so the model sees what to
    fix; the code tool returns the spec's ``CodeModeToolResult`` JSON; errors raised by a tool
    itself propagate, as they do for pydantic-ai's own tools. A tool created with
    ``require_approval=True`` waits for pydantic-ai's approval (``DeferredToolRequests``).
    """
    context_of = request_context or _deps_as_request_context

    async def call(ctx: RunContext[Any], /, **arguments: Any) -> Any:
        problem = invalid_arguments(tool, arguments)
        if problem is not None:
            raise ModelRetry(problem)
        return await run_for_model(tool, arguments, context_of(ctx))

    converted = PydanticAITool.from_schema(
        call,
        name=tool_name(tool),
        description=tool.description,
        json_schema=function_parameters(tool),
        takes_ctx=True,
    )
    # A tool that needs approval gets pydantic-ai's own approval step (DeferredToolRequests).
    converted.requires_approval = tool.may_require_approval
    return converted


def to_pydantic_ai_toolset(
    *tools: Tool, request_context: RequestContextFromRun | None = None
) -> FunctionToolset[Any]:
    """A toolset of ``tools`` that also carries each code tool's instructions, so one
    ``Agent(model, toolsets=[to_pydantic_ai_toolset(tool)])`` gives the model both."""
    return FunctionToolset(
        [to_pydantic_ai(t, request_context=request_context) for t in tools],
        instructions=[t.instructions for t in tools if isinstance(t, CodeModeTool)],
    )
