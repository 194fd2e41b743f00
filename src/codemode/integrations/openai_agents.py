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

A code tool with a store whose program pauses for approvals returns the paused result (the
model reads that it waits for a person). The SDK's own approval step runs before a tool does,
and a pause is only known once the program ran, so the turn is ended instead:
``tool_use_behavior=stop_when_paused`` makes the paused result the run's ``final_output``
(its JSON text) without asking the model. ``paused_executions(result)`` lists what waits;
``resume_run(result, decisions)`` resumes each paused program and continues the run as if the
call had returned the final result:

```python
agent = Agent(name="shop", instructions=..., tools=[to_openai_agents(tool)],
              tool_use_behavior=stop_when_paused)
result = await Runner.run(agent, question)
while paused := paused_executions(result):
    decisions = ask_a_person(paused)         # {call_id: True | False | "reason"}
    result = await resume_run(result, decisions)
```
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from agents import (
    Agent,
    FunctionTool,
    FunctionToolResult,
    RunContextWrapper,
    Runner,
    RunResult,
    ToolsToFinalOutputResult,
)

from .._code_mode import CodeModeTool
from .._tool_formats import function_parameters, tool_name
from .._tools import Tool
from ..stores._base import Decision
from ._common import invalid_arguments, request_context_from, result_text, run_for_model
from ._paused import PausedExecution

__all__ = [
    "PausedExecution",
    "join_instructions",
    "paused_executions",
    "resume_run",
    "stop_when_paused",
    "to_openai_agents",
]

# The code tool behind a FunctionTool, and how its request context is made, for resume_run.
_CODE_TOOL = "_codemode_code_tool"

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

    function_tool = FunctionTool(
        name=tool_name(tool),
        description=tool.description,
        params_json_schema=function_parameters(tool),
        on_invoke_tool=on_invoke_tool,
        strict_json_schema=strict_json_schema,
        needs_approval=tool.may_require_approval,
    )
    if isinstance(tool, CodeModeTool):
        setattr(function_tool, _CODE_TOOL, (tool, context_of))
    return function_tool


def stop_when_paused(
    context: RunContextWrapper[Any], results: list[FunctionToolResult]
) -> ToolsToFinalOutputResult:
    """A ``tool_use_behavior`` that ends the turn when a code tool's program paused, with the
    paused result's JSON text as ``final_output``; otherwise the model runs again, as by
    default."""
    for result in results:
        if PausedExecution.from_result(result.output) is not None:
            return ToolsToFinalOutputResult(is_final_output=True, final_output=result.output)
    return ToolsToFinalOutputResult(is_final_output=False, final_output=None)


def paused_executions(result: RunResult) -> list[PausedExecution]:
    """The code tool calls in ``result``'s conversation whose programs are paused (and not
    resumed since), in the order they were made; ``tool_call_id`` is the SDK's ``call_id``."""
    every: list[Any] = result.to_input_list()  # TypedDicts of many shapes: read as dicts
    items: list[dict[str, Any]] = [item for item in every if isinstance(item, dict)]
    names = {i.get("call_id"): i.get("name") for i in items if i.get("type") == "function_call"}
    found = []
    for item in items:
        if item.get("type") != "function_call_output":
            continue
        call_id = item.get("call_id")
        paused = PausedExecution.from_result(
            item.get("output"), tool_call_id=call_id, tool_name=names.get(call_id)
        )
        if paused is not None:
            found.append(paused)
    return found


async def resume_run(
    result: RunResult,
    decisions: Mapping[str, Decision],
    *,
    otherwise: Decision | None = None,
    agent: Agent[Any] | None = None,
    context: Any = None,
    **run_options: Any,
) -> RunResult:
    """Resume every program that paused in ``result``'s run with ``decisions`` (``{call_id:
    True | False | "reason"}``; ``otherwise`` for calls awaiting approval not named, None to
    leave them waiting), put each final result where the paused one was, and run ``agent``
    (default: the run's last agent) on, with the run's context unless ``context`` is given.
    ``run_options`` go to ``Runner.run`` (``run_config``, ``max_turns``, ...). A program
    that pauses again is in the new run paused as before (the model reads that it still
    waits), so ``paused_executions`` finds it there. Runs kept in an SDK ``session`` cannot
    be resumed this way (their paused output is already stored)."""
    agent = agent or result.last_agent
    if context is None:
        context = result.context_wrapper.context
    items: list[Any] = list(result.to_input_list())
    for paused in paused_executions(result):
        code_tool, context_of = _code_tool_named(agent, paused.tool_name)
        resumed = await code_tool.resume(
            paused.execution_id,
            paused.decisions(decisions, otherwise=otherwise),
            request_context=context_of(RunContextWrapper(context=context)),
        )
        for index, item in enumerate(items):
            if (
                isinstance(item, dict)
                and item.get("type") == "function_call_output"
                and item.get("call_id") == paused.tool_call_id
            ):
                items[index] = {**item, "output": result_text(resumed.to_json())}
    return await Runner.run(agent, items, context=context, **run_options)


def _code_tool_named(
    agent: Agent[Any], name: str | None
) -> tuple[CodeModeTool, RequestContextFromRun]:
    for candidate in agent.tools:
        found = getattr(candidate, _CODE_TOOL, None)
        if found is not None and getattr(candidate, "name", None) == name:
            return found  # type: ignore[no-any-return]
    raise ValueError(
        f"agent {agent.name!r} has no code tool named {name!r} made by to_openai_agents(); "
        "pass the agent whose tool paused (agent=...)"
    )


def join_instructions(*parts: str) -> str:
    """One instructions string from several (the SDK's ``Agent(instructions=...)`` takes one),
    e.g. your own prompt and each code tool's instructions."""
    return "\n\n".join(part.strip() for part in parts if part.strip())
