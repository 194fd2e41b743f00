"""codemode tools inside OpenAI Agents SDK agents, driven by a scripted ``Model``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("agents")

from agents import (
    Agent,
    Model,
    ModelResponse,
    RunConfig,
    RunContextWrapper,
    Runner,
    RunResult,
    ToolCallItem,
    ToolCallOutputItem,
    Usage,
    UserError,
)
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from _examples import (
    EXAMPLES,
    PAUSING_PROGRAM,
    SHOP_ANSWER,
    SHOP_RESULT,
    RefundShop,
    load_example,
    whoami_tool,
)
from codemode import DenoSandbox, Tool, create_code_mode, create_tool
from codemode.integrations.openai_agents import (
    join_instructions,
    paused_executions,
    resume_run,
    stop_when_paused,
    to_openai_agents,
)


class CallOnce(Model):
    """Calls one tool with raw argument text, then answers with exactly the tool's output."""

    def __init__(self, name: str, arguments: str) -> None:
        self.name = name
        self.arguments = arguments
        self.instructions: list[str | None] = []

    async def get_response(
        self, system_instructions: str | None, input: str | list[Any], *args: Any, **kwargs: Any
    ) -> ModelResponse:
        self.instructions.append(system_instructions)
        items = input if isinstance(input, list) else []
        outputs = [i["output"] for i in items if i.get("type") == "function_call_output"]
        if not outputs:
            call = ResponseFunctionToolCall(
                type="function_call",
                call_id="call_1",
                name=self.name,
                arguments=self.arguments,
                status="completed",
            )
            return ModelResponse(output=[call], usage=Usage(), response_id=None)
        text = ResponseOutputText(type="output_text", text=outputs[-1], annotations=[])
        message = ResponseOutputMessage(
            type="message", id="msg_1", role="assistant", status="completed", content=[text]
        )
        return ModelResponse(output=[message], usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


async def run(agent: Agent[Any], context: Any = None) -> RunResult:
    return await Runner.run(
        agent, "go", context=context, run_config=RunConfig(tracing_disabled=True)
    )


async def test_quickstart_answers_from_one_execute_typescript_call(
    deno_sandbox: DenoSandbox,
) -> None:
    example = load_example("openai_agents_agent")

    result = await example.ask(example.ScriptedModel(), deno_sandbox, example.QUESTION)

    calls = [i.raw_item for i in result.new_items if isinstance(i, ToolCallItem)]
    described = [
        (c.name, json.loads(c.arguments)) if isinstance(c, ResponseFunctionToolCall) else c
        for c in calls
    ]
    assert described == [("execute_typescript", {"code": (EXAMPLES / "shop.ts").read_text()})]
    outputs = [i.output for i in result.new_items if isinstance(i, ToolCallOutputItem)]
    assert [json.loads(o) for o in outputs] == [
        {"success": True, "result": SHOP_RESULT, "logs": []}
    ]
    assert result.final_output == SHOP_ANSWER


def test_example_runs_offline_as_a_script() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "openai_agents_agent.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, SHOP_ANSWER + "\n", "")


async def test_instructions_reach_the_model(deno_sandbox: DenoSandbox) -> None:
    example = load_example("openai_agents_agent")
    _, instructions = create_code_mode(tools=example.tools, sandbox=deno_sandbox)
    model = CallOnce("execute_typescript", json.dumps({"code": "return 1"}))

    await run(example.build_agent(model, deno_sandbox))

    expected = "You are a helpful shopping assistant.\n\n" + instructions.strip()
    assert model.instructions == [expected, expected]
    assert join_instructions(" a ", "", "b\n") == "a\n\nb"


async def test_function_tool_carries_the_tools_json_schema(deno_sandbox: DenoSandbox) -> None:
    example = load_example("openai_agents_agent")
    code_tool, instructions = create_code_mode(tools=example.tools, sandbox=deno_sandbox)

    function_tool = to_openai_agents(code_tool)

    assert (function_tool.name, function_tool.description) == ("execute_typescript", instructions)
    assert function_tool.params_json_schema == code_tool.to_openai_tool()["function"]["parameters"]
    assert function_tool.strict_json_schema is False


async def test_regular_tool_returns_its_json_result() -> None:
    example = load_example("openai_agents_agent")
    top = to_openai_agents(example.tools["getTopProducts"])

    result = await run(
        Agent(name="a", model=CallOnce("getTopProducts", '{"limit": 1}'), tools=[top])
    )

    assert json.loads(result.final_output) == {
        "products": [{"id": "p1", "name": "Espresso machine", "totalSales": 1520.0}]
    }


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            '{"limit": "many"}',
            "Tool input validation failed for getTopProducts:\n"
            "- limit: Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            '{"limit": 5',
            "Tool input for getTopProducts is not valid JSON "
            "(Expecting ',' delimiter: line 1 column 12 (char 11)); send a JSON object.",
        ),
    ],
)
async def test_bad_arguments_come_back_to_the_model(arguments: str, message: str) -> None:
    example = load_example("openai_agents_agent")
    top = to_openai_agents(example.tools["getTopProducts"])

    result = await run(Agent(name="a", model=CallOnce("getTopProducts", arguments), tools=[top]))

    assert result.final_output == message


async def test_tool_errors_fail_the_run() -> None:
    def fail(input: dict[str, Any]) -> None:
        raise LookupError("no such product")

    broken = Tool(id="broken", description="Fails.", input_schema={"type": "object"}, execute=fail)
    agent = Agent(name="a", model=CallOnce("broken", "{}"), tools=[to_openai_agents(broken)])

    with pytest.raises(UserError, match=r"^Error running tool broken: no such product$") as caught:
        await run(agent)
    assert isinstance(caught.value.__cause__, LookupError)


