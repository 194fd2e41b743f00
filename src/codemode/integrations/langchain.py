"""codemode tools as LangChain tools (``pip install 'codemode[langchain]'``).

```python
tool, instructions = create_code_mode(tools=tools, sandbox=DenoSandbox())
lc_tool = to_langchain(tool)
llm = chat_model.bind_tools([lc_tool])
messages = [system_message("You are a helpful shopping assistant.", instructions), HumanMessage(q)]
```

``request_context`` comes from the run's config: ``config["configurable"]["request_context"]``
(``lc_tool.ainvoke(call, config={"configurable": {"request_context": {...}}})``). Pass
``request_context=`` to choose differently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.messages import SystemMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool, ToolException

from .._code_mode import _background_loop
from .._tool_formats import function_parameters, tool_name
from .._tools import Tool
from ._common import invalid_arguments, result_text, run_for_model

__all__ = ["system_message", "to_langchain"]

RequestContextFromConfig = Callable[[RunnableConfig], Mapping[str, Any]]


def _configurable_request_context(config: RunnableConfig) -> Mapping[str, Any]:
    value = (config.get("configurable") or {}).get("request_context")
    return dict(value) if isinstance(value, Mapping) else {}


def to_langchain(
    tool: Tool, *, request_context: RequestContextFromConfig | None = None
) -> StructuredTool:
    """A LangChain ``StructuredTool`` that runs ``tool``.

    A tool call gets a ``ToolMessage`` whose content is the result as JSON text (the spec's
    ``CodeModeToolResult`` for the code tool) and whose ``artifact`` is the same value as data.
    Arguments that fail the tool's input schema raise ``ToolException``, which the tool hands
    back to the model as an error message; errors raised by a tool itself propagate.
    Both ``invoke`` and ``ainvoke`` work; ``invoke`` runs on codemode's background event loop.
    A tool created with ``require_approval=True`` is refused: LangChain has no approval step.
    """
    if tool.may_require_approval:
        raise ValueError(
            f"tool {tool.id!r} requires approval, but a LangChain tool has no approval step and "
            "would run unapproved; expose it through a code tool "
            "(create_code_mode(tools=[...], approve=...)) instead"
        )
    context_of = request_context or _configurable_request_context

    async def run(config: RunnableConfig, arguments: dict[str, Any]) -> tuple[str, Any]:
        problem = invalid_arguments(tool, arguments)
        if problem is not None:
            raise ToolException(problem)
        value = await run_for_model(tool, arguments, context_of(config))
        return result_text(value), value

    # LangChain passes the run's config to a parameter annotated ``RunnableConfig``; the name
    # is unusual so that it does not collide with a tool argument.
    async def coroutine(codemode_runnable_config: RunnableConfig, **arguments: Any) -> Any:
        return await run(codemode_runnable_config, arguments)

    def func(codemode_runnable_config: RunnableConfig, **arguments: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return _background_loop().run(run(codemode_runnable_config, arguments))
        raise RuntimeError(
            f"{tool.id}.invoke() was called inside a running event loop; use ainvoke()"
        )

    return StructuredTool(
        name=tool_name(tool),
        description=tool.description,
        args_schema=function_parameters(tool),
        func=func,
        coroutine=coroutine,
        response_format="content_and_artifact",
        handle_tool_error=True,
    )


def system_message(*parts: str) -> SystemMessage:
    """One system message from several parts, e.g. your own prompt and each code tool's
    instructions."""
    return SystemMessage("\n\n".join(part.strip() for part in parts if part.strip()))
