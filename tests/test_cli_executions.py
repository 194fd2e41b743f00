"""``codemode run --store`` and ``codemode executions``, run as an operator runs them: real
subprocesses against a real store (an SQLite file, and the Redis and Postgres servers the test
session starts), with tools whose every run is counted in files (tests/durable_app.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from _helpers import Matches
from test_durable_store import store_location

ROOT = Path(__file__).parent.parent
CODEMODE = str(Path(sys.executable).with_name("codemode"))
TOOLS = f"{Path(__file__).with_name('durable_app.py')}:TOOLS"  # counter, refund (> 100 gated)

PROGRAM = """\
const count = await external_counter({});
const results = await Promise.all([
  external_refund({ order: "a", amount: 500 }),
  external_refund({ order: "b", amount: 900 }).catch((e) => `${e.name}: ${e.message}`),
]);
return { count, results };
"""


class Operator:
    """Runs ``codemode`` commands against one store; the tools log their runs under ``dir``."""

    def __init__(self, dir: Path, store: str) -> None:
        self.dir = dir
        self.store = store
        self.env = {**os.environ, "DURABLE_APP_DIR": str(dir)}
        self.env.pop("CODEMODE_STORE", None)

    def __call__(self, *args: str, store: bool = True) -> subprocess.CompletedProcess[str]:
        extra = ["--store", self.store] if store else []
        return subprocess.run(
            [CODEMODE, *args, *extra],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=self.env,
            timeout=120,
            check=False,
        )

    def runs(self, tool: str) -> list[Any]:
        path = self.dir / f"{tool}.log"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def operator(tmp_path: Path) -> Operator:
    return Operator(tmp_path, str(tmp_path / "runs.db"))


def run_paused(operator: Operator) -> dict[str, Any]:
    (operator.dir / "program.ts").write_text(PROGRAM)
    done = operator("run", str(operator.dir / "program.ts"), "--tools", TOOLS)
    assert (done.returncode, done.stderr) == (3, ""), done.stderr  # 3: paused
    paused = json.loads(done.stdout)
    assert paused["status"] == "paused"
    return paused


def test_an_operator_lists_approves_denies_and_resumes(operator: Operator) -> None:
    paused = run_paused(operator)
    execution_id = paused["execution_id"]
    approve, deny = (c["call_id"] for c in paused["pending"])

    listed = operator("executions", "list")
    assert listed.returncode == 0
    header, row = listed.stdout.splitlines()
    assert header.split() == ["EXECUTION", "STATUS", "WAITING", "PASSES", "UPDATED", "EXPIRES"]
    assert row.split()[:4] == [execution_id, "paused", "2", "1"]

    queue = operator("executions", "pending", "--json")
    assert [(p["execution_id"], p["call"]) for p in json.loads(queue.stdout)] == [
        (execution_id, call) for call in paused["pending"]
    ]

    approved = operator("executions", "approve", execution_id, approve)
    assert (approved.returncode, approved.stdout) == (
        0,
        f'Approved call {approve} of execution {execution_id}: refund {{"order":"a","amount":500}}.'
        f" It takes effect when the execution is resumed: codemode executions resume "
        f"{execution_id} --tools ...\n",
    )
    denied = operator("executions", "deny", execution_id, deny, "--reason", "over budget")
    assert denied.returncode == 0 and "(over budget)" in denied.stdout
    changed = operator("executions", "approve", execution_id, deny)
    assert (changed.returncode, changed.stderr) == (
        1,
        f"Error: Call {deny} of execution {execution_id} was already denied (over budget); a "
        "decision cannot be changed.\n",
    )

    shown = operator("executions", "show", execution_id)
    assert shown.returncode == 0
    lines = shown.stdout.splitlines()
    assert lines[:3] == [
        f"execution  {execution_id}",
        "tool       execute_typescript",
        "status     paused",
    ]
    calls = [line.split(maxsplit=4) for line in lines if line[:1].isdigit()]
    assert [c[:4] for c in calls] == [
        ["1", Matches(r"1-[0-9a-f]{12}"), "counter", "ok"],
        ["2", approve, "refund", "pending"],
        ["3", deny, "refund", "pending"],
    ]
    [third] = [line for line in lines if line.startswith("3 ")]
    assert "denied: over budget" in third
    assert "program" in lines and "  return { count, results };" in lines
    assert operator.runs("refund") == []  # decisions alone run nothing

    resumed = operator("executions", "resume", execution_id, "--tools", TOOLS)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {
        "success": True,
        "result": {
            "count": 1,
            "results": [
                {"refunded": "a"},
                "ApprovalDeniedError: Tool refund requires approval and was not approved: "
                "over budget",
            ],
        },
        "logs": [],
        "execution_id": execution_id,
    }
    assert [r["order"] for r in operator.runs("refund")] == ["a"]
    assert len(operator.runs("counter")) == 1

    again = operator("executions", "resume", execution_id, "--tools", TOOLS)
    assert again.returncode == 1
    assert json.loads(again.stdout)["error"]["name"] == "ExecutionNotPausedError"
    shown = json.loads(operator("executions", "show", execution_id, "--json").stdout)
    assert (shown["status"], shown["passes"], shown["result"]["success"]) == ("completed", 2, True)
    assert [(c["state"], c["approved"]) for c in shown["calls"]] == [
        ("ok", None),
        ("ok", True),
        ("error", False),
    ]


PYTHON_PROGRAM = """\
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
"""


def test_a_python_program_pauses_and_resumes_from_the_command_line(operator: Operator) -> None:
    (operator.dir / "program.py").write_text(PYTHON_PROGRAM)
    done = operator("run", str(operator.dir / "program.py"), "--tools", TOOLS)
    assert (done.returncode, done.stderr) == (3, ""), done.stderr
    paused = json.loads(done.stdout)
    execution_id = paused["execution_id"]
    approve, deny = (c["call_id"] for c in paused["pending"])
    assert [c["line"] for c in paused["pending"]] == [9, 10]
    shown = operator("executions", "show", execution_id).stdout.splitlines()
    assert shown[1] == "tool       execute_python"
    assert operator("executions", "approve", execution_id, approve).returncode == 0
    assert operator("executions", "deny", execution_id, deny, "--reason", "no").returncode == 0

    # No --language: the execution's code tool, execute_python, says it.
    resumed = operator("executions", "resume", execution_id, "--tools", TOOLS)

    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["result"] == {
        "count": 1,
        "results": [
            {"refunded": "a"},
            "ApprovalDeniedError: Tool refund requires approval and was not approved: no",
        ],
    }
    assert [r["order"] for r in operator.runs("refund")] == ["a"]
    assert len(operator.runs("counter")) == 1


def test_resuming_with_calls_still_undecided_exits_3(operator: Operator) -> None:
    paused = run_paused(operator)
    execution_id = paused["execution_id"]

    again = operator("executions", "resume", execution_id, "--tools", TOOLS)

    assert again.returncode == 3
    assert json.loads(again.stdout)["pending"] == paused["pending"]
    assert operator.runs("refund") == []


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_the_store_may_be_a_redis_or_postgres_url(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    operator = Operator(tmp_path, store_location(kind, request, tmp_path))
    paused = run_paused(operator)
    execution_id = paused["execution_id"]
    for call in paused["pending"]:
        assert operator("executions", "approve", execution_id, call["call_id"]).returncode == 0

    resumed = operator("executions", "resume", execution_id, "--tools", TOOLS)

    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["result"]["results"] == [
        {"refunded": "a"},
        {"refunded": "b"},
    ]
    listed = operator("executions", "list", "--status", "completed", "--json")
    assert [e["execution_id"] for e in json.loads(listed.stdout)] == [execution_id]


def test_refusals_and_bad_usage(operator: Operator, tmp_path: Path) -> None:
    unknown = operator("executions", "show", "nope")
    assert (unknown.returncode, unknown.stderr) == (
        1,
        "Error: There is no execution nope in this store (it never existed here, or it "
        "finished and was pruned).\n",
    )
    no_store = operator("executions", "list", store=False)
    assert (no_store.returncode, no_store.stderr) == (
        2,
        "Error: name the store with --store (or $CODEMODE_STORE)\n",
    )
    bad = Operator(tmp_path, "mysql://db/app")("executions", "list")
    assert bad.returncode == 2
    assert bad.stderr.startswith("Error: --store mysql://db/app: unknown store scheme mysql://")
    status = operator("executions", "list", "--status", "waiting")
    assert (status.returncode, status.stderr) == (
        2,
        "Error: --status is one of running, paused, completed, failed, expired, not 'waiting'\n",
    )
    assert operator("executions", "list").stdout == "No executions.\n"
    assert operator("executions", "pending").stdout == "Nothing waits for a decision.\n"
    assert operator("executions", "prune").stdout == "Expired 0, deleted 0.\n"


def test_the_store_may_come_from_the_environment(operator: Operator) -> None:
    run_paused(operator)
    operator.env["CODEMODE_STORE"] = operator.store

    listed = operator("executions", "list", "--json", store=False)

    assert [e["status"] for e in json.loads(listed.stdout)] == ["paused"]
