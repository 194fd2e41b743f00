"""Approvals through the MCP gateway: asked inline when the client can elicit, else a pause and
a ``resume_execution`` tool.

When a program's call needs approval and the tool's own ``approve`` policy does not decide it,
a client that supports elicitation (form mode) is asked there and then, on the request that
runs the program: it shows the tool and its input, and the person approves or denies. The
program continues without pausing. A client that cannot elicit (or a person who dismisses the
question, or does not answer before the program would time out) leaves the call deferred: with
a store the execution pauses and the client resumes it with ``resume_execution``; without one
the call is denied, as it always was.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import json
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import mcp.types as mcp_types
import pydantic
import pydantic_core
from mcp.server.session import ServerSession

from ..._code_mode import CodeModeTool
from ..._result import CodeModeError, CodeModeToolResult
from ..._tools import ApprovalAnswer, Approve, ToolCall
from ._relay import current_request

__all__ = [
    "RESUME_TOOL",
    "approvals_until",
    "can_elicit",
    "resume_execution",
    "resume_tool",
    "with_inline_approvals",
]

_log = logging.getLogger("codemode")

RESUME_TOOL = "resume_execution"

# When an inline question must have its answer: before the program's own timeout, so that an
# unanswered call can still pause (or be denied) rather than fail the whole execution.
_deadline: ContextVar[float | None] = ContextVar("codemode_approval_deadline", default=None)


@contextmanager
def approvals_until(timeout_ms: int) -> Iterator[None]:
    """While a program of the request runs: inline questions end before its timeout (with a
    margin of a tenth of it, at least a second, for the program to pause)."""
    seconds = timeout_ms / 1000
    margin = max(1.0, seconds / 10)
    token = _deadline.set(time.monotonic() + max(0.0, seconds - margin))
    try:
        yield
    finally:
        _deadline.reset(token)


def can_elicit(session: ServerSession) -> bool:
    """Whether the client declared form elicitation (an empty ``elicitation`` means form)."""
    capabilities = session.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    if elicitation is None:
        return False
    return elicitation.form is not None or elicitation.url is None


def with_inline_approvals(tool: CodeModeTool) -> CodeModeTool:
    """The code tool as the gateway serves it: the same tool (a shallow copy, sharing sandbox
    and store) whose approvals the tool's own policy answers first, then the client's user."""
    served = copy.copy(tool)
    served.approve = _inline(tool.approve, tool.id)
    return served


def _inline(policy: Approve | None, code_mode_id: str) -> Approve:
    async def approve(call: ToolCall) -> ApprovalAnswer:
        if policy is not None:
            answer = policy(call)
            if inspect.isawaitable(answer):
                answer = await answer
            if answer is not None:
                return answer  # the policy decided: nobody is asked
        request = current_request.get()
        if request is None or not can_elicit(request.session):
            return None
        return await _ask(request.session, request.request_id, call, code_mode_id)

    return approve


_QUESTION: mcp_types.ElicitRequestedSchema = {
    "type": "object",
    "properties": {
        "approve": {
            "type": "boolean",
            "title": "Approve this call",
            "description": "Run the call now. Unchecked, the call is denied.",
            "default": False,
        },
        "reason": {
            "type": "string",
            "title": "Reason (when denied)",
            "description": "Why not; the program is told, and may act on it.",
        },
    },
    "required": ["approve"],
}


async def _ask(
    session: ServerSession,
    request_id: mcp_types.RequestId | None,
    call: ToolCall,
    code_mode_id: str,
) -> ApprovalAnswer:
    """One question to the person at the client: approve (True), deny (False or the reason),
    or no answer (None: dismissed, failed, or too late)."""
    deadline = _deadline.get()
    remaining = None if deadline is None else deadline - time.monotonic()
    if remaining is not None and remaining <= 0:
        return None
    try:
        shown = json.dumps(pydantic_core.to_jsonable_python(call.input), indent=2)
    except (TypeError, ValueError, pydantic_core.PydanticSerializationError):
        shown = repr(call.input)
    message = (
        f"A program run by {code_mode_id} wants to call {call.tool_id} with:\n\n{shown}\n\n"
        "Approve to run it now. Deny it, or decline, and the program gets ApprovalDeniedError "
        "(with your reason) and may carry on without it."
    )
    try:
        async with asyncio.timeout(remaining):
            result = await session.elicit_form(message, _QUESTION, related_request_id=request_id)
    except TimeoutError:
        _log.info("no answer to the approval of %s in time; the call waits", call.tool_id)
        return None
    except Exception:
        _log.warning("could not ask the client to approve %s", call.tool_id, exc_info=True)
        return None
    if result.action == "cancel":
        return None
    if result.action == "decline":
        return False
    content = result.content or {}
    if content.get("approve") is True:
        return True
    reason = content.get("reason")
    return reason.strip() if isinstance(reason, str) and reason.strip() else False


# -- resume_execution ------------------------------------------------------------------------------
class _ResumeInput(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    execution_id: str = pydantic.Field(
        description="The execution_id of the paused result.", min_length=1
    )
    decisions: dict[str, pydantic.StrictBool | pydantic.StrictStr] = pydantic.Field(
        default_factory=dict,
        description=(
            "The user's decision on each pending call, by its call_id: true approves it (it "
            "runs), false denies it, and a string denies it with that reason. Calls left out "
            "keep waiting."
        ),
    )


def resume_tool(tool: CodeModeTool) -> mcp_types.Tool:
    """The ``resume_execution`` tool, served beside a code tool that has a store."""
    schema = _ResumeInput.model_json_schema()
    schema.pop("title", None)
    return mcp_types.Tool(
        name=RESUME_TOOL,
        title="Resume a paused program",
        description=(
            f"Continue a program that {tool.id} paused because tool calls wait for a person's "
            'approval (its result had status "paused", an execution_id and pending calls). '
            "Pass the decisions the user gave you for each pending call_id: true to approve, "
            "false or a reason to deny. Only pass decisions the user made; never decide for "
            "them. The program continues where it paused (calls already made are not made "
            "again) and this returns its result, or a pause again if calls still wait."
        ),
        input_schema=schema,
        output_schema=tool.output_schema,
        annotations=mcp_types.ToolAnnotations(
            title="Resume a paused program",
            read_only_hint=False,
            destructive_hint=True,  # the approved calls run: clients confirm with their user
            idempotent_hint=False,
            open_world_hint=True,
        ),
    )


async def resume_execution(tool: CodeModeTool, arguments: Mapping[str, Any]) -> CodeModeToolResult:
    """Run ``resume_execution``: a bad input is a failed result that says what to send."""
    try:
        given = _ResumeInput.model_validate(arguments)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}"
            for e in exc.errors(include_url=False)
        )
        return CodeModeToolResult(
            success=False,
            error=CodeModeError(
                name="ValidationError",
                message=f"Tool input validation failed for {RESUME_TOOL} ({problems}); send "
                '{"execution_id": "...", "decisions": {"<call_id>": true | false | "reason"}}.',
            ),
        )
    return await tool.resume(given.execution_id, dict(given.decisions))
