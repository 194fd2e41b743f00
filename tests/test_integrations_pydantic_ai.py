"""codemode tools inside pydantic-ai agents, driven by pydantic-ai's own FunctionModel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("pydantic_ai")

from pydantic_ai import Agent, DeferredToolRequests, DeferredToolResults, RunContext
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    RetryPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from _examples import (
    EXAMPLES,
    PAUSING_PROGRAM,
    SHOP_ANSWER,
    SHOP_RESULT,
    load_example,
    whoami_tool,
)
from codemode import DenoSandbox, MontySandbox, Tool, create_code_mode, create_tool
from codemode.integrations.pydantic_ai import (
    approval_results,
    paused_executions,
    to_pydantic_ai,
    to_pydantic_ai_toolset,
)


def parts(messages: list[ModelMessage], kind: type[Any]) -> list[Any]:
    return [p for m in messages for p in m.parts if isinstance(p, kind)]


def call_once(name: str, args: dict[str, Any]) -> FunctionModel:
    """A model that calls one tool, then answers with exactly what came back (JSON for a
    result, the message for a retry prompt)."""

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        replies = parts(messages, ToolReturnPart) + parts(messages, RetryPromptPart)
        if not replies:
            return ModelResponse(parts=[ToolCallPart(name, args)])
        reply = replies[-1]
        text = reply.content if isinstance(reply.content, str) else json.dumps(reply.content)
        return ModelResponse(parts=[TextPart(text)])

    return FunctionModel(respond)


async def test_quickstart_answers_from_one_execute_typescript_call(
    deno_sandbox: DenoSandbox,
) -> None:
    example = load_example("pydantic_ai_agent")

    result = await example.build_agent(example.scripted_model(), deno_sandbox).run(example.QUESTION)

    calls = parts(result.all_messages(), ToolCallPart)
    assert [(c.tool_name, c.args) for c in calls] == [
        ("execute_typescript", {"code": (EXAMPLES / "shop.ts").read_text()})
    ]
    returns = parts(result.all_messages(), ToolReturnPart)
    assert [r.content for r in returns] == [{"success": True, "result": SHOP_RESULT, "logs": []}]
    assert result.output == SHOP_ANSWER


def test_example_runs_offline_as_a_script() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "pydantic_ai_agent.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, SHOP_ANSWER + "\n", "")


async def test_instructions_reach_the_model_in_the_agent_and_the_toolset(
    deno_sandbox: DenoSandbox,
) -> None:
    example = load_example("pydantic_ai_agent")
    code_tool, instructions = create_code_mode(tools=example.tools, sandbox=deno_sandbox)
    seen: list[str | None] = []

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(info.instructions)
        return ModelResponse(parts=[TextPart("ok")])

    await example.build_agent(FunctionModel(respond), deno_sandbox).run("hi")
    await Agent(FunctionModel(respond), toolsets=[to_pydantic_ai_toolset(code_tool)]).run("hi")

    # pydantic-ai joins instruction parts with one or two newlines, depending on its version.
    [in_agent, in_toolset] = seen
    assert in_agent is not None and in_agent.startswith("You are a helpful shopping assistant.\n")
    assert in_agent.endswith("\n" + instructions.strip())
    assert in_toolset == instructions.strip()


async def test_tool_definition_is_the_tools_json_schema(deno_sandbox: DenoSandbox) -> None:
    example = load_example("pydantic_ai_agent")
    code_tool, instructions = create_code_mode(tools=example.tools, sandbox=deno_sandbox)

    definition = to_pydantic_ai(code_tool).tool_def

    assert (definition.name, definition.description) == ("execute_typescript", instructions)
    assert definition.parameters_json_schema == code_tool.to_openai_tool()["function"]["parameters"]


async def test_regular_tool_returns_its_json_result() -> None:
    example = load_example("pydantic_ai_agent")
    top = example.tools["getTopProducts"]

    agent = Agent(call_once("getTopProducts", {"limit": 2}), tools=[to_pydantic_ai(top)])
    result = await agent.run("top 2")

    assert [r.content for r in parts(result.all_messages(), ToolReturnPart)] == [
        {
            "products": [
                {"id": "p1", "name": "Espresso machine", "totalSales": 1520.0},
                {"id": "p2", "name": "Burr grinder", "totalSales": 1310.0},
            ]
        }
    ]


async def test_an_argument_named_ctx_reaches_the_tool() -> None:
    echo = create_tool(
        id="echo",
        description="Echo.",
        input_schema={"type": "object", "properties": {"ctx": {"type": "string"}}},
        execute=lambda input: input["ctx"],
    )

    result = await Agent(call_once("echo", {"ctx": "hi"}), tools=[to_pydantic_ai(echo)]).run("")

    assert result.output == "hi"


async def test_invalid_arguments_become_a_retry_prompt() -> None:
    example = load_example("pydantic_ai_agent")
    top = example.tools["getTopProducts"]

    agent = Agent(call_once("getTopProducts", {"limit": "many"}), tools=[to_pydantic_ai(top)])
    result = await agent.run("top products")

    # pydantic-ai 2.x reports a retry as a ToolReturnPart with outcome="retried"; 1.x as a
    # RetryPromptPart. Either way the model reads the message and may try again.
    replies = parts(result.all_messages(), ToolReturnPart) + parts(
        result.all_messages(), RetryPromptPart
    )
    assert [isinstance(r, RetryPromptPart) or r.outcome == "retried" for r in replies] == [True]
    assert result.output == (
        "Tool input validation failed for getTopProducts:\n"
        "- limit: Input should be a valid integer, unable to parse string as an integer"
    )


async def test_tool_errors_propagate() -> None:
    def fail(input: dict[str, Any]) -> None:
        raise LookupError("no such product")

    broken = Tool(id="broken", description="Fails.", input_schema={"type": "object"}, execute=fail)
    agent = Agent(call_once("broken", {}), tools=[to_pydantic_ai(broken)])

    with pytest.raises(LookupError, match="no such product"):
        await agent.run("go")


async def test_tools_that_need_approval_wait_for_pydantic_ais_approval() -> None:
    ran: list[Any] = []
    refund = create_tool(
        id="refund",
        description="Refund an order.",
        input_schema={"type": "object", "properties": {"orderId": {"type": "string"}}},
        execute=lambda input: ran.append(input),
        require_approval=True,
    )
    agent = Agent(
        call_once("refund", {"orderId": "o1"}),
        tools=[to_pydantic_ai(refund)],
        output_type=[str, DeferredToolRequests],
    )

    result = await agent.run("refund o1")

    assert isinstance(result.output, DeferredToolRequests)
    assert [(c.tool_name, c.args) for c in result.output.approvals] == [
        ("refund", {"orderId": "o1"})
    ]
    assert ran == []


@dataclass
class Deps:
    user: str


async def test_mapping_deps_are_the_request_context_of_direct_and_program_calls(
    deno_sandbox: DenoSandbox,
) -> None:
    seen: list[dict[str, Any]] = []
    whoami = whoami_tool(seen)
    code_tool, _ = create_code_mode(tools=[whoami], sandbox=deno_sandbox)

    await Agent(call_once("whoami", {}), tools=[to_pydantic_ai(whoami)]).run(
        "who am I?", deps={"user": "ada"}
    )
    program = {"code": "return await external_whoami({})"}
    agent = Agent(call_once("execute_typescript", program), tools=[to_pydantic_ai(code_tool)])
    result = await agent.run("who am I?", deps={"user": "bob"})

    assert seen == [{"user": "ada"}, {"user": "bob"}]
    assert result.output == '{"success": true, "result": "ok", "logs": []}'


async def test_object_deps_are_passed_whole_unless_told_otherwise() -> None:
    seen: list[dict[str, Any]] = []
    whoami = whoami_tool(seen)
    deps = Deps(user="ada")

    await Agent(call_once("whoami", {}), tools=[to_pydantic_ai(whoami)]).run("who am I?", deps=deps)

    def by_user(ctx: RunContext[Any]) -> dict[str, Any]:
        return {"user": ctx.deps.user}

    tools = [to_pydantic_ai(whoami, request_context=by_user)]
    await Agent(call_once("whoami", {}), tools=tools).run("who am I?", deps=deps)

    assert seen == [{"deps": deps}, {"user": "ada"}]
    assert seen[0]["deps"] is deps


async def test_code_tool_failure_is_the_specs_result_shape(deno_sandbox: DenoSandbox) -> None:
    code_tool, _ = create_code_mode(tools=[], sandbox=deno_sandbox)
    program = {"code": "console.log('checking')\nthrow new RangeError('out of stock')"}

    agent = Agent(call_once("execute_typescript", program), tools=[to_pydantic_ai(code_tool)])
    result = await agent.run("go")

    [reply] = parts(result.all_messages(), ToolReturnPart)
    assert reply.content == {
        "success": False,
        "logs": ["checking"],
        "error": {"message": "out of stock", "name": "RangeError", "line": 2},
    }


async def test_the_python_code_tool_plugs_in_the_same_way() -> None:
    """The adapter takes any code tool: here execute_python, with the quickstart in Python."""
    example = load_example("pydantic_ai_agent")
    program = (EXAMPLES / "shop_program.py").read_text()

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns = parts(messages, ToolReturnPart)
        if not returns:
            return ModelResponse(parts=[ToolCallPart("execute_python", {"code": program})])
        return ModelResponse(parts=[TextPart(example.answer(returns[-1].content))])

    sandbox = MontySandbox()
    try:
        result = await example.build_agent(FunctionModel(respond), sandbox).run(example.QUESTION)
    finally:
        await sandbox.aclose()
    returns = parts(result.all_messages(), ToolReturnPart)
    assert [r.content for r in returns] == [{"success": True, "result": SHOP_RESULT, "logs": []}]
    assert result.output == SHOP_ANSWER.replace("scale: 4", "scale: 4.0")  # Python's round()


async def test_null_result_reaches_the_model_as_null(deno_sandbox: DenoSandbox) -> None:
    code_tool, _ = create_code_mode(tools=[], sandbox=deno_sandbox)
    agent = Agent(
        call_once("execute_typescript", {"code": "return null"}),
        tools=[to_pydantic_ai(code_tool)],
    )
    result = await agent.run("go")

    [reply] = parts(result.all_messages(), ToolReturnPart)
    assert reply.content == {"success": True, "result": None, "logs": []}


# -- approvals that wait: a paused program is pydantic-ai's deferred tool approval ----------------


class Shop:
    """A counter and a gated refund tool that record every run."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, Any]] = []
        self.tools = [
            create_tool(
                id="counter",
                description="Count.",
                input_schema={"type": "object"},
                execute=lambda input: self.ran("counter", input) or len(self.runs),
            ),
            create_tool(
                id="refund",
                description="Refund an order.",
                input_schema={
                    "type": "object",
                    "properties": {"order": {"type": "string"}, "amount": {"type": "number"}},
                },
                execute=lambda input: self.ran("refund", input) or {"refunded": input["order"]},
                require_approval=lambda input: input["amount"] > 100,
            ),
        ]

    def ran(self, name: str, input: Any) -> None:
        self.runs.append((name, input))


