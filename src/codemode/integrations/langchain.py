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

A code tool with a store whose program pauses for approvals returns the paused result as its
``ToolMessage`` (the model reads that it waits for a person). ``paused_executions(messages)``
finds what waits in a conversation; ``resume_messages(tool, messages, decisions)`` resumes
each paused program and returns the conversation with each paused ``ToolMessage`` replaced by
the final result, ready for the next model turn:

```python
messages.append(await lc_tool.ainvoke(call))          # paused
...                                                   # a person decides, maybe days later
messages = await resume_messages(tool, messages, {call_id: True, other_id: "no"})
reply = await llm.ainvoke(messages)
```
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import StructuredTool, ToolException

from .._code_mode import CodeModeTool, _background_loop
from .._tool_formats import function_parameters, tool_name
from .._tools import Tool
from ..stores._base import Decision
from ._common import invalid_arguments, result_text, run_for_model
from ._paused import PausedExecution

__all__ = [
    "PausedExecution",
    "paused_executions",
    "resume_messages",
    "resume_messages_sync",
    "system_message",
    "to_langchain",
]

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


def paused_executions(messages: Sequence[BaseMessage]) -> list[PausedExecution]:
    """The code tool results in ``messages`` whose programs are paused, in order
    (``tool_call_id`` and ``tool_name`` are the ``ToolMessage``'s)."""
    found = []
    for message in messages:
        if isinstance(message, ToolMessage):
            paused = PausedExecution.from_result(
                message.artifact if isinstance(message.artifact, Mapping) else message.text,
                tool_call_id=message.tool_call_id,
                tool_name=message.name,
            )
            if paused is not None:
                found.append(paused)
    return found


async def resume_messages(
    tool: CodeModeTool,
    messages: Sequence[BaseMessage],
    decisions: Mapping[str, Decision],
    *,
    otherwise: Decision | None = None,
    request_context: Mapping[str, Any] | None = None,
) -> list[BaseMessage]:
    """Resume each program of ``tool`` paused in ``messages`` with ``decisions`` (``{call_id:
    True | False | "reason"}``; ``otherwise`` for calls awaiting approval not named, None to
    leave them waiting) and return the conversation with each paused ``ToolMessage`` replaced
    by one holding the final result (the same ``tool_call_id``), or the paused result again
    when calls still wait."""
    if not isinstance(tool, CodeModeTool):
        raise TypeError(f"resume_messages needs the code tool, got {type(tool).__name__}")
    name = tool_name(tool)
    resumed: list[BaseMessage] = list(messages)
    for index, message in enumerate(resumed):
        if not isinstance(message, ToolMessage) or message.name != name:
            continue
        found = paused_executions([message])
        if not found:
            continue
        paused = found[0]
        result = await tool.resume(
            paused.execution_id,
            paused.decisions(decisions, otherwise=otherwise),
            request_context=request_context,
        )
        value = result.to_json()
        resumed[index] = ToolMessage(
            content=result_text(value),
            artifact=value,
            tool_call_id=message.tool_call_id,
            name=message.name,
        )
    return resumed


def resume_messages_sync(
    tool: CodeModeTool,
    messages: Sequence[BaseMessage],
    decisions: Mapping[str, Decision],
    *,
    otherwise: Decision | None = None,
    request_context: Mapping[str, Any] | None = None,
) -> list[BaseMessage]:
    """``resume_messages`` for callers without an event loop (codemode's background loop, the
    one ``invoke`` runs on)."""
    return _background_loop().run(
        resume_messages(
            tool, messages, decisions, otherwise=otherwise, request_context=request_context
        )
    )
