"""Durable executions across real processes: each step is a separate Python process
(tests/durable_app.py) sharing one SQLite file, as a deployment on one host would; for programs
in each language (TypeScript in Deno, Python in Monty)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from _helpers import LANGUAGES, Matches

APP = Path(__file__).with_name("durable_app.py")
_SUFFIX = {"typescript": ".ts", "python": ".py"}


class App:
    """Runs durable_app.py commands against one store, counting tool runs in ``dir``; programs
    are in ``language``."""

    def __init__(self, dir: Path, language: str = "typescript") -> None:
        self.dir = dir
        self.language = language
        self.db = str(dir / "runs.db")
        self.env = {**os.environ, "DURABLE_APP_DIR": str(dir), "DURABLE_APP_LANGUAGE": language}
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(__file__).parents[1] / "src"), self.env.get("PYTHONPATH", "")]
        )

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            str(APP),
            *args,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )

    async def result(self, process: asyncio.subprocess.Process) -> Any:
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0, err.decode()
        return json.loads(out)

    def __call__(self, programs: dict[str, Any]) -> Any:
        return programs[self.language]

    def program(self, code: str) -> Path:
        path = self.dir / f"program{_SUFFIX[self.language]}"
        path.write_text(code)
        return path

    async def run(self, code: str | dict[str, str]) -> Any:
        path = self.program(code if isinstance(code, str) else self(code))
        return await self.result(await self.start("run", self.db, str(path)))

    async def resume(self, execution_id: str, decisions: dict[str, Any]) -> Any:
        (self.dir / "go").touch()
        return await self.result(
            await self.start("resume", self.db, execution_id, json.dumps(decisions))
        )

    async def pending(self) -> Any:
        return await self.result(await self.start("pending", self.db))

    def runs(self, tool: str) -> list[Any]:
        path = self.dir / f"{tool}.log"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(params=LANGUAGES)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> App:
    return App(tmp_path, request.param)


# Two gated calls made together, after a counter, with the clock and random values read first.
PROGRAM = {
    "typescript": """
const seen = { now: Date.now(), random: Math.random(), uuid: crypto.randomUUID() };
const count = await external_counter({});
const results = await Promise.all([
  external_refund({ order: "a", amount: 500 }),
  external_refund({ order: "b", amount: 900 }).catch((e) => `${e.name}: ${e.message}`),
]);
return { seen, count, results };
""",
    "python": """
import asyncio, os, random, time
seen = {"now": time.time(), "random": random.random(), "bytes": os.urandom(4).hex()}
count = await external_counter()
async def attempt(call):
    try:
        return await call
    except PermissionError as e:
        return f"ApprovalDeniedError: {e}"
results = await asyncio.gather(
    external_refund(order="a", amount=500),
    attempt(external_refund(order="b", amount=900)),
)
{"seen": seen, "count": count, "results": results}
""",
}


async def test_a_pause_in_one_process_resumes_in_another(app: App) -> None:
    paused = await app.run(PROGRAM)  # that process has exited

    assert (paused["status"], paused["error"]["name"]) == ("paused", "ExecutionPaused")
    execution_id = paused["execution_id"]
    assert [(c["tool_id"], c["input"]["order"], c["kind"]) for c in paused["pending"]] == [
        ("refund", "a", "approval"),
        ("refund", "b", "approval"),
    ]
    assert [p["call"]["call_id"] for p in await app.pending()] == [
        c["call_id"] for c in paused["pending"]
    ]
    approve, deny = (c["call_id"] for c in paused["pending"])

    done = await app.resume(execution_id, {approve: True, deny: "not this one"})

    assert done == {
        "success": True,
        "result": {
            "seen": done["result"]["seen"],
            "count": 1,
            "results": [
                {"refunded": "a"},
                "ApprovalDeniedError: Tool refund requires approval and was not approved: "
                "not this one",
            ],
        },
        "logs": [],
        "execution_id": execution_id,
    }
    # No repeated side effect: the counter ran once (before the pause), the refund once (after).
    assert app.runs("counter") == [{"key": f"{execution_id}:1"}]
    assert app.runs("refund") == [{"order": "a", "key": f"{execution_id}:2"}]
    # The clock and random values the first process saw are the ones the second replayed
    # (the test below compares them); here, that they are what each language reads.
    seen = done["result"]["seen"]
    assert sorted(seen) == app(
        {"typescript": ["now", "random", "uuid"], "python": ["bytes", "now", "random"]}
    )
    if app.language == "typescript":
        uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}"
        assert seen["uuid"] == Matches(uuid)
    again = await app.resume(execution_id, {approve: True})
    assert again["error"]["name"] == "ExecutionNotPausedError"
    assert len(app.runs("refund")) == 1


async def test_the_values_seen_before_the_pause_are_replayed_in_the_new_process(
    app: App,
) -> None:
    code = {
        "typescript": """
    const seen = { now: Date.now(), random: Math.random(), uuid: crypto.randomUUID() };
    console.log(JSON.stringify(seen));
    await external_refund({ order: "a", amount: 500 });
    return seen;
    """,
        "python": """
