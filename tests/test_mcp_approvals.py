"""Approvals through the MCP gateway, with the SDK's own client over stdio against the real
``codemode serve``: a client that supports elicitation is asked inline and the program goes on
without pausing; a client that does not gets the paused result and resumes it with the
``resume_execution`` tool; for programs in each language. Tools count their runs in files
(tests/durable_app.py)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp.types as mcp_types
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from _helpers import LANGUAGES

CODEMODE = str(Path(sys.executable).with_name("codemode"))
TOOLS = f"{Path(__file__).with_name('durable_app.py')}:TOOLS"  # counter, refund (> 100 gated)

PROGRAMS = {
    "typescript": """
const count = await external_counter({});
const results = await Promise.all([
  external_refund({ order: "a", amount: 500 }),
  external_refund({ order: "b", amount: 900 }).catch((e) => `${e.name}: ${e.message}`),
]);
return { count, results };
""",
    "python": """
import asyncio
async def attempt(call):
    try:
        return await call
    except PermissionError as e:
        return f"ApprovalDeniedError: {e}"
count = await external_counter()
results = await asyncio.gather(
    external_refund(order="a", amount=500),
    attempt(external_refund(order="b", amount=900)),
)
{"count": count, "results": results}
""",
}
DENIED_B = "ApprovalDeniedError: Tool refund requires approval and was not approved"

Elicit = Callable[[Any, mcp_types.ElicitRequestParams], Awaitable[mcp_types.ElicitResult]]


class Gateway:
    """``codemode serve`` over the durable test tools, and what those tools did; its code tool
    runs programs in ``language``."""

    def __init__(self, dir: Path, language: str) -> None:
        self.dir = dir
        self.store = str(dir / "runs.db")
        self.language = language
        self.tool = f"execute_{language}"
        self.program = PROGRAMS[language]

    @asynccontextmanager
    async def session(
        self, elicit: Elicit | None = None, *, store: bool = True, timeout_ms: int = 30_000
    ) -> AsyncIterator[ClientSession]:
        args = ["serve", "--tools", TOOLS, "--timeout", str(timeout_ms)]
        args += ["--language", self.language]
        if store:
            args += ["--store", self.store]
        params = StdioServerParameters(
            command=CODEMODE,
            args=args,
            env={"DURABLE_APP_DIR": str(self.dir), "PATH": os.environ["PATH"]},
        )
        with tempfile.TemporaryFile("w+") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write, elicitation_callback=elicit) as session,
            ):
                await session.initialize()
                yield session

    def runs(self, tool: str) -> list[Any]:
        path = self.dir / f"{tool}.log"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(params=LANGUAGES)
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Gateway:
    return Gateway(tmp_path, request.param)


async def call(session: ClientSession, name: str, arguments: dict[str, Any]) -> tuple[bool, Any]:
    result = await session.call_tool(name, arguments)
    assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
    return bool(result.is_error), result.structured_content


async def test_a_client_that_elicits_is_asked_inline_and_nothing_pauses(gateway: Gateway) -> None:
    asked: list[mcp_types.ElicitRequestParams] = []

    async def elicit(context: Any, params: mcp_types.ElicitRequestParams) -> mcp_types.ElicitResult:
        asked.append(params)
        if '"order": "a"' in params.message:
            return mcp_types.ElicitResult(action="accept", content={"approve": True})
        return mcp_types.ElicitResult(
            action="accept", content={"approve": False, "reason": "over budget"}
        )

    async with gateway.session(elicit) as session:
        is_error, result = await call(session, gateway.tool, {"code": gateway.program})

    assert is_error is False
    assert result == {
        "success": True,
        "result": {"count": 1, "results": [{"refunded": "a"}, f"{DENIED_B}: over budget"]},
        "logs": [],
        "execution_id": result["execution_id"],
    }
    assert sorted(p.message for p in asked) == [
        f"A program run by {gateway.tool} wants to call refund with:\n\n"
        + json.dumps({"order": order, "amount": amount}, indent=2)
        + "\n\nApprove to run it now. Deny it, or decline, and the program gets "
        "ApprovalDeniedError (with your reason) and may carry on without it."
        for order, amount in [("a", 500), ("b", 900)]
    ]
    schema = asked[0].requested_schema  # type: ignore[union-attr]
    assert schema["required"] == ["approve"]
    assert schema["properties"]["approve"]["type"] == "boolean"
    assert schema["properties"]["reason"]["type"] == "string"
    assert [r["order"] for r in gateway.runs("refund")] == ["a"]


async def test_a_client_that_cannot_elicit_gets_the_pause_and_resumes_it(
    gateway: Gateway,
) -> None:
    async with gateway.session() as session:
        listed = await session.list_tools()
        assert [t.name for t in listed.tools] == [gateway.tool, "resume_execution"]
        resume = listed.tools[1]
        assert resume.annotations is not None and resume.annotations.destructive_hint is True
        assert resume.input_schema["required"] == ["execution_id"]

        is_error, paused = await call(session, gateway.tool, {"code": gateway.program})

        assert is_error is False  # not an error: the program waits
        assert (paused["status"], paused["error"]["name"]) == ("paused", "ExecutionPaused")
        execution_id = paused["execution_id"]
        approve, deny = (c["call_id"] for c in paused["pending"])

        is_error, done = await call(
            session,
            "resume_execution",
            {"execution_id": execution_id, "decisions": {approve: True, deny: "over budget"}},
        )

        assert is_error is False
        assert done == {
            "success": True,
            "result": {"count": 1, "results": [{"refunded": "a"}, f"{DENIED_B}: over budget"]},
            "logs": [],
            "execution_id": execution_id,
        }
        assert [r["order"] for r in gateway.runs("refund")] == ["a"]
        assert len(gateway.runs("counter")) == 1

        is_error, again = await call(
            session, "resume_execution", {"execution_id": execution_id, "decisions": {}}
        )
        assert is_error is True
        assert again["error"]["name"] == "ExecutionNotPausedError"

        is_error, bad = await call(
            session, "resume_execution", {"execution_id": execution_id, "decisions": {"x": 1}}
        )
        assert is_error is True
        assert bad["error"] == {
            "name": "ValidationError",
            "message": "Tool input validation failed for resume_execution (decisions.x.bool: "
            "Input should be a valid boolean; decisions.x.str: Input should be a valid string); "
            'send {"execution_id": "...", "decisions": {"<call_id>": true | false | "reason"}}.',
        }


async def test_a_dismissed_or_unanswered_question_pauses_the_program(gateway: Gateway) -> None:
    async def elicit(context: Any, params: mcp_types.ElicitRequestParams) -> mcp_types.ElicitResult:
        if '"order": "a"' in params.message:
            return mcp_types.ElicitResult(action="cancel")  # dismissed
        await asyncio.sleep(30)  # nobody answers before the program would time out
        return mcp_types.ElicitResult(action="accept", content={"approve": True})

    async with gateway.session(elicit, timeout_ms=4000) as session:
        is_error, paused = await call(session, gateway.tool, {"code": gateway.program})

        assert (is_error, paused["status"]) == (False, "paused")
        assert [c["input"]["order"] for c in paused["pending"]] == ["a", "b"]
        decisions = {c["call_id"]: True for c in paused["pending"]}
        is_error, done = await call(
            session,
            "resume_execution",
            {"execution_id": paused["execution_id"], "decisions": decisions},
        )
    assert done["result"]["results"] == [{"refunded": "a"}, {"refunded": "b"}]
    assert sorted(r["order"] for r in gateway.runs("refund")) == ["a", "b"]  # once each


async def test_without_a_store_or_elicitation_a_gated_call_is_denied_as_before(
    gateway: Gateway,
) -> None:
    async with gateway.session(store=False) as session:
        listed = await session.list_tools()
        is_error, result = await call(session, gateway.tool, {"code": gateway.program})

    assert [t.name for t in listed.tools] == [gateway.tool]
    assert is_error is True  # the uncaught denial of order a fails the program
    assert result["error"]["name"] == "ApprovalDeniedError"
    assert gateway.runs("refund") == []
