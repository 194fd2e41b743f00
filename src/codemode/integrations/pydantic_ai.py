"""codemode tools as pydantic-ai tools (``pip install 'codemode[pydantic-ai]'``).

```python
tool, instructions = create_code_mode(tools=tools, sandbox=DenoSandbox())
agent = Agent(model, instructions=["You are a helpful shopping assistant.", instructions],
              tools=[to_pydantic_ai(tool)])
```

``request_context`` comes from the run's deps (``agent.run(..., deps=...)``): a mapping is the
request context itself, ``None`` is empty, and any other object is passed whole as
``{"deps": deps}``. Pass ``request_context=`` to choose differently.

A code tool with a store whose program pauses for approvals ends the run with pydantic-ai's
own ``DeferredToolRequests`` (the code tool call is in ``approvals``, the paused execution in
its ``metadata``); the next run, given ``approval_results(requests, decisions)``, resumes it:

```python
agent = Agent(model, tools=[to_pydantic_ai(tool)], output_type=[str, DeferredToolRequests])
result = await agent.run(question)
if isinstance(result.output, DeferredToolRequests):
    for paused in paused_executions(result.output).values():
        ...  # show paused.pending to a person, collect {call_id: True | False | "reason"}
    result = await agent.run(message_history=result.all_messages(),
                             deferred_tool_results=approval_results(result.output, decisions))
```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic_ai import (
    ApprovalRequired,
    DeferredToolRequests,
    DeferredToolResults,
    ModelRetry,
    RunContext,
)
from pydantic_ai import Tool as PydanticAITool
from pydantic_ai.toolsets import FunctionToolset

from .._code_mode import CodeModeTool
from .._tool_formats import function_parameters, tool_name
from .._tools import Tool
from ..stores._base import Decision
from ._common import invalid_arguments, request_context_from, run_for_model
from ._paused import PausedExecution

__all__ = [
    "PausedExecution",
    "approval_results",
    "paused_executions",
    "to_pydantic_ai",
    "to_pydantic_ai_toolset",
]

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
    ``require_approval=True`` waits for pydantic-ai's approval (``DeferredToolRequests``), and so
    does a code tool whose program paused for approvals (see the module's docstring).
    """
    context_of = request_context or _deps_as_request_context
    # The execution each code tool call paused in, for an approval given in this process
    # without approval_results' metadata (``approvals={tool_call_id: True}``).
    paused_in: dict[str, str] = {}

    async def call(ctx: RunContext[Any], /, **arguments: Any) -> Any:
        problem = invalid_arguments(tool, arguments)
        if problem is not None:
            raise ModelRetry(problem)
        if isinstance(tool, CodeModeTool):
            return await _run_code_tool(tool, ctx, arguments, context_of(ctx), paused_in)
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


async def _run_code_tool(
    tool: CodeModeTool,
    ctx: RunContext[Any],
    arguments: Mapping[str, Any],
    request_context: Mapping[str, Any],
    paused_in: dict[str, str],
) -> Any:
    """Run the program, or resume the execution this call paused in once it is approved; a
    pause becomes ``ApprovalRequired`` carrying the execution."""
    resume = await _approved_resume(tool, ctx, paused_in)
    if resume is None:
        result = await tool.execute(arguments, request_context=request_context)
    else:
        result = await tool.resume(resume[0], resume[1], request_context=request_context)
    paused = PausedExecution.from_result(result)
    if paused is None:
        return result.to_json()
    if ctx.tool_call_id is not None:
        paused_in[ctx.tool_call_id] = paused.execution_id
    raise ApprovalRequired(metadata=paused.to_json())


async def _approved_resume(
    tool: CodeModeTool, ctx: RunContext[Any], paused_in: Mapping[str, str]
) -> tuple[str, dict[str, Decision]] | None:
    """The execution to resume and the decisions, when this call was approved after a pause.

    The approval's metadata (``approval_results``) names the execution and carries per-call
    decisions. An approval without it resumes the execution this call paused in (known in
    this process only) and approves each call that waits for approval (not one in doubt)."""
    if not ctx.tool_call_approved:
        return None
    given = getattr(ctx, "tool_call_metadata", None)  # pydantic-ai >= 1.x carries it
    metadata = given if isinstance(given, Mapping) else {}
    execution_id = metadata.get("execution_id")
    if not isinstance(execution_id, str):
        execution_id = paused_in.get(ctx.tool_call_id or "")
    if execution_id is None:
        return None  # approved before it ran (an approval-required toolset): just run it
    decisions = metadata.get("decisions")
    if isinstance(decisions, Mapping):
        return execution_id, dict(decisions)
    everything: dict[str, Decision] = {}
    state = await tool.store.get(execution_id) if tool.store is not None else None
    if state is not None:
        for waiting in state.waiting():
            if waiting.state == "pending" and waiting.approved is None:
                everything[waiting.call_id] = True
    return execution_id, everything


def paused_executions(requests: DeferredToolRequests) -> dict[str, PausedExecution]:
    """The code tool calls among ``requests.approvals`` whose programs paused, by tool call id:
    what an approval UI shows (each ``PausedExecution.pending`` call, its tool and input)."""
    found: dict[str, PausedExecution] = {}
    for part in requests.approvals:
        paused = PausedExecution.from_result(
            requests.metadata.get(part.tool_call_id),
            tool_call_id=part.tool_call_id,
            tool_name=part.tool_name,
        )
        if paused is not None:
            found[part.tool_call_id] = paused
    return found


def approval_results(
    requests: DeferredToolRequests,
    decisions: Mapping[str, Decision],
    *,
    otherwise: Decision | None = None,
) -> DeferredToolResults:
    """``DeferredToolResults`` that resume every paused program in ``requests`` with
    ``decisions`` (``{call_id: True | False | "reason"}``; ``otherwise`` for the calls awaiting
    approval that are not named, None to leave them waiting). Each code tool call is approved
    with its execution and its decisions as metadata, so the resume may run in any process.
    Other deferred calls are left for you: ``results.update(...)`` with your own."""
    results = DeferredToolResults()
    for tool_call_id, paused in paused_executions(requests).items():
        results.approvals[tool_call_id] = True
        results.metadata[tool_call_id] = {
            "execution_id": paused.execution_id,
            "decisions": paused.decisions(decisions, otherwise=otherwise),
        }
    return results
