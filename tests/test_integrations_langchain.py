"""codemode tools as LangChain tools, driven by a scripted chat model in a tool-calling loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

pytest.importorskip("langchain_core")

from langchain_core.messages import SystemMessage, ToolCall, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

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
from codemode._code_mode import _background_loop
from codemode.integrations.langchain import (
    paused_executions,
    resume_messages,
    resume_messages_sync,
    system_message,
    to_langchain,
)


def call(name: str, args: dict[str, Any]) -> ToolCall:
    return ToolCall(name=name, args=args, id="call_1", type="tool_call")


async def test_quickstart_answers_from_one_execute_typescript_call(
    deno_sandbox: DenoSandbox,
) -> None:
    example = load_example("langchain_agent")

    messages = await example.ask(example.ScriptedChatModel(), deno_sandbox, example.QUESTION)

    calls = [c for m in messages for c in getattr(m, "tool_calls", [])]
    assert [(c["name"], c["args"]) for c in calls] == [
        ("execute_typescript", {"code": (EXAMPLES / "shop.ts").read_text()})
    ]
    results = [m for m in messages if isinstance(m, ToolMessage)]
    expected = {"success": True, "result": SHOP_RESULT, "logs": []}
    assert [(json.loads(m.text), m.artifact, m.status) for m in results] == [
        (expected, expected, "success")
    ]
    assert messages[-1].text == SHOP_ANSWER


def test_example_runs_offline_as_a_script() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "langchain_agent.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, SHOP_ANSWER + "\n", "")


async def test_instructions_go_in_the_system_message_and_the_description(
    deno_sandbox: DenoSandbox,
) -> None:
    example = load_example("langchain_agent")
    code_tool, instructions = create_code_mode(tools=example.tools, sandbox=deno_sandbox)

    lc_tool = to_langchain(code_tool)

    assert system_message(" You are a helpful shopping assistant. ", instructions) == SystemMessage(
        "You are a helpful shopping assistant.\n\n" + instructions.strip()
    )
    assert (lc_tool.name, lc_tool.description) == ("execute_typescript", instructions)
    # What LangChain sends to a model is the tool's JSON, less the schema's titles and the root
    # description (the input model's docstring), which it drops.
    expected = code_tool.to_openai_tool()
    parameters = expected["function"]["parameters"]
    for key in ["title", "description"]:
        del parameters[key]
    del parameters["properties"]["code"]["title"]
    assert convert_to_openai_tool(lc_tool) == expected


def test_regular_tool_invokes_synchronously_with_its_json_result() -> None:
    example = load_example("langchain_agent")
    top = to_langchain(example.tools["getTopProducts"])

    message = top.invoke(call("getTopProducts", {"limit": 1}))

    expected = {"products": [{"id": "p1", "name": "Espresso machine", "totalSales": 1520.0}]}
    assert isinstance(message, ToolMessage)
    assert (json.loads(message.text), message.artifact, message.status) == (
        expected,
        expected,
        "success",
    )


def test_code_tool_invokes_synchronously() -> None:
    sandbox = DenoSandbox(prestart=0)
    code_tool, _ = create_code_mode(tools=[], sandbox=sandbox)

    try:
        content = to_langchain(code_tool).invoke({"code": "return 6 * 7"})
    finally:
        # invoke() ran the sandbox on codemode's background loop; its processes live there.
        _background_loop().run(sandbox.aclose())

    assert json.loads(content) == {"success": True, "result": 42, "logs": []}


async def test_invalid_arguments_become_an_error_message_for_the_model() -> None:
    example = load_example("langchain_agent")
    top = to_langchain(example.tools["getTopProducts"])

    message = await top.ainvoke(call("getTopProducts", {"limit": "many"}))

    assert isinstance(message, ToolMessage)
    assert (message.text, message.status) == (
        "Tool input validation failed for getTopProducts:\n"
        "- limit: Input should be a valid integer, unable to parse string as an integer",
        "error",
    )


async def test_tool_errors_propagate() -> None:
    def fail(input: dict[str, Any]) -> None:
        raise LookupError("no such product")

    broken = Tool(id="broken", description="Fails.", input_schema={"type": "object"}, execute=fail)

    with pytest.raises(LookupError, match="no such product"):
        await to_langchain(broken).ainvoke(call("broken", {}))


def test_tools_that_need_approval_are_refused() -> None:
    refund = create_tool(
        id="refund",
        description="Refund an order.",
        input_schema={"type": "object"},
        execute=lambda input: None,
        require_approval=True,
    )

    with pytest.raises(ValueError) as caught:
        to_langchain(refund)

    assert str(caught.value) == (
        "tool 'refund' requires approval, but a LangChain tool has no approval step and would "
        "run unapproved; expose it through a code tool (create_code_mode(tools=[...], "
        "approve=...)) instead"
    )


async def test_request_context_comes_from_the_run_config(deno_sandbox: DenoSandbox) -> None:
    seen: list[dict[str, Any]] = []
    whoami = whoami_tool(seen)
    code_tool, _ = create_code_mode(tools=[whoami], sandbox=deno_sandbox)

    await to_langchain(whoami).ainvoke(
        call("whoami", {}), config={"configurable": {"request_context": {"user": "ada"}}}
    )
    content = await to_langchain(code_tool).ainvoke(
        {"code": "return await external_whoami({})"},
        config={"configurable": {"request_context": {"user": "bob"}}},
    )
    by_thread = to_langchain(
        whoami, request_context=lambda config: {"user": config["configurable"]["thread_id"]}
    )
    await by_thread.ainvoke(call("whoami", {}), config={"configurable": {"thread_id": "t-1"}})
    await to_langchain(whoami).ainvoke(call("whoami", {}))

    assert json.loads(content) == {"success": True, "result": "ok", "logs": []}
    assert seen == [{"user": "ada"}, {"user": "bob"}, {"user": "t-1"}, {}]


async def test_null_result_reaches_the_model_as_null(deno_sandbox: DenoSandbox) -> None:
    code_tool, _ = create_code_mode(tools=[], sandbox=deno_sandbox)

    message = await to_langchain(code_tool).ainvoke(
        call("execute_typescript", {"code": "return null"})
    )

    expected = {"success": True, "result": None, "logs": []}
    assert (json.loads(message.text), message.artifact) == (expected, expected)


# -- approvals that wait: the paused result is the ToolMessage; resume_messages replaces it -------


@pytest.fixture
async def shop_tool(deno_sandbox: DenoSandbox, tmp_path: Any) -> Any:
    from codemode.stores import SqliteStore

    shop = RefundShop()
    async with SqliteStore(tmp_path / "runs.db") as store:
        code_tool, _ = create_code_mode(tools=shop.tools, sandbox=deno_sandbox, store=store)
        yield code_tool, shop.runs, shop.contexts


async def test_a_paused_program_is_returned_and_resume_messages_finishes_it(
    shop_tool: Any,
) -> None:
    code_tool, runs, seen = shop_tool
    lc_tool = to_langchain(code_tool)
    question = SystemMessage("refund a and b")

    paused_message = await lc_tool.ainvoke(call("execute_typescript", {"code": PAUSING_PROGRAM}))

    assert isinstance(paused_message, ToolMessage) and paused_message.status == "success"
    assert json.loads(paused_message.text)["status"] == "paused"
    [paused] = paused_executions([question, paused_message])
    assert (paused.tool_call_id, paused.tool_name) == ("call_1", "execute_typescript")
    assert [(c.tool_id, c.input["order"]) for c in paused.pending] == [
        ("refund", "a"),
        ("refund", "b"),
    ]
    approve, deny = (c.call_id for c in paused.pending)

    messages = await resume_messages(
        code_tool,
        [question, paused_message],
        {approve: True, deny: "over the limit"},
        request_context={"user": "ops"},
    )

    assert messages[0] is question
    resumed = messages[1]
    assert isinstance(resumed, ToolMessage) and resumed.tool_call_id == "call_1"
    expected = {
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
    assert (json.loads(resumed.text), resumed.artifact) == (expected, expected)
    assert paused_executions(messages) == []
    assert runs == [("counter", None), ("refund", "a")]  # nothing ran twice
    assert seen == [{"user": "ops"}]  # the approved call ran with the resume's context


def test_resume_messages_sync_leaves_undecided_calls_paused(shop_tool: Any) -> None:
    code_tool, runs, _ = shop_tool
    lc_tool = to_langchain(code_tool)
    paused_message = lc_tool.invoke(call("execute_typescript", {"code": PAUSING_PROGRAM}))
    [paused] = paused_executions([paused_message])
    approve, later = (c.call_id for c in paused.pending)

    messages = resume_messages_sync(code_tool, [paused_message], {approve: True})

    [again] = paused_executions(messages)
    assert (again.execution_id, [c.call_id for c in again.pending]) == (
        paused.execution_id,
        [later],
    )
    done = resume_messages_sync(code_tool, messages, {}, otherwise="not today")
    assert json.loads(done[0].text)["result"]["results"][1] == (
        "ApprovalDeniedError: Tool refund requires approval and was not approved: not today"
    )
    assert runs == [("counter", None), ("refund", "a")]