import json, os, random, time
seen = {"now": time.time(), "random": random.random(), "bytes": os.urandom(16).hex()}
print(json.dumps(seen))
await external_refund(order="a", amount=500)
seen
""",
    }
    paused = await app.run(code)
    done = await app.resume(paused["execution_id"], {paused["pending"][0]["call_id"]: True})
    assert done["result"] == json.loads(paused["logs"][0])
    assert done["logs"] == paused["logs"]


async def test_a_concurrent_double_resume_runs_exactly_once(app: App) -> None:
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
    assert refused["error"]["message"] == Matches(
        rf"Execution {paused['execution_id']} (is running now .*|is not paused: it completed .*)"
    )
    assert sorted(r["order"] for r in app.runs("refund")) == ["a", "b"]  # each once
    assert len(app.runs("counter")) == 1


async def _kill_during_slow_call(app: App, tool: str) -> str:
    path = app.program(
        app(
            {
                "typescript": f"""
        await external_counter({{}});
        let outcome;
        try {{ outcome = await external_{tool}({{ why: "slow" }}) }}
        catch (e) {{ outcome = `${{e.name}}: ${{e.message}}` }}
        return {{ outcome, count: await external_counter({{}}) }};
        """,
                "python": f"""
await external_counter()
try:
    outcome = await external_{tool}(why="slow")
except PermissionError as e:
    outcome = f"ApprovalDeniedError: {{e}}"
{{"outcome": outcome, "count": await external_counter()}}
""",
            }
        )
    )
    (app.dir / "hold").touch()
    process = await app.start("run", app.db, str(path))
    for _ in range(1500):  # the slow call has started (it writes its marker first)
        if app.runs("slow"):
            break
        await asyncio.sleep(0.02)
    assert app.runs("slow"), (await process.communicate())[1].decode()
    os.killpg(process.pid, signal.SIGKILL)  # the host and its sandbox, mid-call
    await process.wait()
    (app.dir / "hold").unlink()
    [started] = app.runs("slow")
    return str(started["key"]).rsplit(":", 1)[0]


async def test_a_kill_during_a_live_call_leaves_it_in_doubt_not_run_again(app: App) -> None:
    execution_id = await _kill_during_slow_call(app, "slow")

    [waiting] = await app.pending()  # seen at once: the owner process is gone
    assert waiting["execution_id"] == execution_id
    assert waiting["call"] == {
        "call_id": Matches(r"2-[0-9a-f]{12}"),
        "tool_id": "slow",
        "input": {"why": "slow"},
        "line": 4,
        "kind": "in_doubt",
    }
    paused = await app.resume(execution_id, {})  # nothing decided: it waits, it does not rerun
    assert paused["status"] == "paused"
    assert paused["pending"] == [waiting["call"]]
    assert paused["error"]["message"] == Matches(
        r"The program is paused: 1 tool call is waiting for a decision by a person \(not by "
        r'you\): external_slow\(\{"why":"slow"\}\) at line 4 is in doubt: it was running when '
        r"its host stopped, so it may or may not have taken effect; an operator decides whether "
        r"to run it again\. .*"
    )
    assert len(app.runs("slow")) == 1

    done = await app.resume(execution_id, {waiting["call"]["call_id"]: "it went through"})
    assert done["result"] == {
        "outcome": "ApprovalDeniedError: Tool slow was in doubt after its host stopped and was "
        "not run again: it went through",
        "count": 2,
    }
    assert len(app.runs("slow")) == 1 and len(app.runs("counter")) == 2


async def test_an_idempotent_call_in_doubt_runs_again_with_the_same_key(app: App) -> None:
    execution_id = await _kill_during_slow_call(app, "slowIdempotent")

    done = await app.resume(execution_id, {})

    assert done["result"] == {"outcome": "done", "count": 2}
    key = f"{execution_id}:2"
    assert app.runs("slow") == [{"key": key}, {"key": key}]  # same key: an API can deduplicate


async def test_the_approvals_example_runs_end_to_end(tmp_path: Path) -> None:
    example = Path(__file__).parents[1] / "examples" / "approvals.py"
    env = {**os.environ, "APPROVALS_DB": str(tmp_path / "approvals.db")}

    async def run(*args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(example), *args, env=env, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0
        return out.decode()

    first = await run("run")
    assert first.startswith("  [refund tool] o1: 40.0")  # under 100: no approval needed
    paused = json.loads(first[first.index("{") :])
    execution_id = paused["execution_id"]
    big, bigger = (call["call_id"] for call in paused["pending"])
    queue = (await run("pending")).splitlines()
    assert [line.split()[:2] for line in queue] == [[execution_id, big], [execution_id, bigger]]
    assert await run("approve", execution_id, big) == f"approved {big}\n"
    assert await run("deny", execution_id, bigger, "no receipt") == f"denied {bigger}\n"
    done = await run("resume", execution_id)
    assert done.startswith(f"  [refund tool] o2: 250.0 (key {execution_id}:5)\n")
    assert json.loads(done[done.index("{") :])["result"] == [
        {"orderId": "o1", "refunded": 40},
        {"orderId": "o2", "refunded": 250},
        "not refunded: Tool refund requires approval and was not approved: no receipt",
    ]