async def test_tools_that_need_approval_interrupt_the_run() -> None:
    ran: list[Any] = []
    refund = create_tool(
        id="refund",
        description="Refund an order.",
        input_schema={"type": "object", "properties": {"orderId": {"type": "string"}}},
        execute=lambda input: ran.append(input),
        require_approval=True,
    )
    model = CallOnce("refund", '{"orderId": "o1"}')

    result = await run(Agent(name="a", model=model, tools=[to_openai_agents(refund)]))

    assert [i.tool_name for i in result.interruptions] == ["refund"]
    assert ran == []


@dataclass
class Account:
    user: str


async def test_mapping_context_is_the_request_context_of_direct_and_program_calls(
    deno_sandbox: DenoSandbox,
) -> None:
    seen: list[dict[str, Any]] = []
    whoami = whoami_tool(seen)
    code_tool, _ = create_code_mode(tools=[whoami], sandbox=deno_sandbox)

    direct = Agent(name="a", model=CallOnce("whoami", "{}"), tools=[to_openai_agents(whoami)])
    await run(direct, context={"user": "ada"})
    program = json.dumps({"code": "return await external_whoami({})"})
    coded = Agent(
        name="a", model=CallOnce("execute_typescript", program), tools=[to_openai_agents(code_tool)]
    )
    result = await run(coded, context={"user": "bob"})

    assert seen == [{"user": "ada"}, {"user": "bob"}]
    assert json.loads(result.final_output) == {"success": True, "result": "ok", "logs": []}


async def test_object_context_is_passed_whole_unless_told_otherwise() -> None:
    seen: list[dict[str, Any]] = []
    whoami = whoami_tool(seen)
    account = Account(user="ada")

    def by_user(ctx: RunContextWrapper[Any]) -> dict[str, Any]:
        return {"user": ctx.context.user}

    for function_tool in [
        to_openai_agents(whoami),
        to_openai_agents(whoami, request_context=by_user),
    ]:
        await run(Agent(name="a", model=CallOnce("whoami", "{}"), tools=[function_tool]), account)

    assert seen == [{"context": account}, {"user": "ada"}]
    assert seen[0]["context"] is account


async def test_null_result_reaches_the_model_as_null(deno_sandbox: DenoSandbox) -> None:
    code_tool, _ = create_code_mode(tools=[], sandbox=deno_sandbox)
    model = CallOnce("execute_typescript", json.dumps({"code": "return null"}))
    agent = Agent(name="a", model=model, tools=[to_openai_agents(code_tool)])

    result = await run(agent)

    outputs = [i.output for i in result.new_items if isinstance(i, ToolCallOutputItem)]
    assert outputs == ['{"success": true, "result": null, "logs": []}']


# -- approvals that wait: a paused program ends the turn; resume_run continues it ---------------


@pytest.fixture
async def shop_tool(deno_sandbox: DenoSandbox, tmp_path: Any) -> Any:
    from codemode.stores import SqliteStore

    shop = RefundShop()
    async with SqliteStore(tmp_path / "runs.db") as store:
        code_tool, _ = create_code_mode(tools=shop.tools, sandbox=deno_sandbox, store=store)
        yield code_tool, shop.runs


@pytest.mark.parametrize("stop", [True, False], ids=["stop_when_paused", "model_told"])
async def test_a_paused_program_ends_the_turn_and_resume_run_continues_it(
    shop_tool: Any, stop: bool
) -> None:
    code_tool, runs = shop_tool
    model = CallOnce("execute_typescript", json.dumps({"code": PAUSING_PROGRAM}))
    options: dict[str, Any] = {"tool_use_behavior": stop_when_paused} if stop else {}
    agent = Agent(name="shop", model=model, tools=[to_openai_agents(code_tool)], **options)

    first = await run(agent)

    [paused] = paused_executions(first)
    assert (paused.tool_call_id, paused.tool_name) == ("call_1", "execute_typescript")
    assert [(c.tool_id, c.input["order"], c.kind) for c in paused.pending] == [
        ("refund", "a", "approval"),
        ("refund", "b", "approval"),
    ]
    paused_json = json.loads(first.final_output)
    assert (paused_json["status"], paused_json["execution_id"]) == ("paused", paused.execution_id)
    assert len(model.instructions) == (1 if stop else 2)  # stopped: the model was not asked
    assert runs == [("counter", None)]
    approve, deny = (c.call_id for c in paused.pending)

    done = await resume_run(
        first, {approve: True, deny: "over the limit"}, run_config=RunConfig(tracing_disabled=True)
    )

    assert json.loads(done.final_output) == {
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
    assert paused_executions(done) == []
    assert runs == [("counter", None), ("refund", "a")]  # nothing ran twice


async def test_calls_left_undecided_end_the_resumed_run_paused_again(shop_tool: Any) -> None:
    code_tool, runs = shop_tool
    model = CallOnce("execute_typescript", json.dumps({"code": PAUSING_PROGRAM}))
    agent = Agent(
        name="shop",
        model=model,
        tools=[to_openai_agents(code_tool)],
        tool_use_behavior=stop_when_paused,
    )
    first = await run(agent)
    [paused] = paused_executions(first)
    approve, later = (c.call_id for c in paused.pending)

    second = await resume_run(first, {approve: True}, run_config=RunConfig(tracing_disabled=True))

    [again] = paused_executions(second)
    assert (again.execution_id, [c.call_id for c in again.pending]) == (
        paused.execution_id,
        [later],
    )
    third = await resume_run(
        second, {}, otherwise=True, run_config=RunConfig(tracing_disabled=True)
    )
    assert json.loads(third.final_output)["result"]["results"] == [
        {"refunded": "a"},
        {"refunded": "b"},
    ]
    assert runs == [("counter", None), ("refund", "a"), ("refund", "b")]