@pytest.fixture
async def durable_agent(deno_sandbox: DenoSandbox, tmp_path: Any) -> Any:
    from codemode.stores import SqliteStore

    shop = Shop()
    async with SqliteStore(tmp_path / "runs.db") as store:
        code_tool, _ = create_code_mode(tools=shop.tools, sandbox=deno_sandbox, store=store)
        agent = Agent(
            call_once("execute_typescript", {"code": PAUSING_PROGRAM}),
            tools=[to_pydantic_ai(code_tool)],
            output_type=[str, DeferredToolRequests],
        )
        yield agent, shop


async def test_a_paused_program_is_a_deferred_approval_resumed_with_per_call_decisions(
    durable_agent: Any,
) -> None:
    agent, shop = durable_agent

    first = await agent.run("refund both orders")

    assert isinstance(first.output, DeferredToolRequests)
    [part] = first.output.approvals
    assert part.tool_name == "execute_typescript"
    [(tool_call_id, paused)] = paused_executions(first.output).items()
    assert tool_call_id == part.tool_call_id
    assert [(c.tool_id, c.input, c.kind) for c in paused.pending] == [
        ("refund", {"order": "a", "amount": 500}, "approval"),
        ("refund", {"order": "b", "amount": 900}, "approval"),
    ]
    assert paused.message.startswith("The program is paused: 2 tool calls are waiting")
    assert shop.runs == [("counter", {})]  # the refunds wait
    approve, deny = (c.call_id for c in paused.pending)

    results = approval_results(first.output, {approve: True, deny: "over the limit"})
    assert results.approvals == {tool_call_id: True}
    assert results.metadata == {
        tool_call_id: {
            "execution_id": paused.execution_id,
            "decisions": {approve: True, deny: "over the limit"},
        }
    }
    second = await agent.run(message_history=first.all_messages(), deferred_tool_results=results)

    [reply] = [r for r in parts(second.all_messages(), ToolReturnPart)]
    assert reply.tool_call_id == tool_call_id
    assert reply.content == {
        "success": True,
        "result": {
            "count": 1,
            "results": [
                {"refunded": "a"},
                "ApprovalDeniedError: Tool refund requires approval and was not approved: "
                "over the limit",
            ],
        },
        "logs": [],
        "execution_id": paused.execution_id,
    }
    assert json.loads(second.output) == reply.content
    # Nothing ran twice: the counter before the pause, the approved refund after it.
    assert shop.runs == [("counter", {}), ("refund", {"order": "a", "amount": 500})]


async def test_undecided_calls_pause_again_and_a_plain_approval_approves_the_rest(
    durable_agent: Any,
) -> None:
    agent, shop = durable_agent
    first = await agent.run("refund both orders")
    [(tool_call_id, paused)] = paused_executions(first.output).items()
    approve, later = (c.call_id for c in paused.pending)

    second = await agent.run(
        message_history=first.all_messages(),
        deferred_tool_results=approval_results(first.output, {approve: True}),
    )

    assert isinstance(second.output, DeferredToolRequests)
    [(again_id, again)] = paused_executions(second.output).items()
    assert (again_id, again.execution_id) == (tool_call_id, paused.execution_id)
    assert [c.call_id for c in again.pending] == [later]
    assert shop.runs == [("counter", {}), ("refund", {"order": "a", "amount": 500})]

    # pydantic-ai's own idiom: approve the whole code tool call (in the process it paused in).
    third = await agent.run(
        message_history=second.all_messages(),
        deferred_tool_results=DeferredToolResults(approvals={tool_call_id: True}),
    )

    assert json.loads(third.output)["result"]["results"] == [
        {"refunded": "a"},
        {"refunded": "b"},
    ]
    assert [name for name, _ in shop.runs] == ["counter", "refund", "refund"]
