"""Two hosts, one database: separate Python processes share one Postgres (and one Redis) store,
as the machines of a deployment would. One process runs a program until it pauses on two gated
calls made together (Promise.all, asyncio.gather) and exits; another resumes it with the
decisions and finishes it, for programs in each language. Tools count their runs in files, so a
call run twice would show."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from _helpers import LANGUAGES
from test_durable_processes import PROGRAM, App
from test_durable_store import store_location

SERVERS = ["redis", "postgres"]


@pytest.fixture(params=LANGUAGES)
def language(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=SERVERS)
def app(request: pytest.FixtureRequest, tmp_path: Path, language: str) -> App:
    app = App(tmp_path, language)
    app.db = store_location(request.param, request, tmp_path)
    return app


async def test_a_program_paused_on_one_host_is_finished_on_another(app: App) -> None:
    paused = await app.run(PROGRAM)  # host A: paused, and its process has exited

    assert (paused["status"], paused["error"]["name"]) == ("paused", "ExecutionPaused")
    execution_id = paused["execution_id"]
    assert [(c["tool_id"], c["input"], c["kind"]) for c in paused["pending"]] == [
        ("refund", {"order": "a", "amount": 500}, "approval"),
        ("refund", {"order": "b", "amount": 900}, "approval"),
    ]
    queue = await app.pending()  # what an approval UI on any host sees
    assert [(p["execution_id"], p["call"]) for p in queue] == [
        (execution_id, call) for call in paused["pending"]
    ]
    approve, deny = (c["call_id"] for c in paused["pending"])

    done = await app.resume(execution_id, {approve: True, deny: "over the limit"})  # host B

    assert done == {
        "success": True,
        "result": {
            "seen": done["result"]["seen"],
            "count": 1,
            "results": [
                {"refunded": "a"},
                "ApprovalDeniedError: Tool refund requires approval and was not approved: "
                "over the limit",
            ],
        },
        "logs": [],
        "execution_id": execution_id,
    }
    # Nothing ran twice: the counter once on host A, the approved refund once on host B.
    assert app.runs("counter") == [{"key": f"{execution_id}:1"}]
    assert app.runs("refund") == [{"order": "a", "key": f"{execution_id}:2"}]
    assert await app.pending() == []
    again = await app.resume(execution_id, {approve: True})
    assert again["error"]["name"] == "ExecutionNotPausedError"
    assert again["error"]["message"].startswith(f"Execution {execution_id} is not paused: it ")
    assert len(app.runs("refund")) == 1


async def test_two_hosts_resuming_at_once_run_it_exactly_once(app: App) -> None:
    paused = await app.run(PROGRAM)
    decisions = {c["call_id"]: True for c in paused["pending"]}
    racers = [
        await app.start("resume", app.db, paused["execution_id"], json.dumps(decisions))
        for _ in range(2)
    ]
    await asyncio.sleep(1.0)  # both processes are up and waiting for the signal
    (app.dir / "go").touch()
    results = [await app.result(p) for p in racers]

    assert sorted(r["success"] for r in results) == [False, True]
    [refused] = [r for r in results if not r["success"]]
    assert refused["error"]["name"] == "ExecutionNotPausedError"
    assert sorted(r["order"] for r in app.runs("refund")) == ["a", "b"]  # each once
    assert len(app.runs("counter")) == 1
