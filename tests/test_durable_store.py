"""Every store against the ExecutionStore contract: claims, compare-and-set decisions, fencing,
expiry, the approval queue and pruning, in one process and across processes. Each test runs
against SqliteStore, RedisStore and PostgresStore (real servers the tests start, see
tests/_servers.py), so the stores behave alike."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from codemode import PendingCall
from codemode.stores import (
    CallError,
    CallRecord,
    DecisionError,
    ExecutionExpiredError,
    ExecutionNotFoundError,
    ExecutionNotPausedError,
    ExecutionStore,
    LeaseLostError,
    NewExecution,
    PruneReport,
    SqliteStore,
    open_store,
)
from codemode.stores._base import new_owner

STORES = ["sqlite", "redis", "postgres"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def call(step: int, state: str, **extra: Any) -> CallRecord:
    return CallRecord(
        step=step,
        name="refund",
        tool_id="refund",
        input_json=json.dumps({"order": f"o{step}"}),
        input_hash=f"{step:02d}" + "ab" * 31,
        line=step + 1,
        state=state,  # type: ignore[arg-type]
        **extra,
    )


C1, C2, C3 = "1-01ababababab", "2-02ababababab", "3-03ababababab"


async def paused(store: ExecutionStore, execution_id: str = "e1", ttl: float = 3600) -> str:
    """An execution that ran one call and waits on two."""
    owner = new_owner()
    await store.create(
        NewExecution(execution_id, "execute_typescript", "return 1", "{}", ttl),
        owner=owner,
        lease=60,
    )
    await store.record(
        execution_id,
        owner=owner,
        calls=[call(1, "ok", value={"total": 3}, ran=True)],
        tape=['{"e0":0,"e":["s1"]}'],
    )
    await store.finish(
        execution_id,
        owner=owner,
        status="paused",
        calls=[call(2, "pending"), call(3, "pending")],
        tape=['{"e0":1,"e":["t1"]}'],
    )
    return execution_id


def store_location(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh, empty store of ``kind`` is: an SQLite file, or a key prefix / schema of
    its own on the Redis / Postgres server started for the module."""
    if kind == "sqlite":
        return str(tmp_path / "runs.db")
    unique = f"t{uuid.uuid4().hex[:16]}"
    if kind == "redis":
        return f"{request.getfixturevalue('redis_url')}?prefix={unique}"
    return f"{request.getfixturevalue('postgres_dsn')}?schema={unique}"


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """An empty store of each kind, on a clock the test moves."""
    clock = Clock()
    async with open_store(store_location(request.param, request, tmp_path), clock=clock) as s:  # type: ignore[attr-defined]
        s.clock = clock
        yield s


async def test_it_is_an_execution_store(store: ExecutionStore) -> None:
    assert isinstance(store, ExecutionStore)


async def test_an_sqlite_file_is_private(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "runs.db") as store:
        await paused(store)
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


async def test_a_paused_execution_reads_back_whole(store: ExecutionStore) -> None:
    await paused(store)
    state = await store.get("e1")
    assert state is not None
    assert (state.status, state.passes, state.owner, state.abandoned) == ("paused", 1, None, False)
    assert state.expires_at == store.clock.now + 3600  # type: ignore[attr-defined]
    assert [(c.step, c.state) for c in state.calls] == [(1, "ok"), (2, "pending"), (3, "pending")]
    assert state.calls[0].value == {"total": 3}
    assert state.tape == ('{"e0":0,"e":["s1"]}', '{"e0":1,"e":["t1"]}')
    assert [c.call_id for c in state.waiting()] == [C2, C3]
    assert await store.get("nope") is None


async def test_the_approval_queue_lists_undecided_calls_across_executions(
    store: ExecutionStore,
) -> None:
    await paused(store, "e1")
    store.clock.now += 10  # type: ignore[attr-defined]
    await paused(store, "e2")
    await store.decide("e1", C2, True)
    queue = await store.pending()
    assert [(p.execution_id, p.call.call_id) for p in queue] == [
        ("e1", C3),
        ("e2", C2),
        ("e2", C3),
    ]
    assert queue[0].call == PendingCall(
        call_id=C3, tool_id="refund", input={"order": "o3"}, line=4, kind="approval"
    )
    assert len(await store.pending(limit=1)) == 1


async def test_decisions_are_compare_and_set_on_the_call_id(store: ExecutionStore) -> None:
    await paused(store)
    decided = await store.decide("e1", C2, "too expensive")
    assert (decided.approved, decided.reason) == (False, "too expensive")
    # The same decision again is a no-op; another one is refused.
    await store.decide("e1", C2, "too expensive")
    with pytest.raises(DecisionError) as err:
        await store.decide("e1", C2, True)
    assert err.value.message == (
        "Call 2-02ababababab of execution e1 was already denied (too expensive); "
        "a decision cannot be changed."
    )
    # A call id with the right step but another input hash (a stale UI) decides nothing.
    with pytest.raises(DecisionError) as err:
        await store.decide("e1", "3-ffffffffffff", True)
    assert err.value.message == (
        "Execution e1 has no call 3-ffffffffffff; the calls waiting are: "
        "2-02ababababab, 3-03ababababab."
    )
    with pytest.raises(DecisionError, match=r"does not wait for a decision \(it is ok\)"):
        await store.decide("e1", C1, True)
    with pytest.raises(DecisionError, match="must not be empty"):
        await store.decide("e1", C3, " ")
    with pytest.raises(ExecutionNotFoundError, match="There is no execution nope"):
        await store.decide("nope", "1-x", True)
    state = await store.get("e1")
    assert state is not None and state.calls[2].approved is None


async def test_a_claim_applies_decisions_atomically_and_runs_once(store: ExecutionStore) -> None:
    await paused(store)
    with pytest.raises(DecisionError):  # one bad decision: nothing applied, nothing claimed
        await store.claim("e1", owner=new_owner(), lease=60, decisions={C2: True, "9-x": True})
    state = await store.get("e1")
    assert state is not None and state.status == "paused" and state.calls[1].approved is None

    owner = new_owner()
    claimed = await store.claim("e1", owner=owner, lease=60, decisions={C2: True})
    assert (claimed.status, claimed.owner, claimed.passes) == ("running", owner, 2)
    assert claimed.calls[1].approved is True and claimed.tape == state.tape
    with pytest.raises(ExecutionNotPausedError) as err:
        await store.claim("e1", owner=new_owner(), lease=60)
    assert err.value.status == "running"
    assert err.value.message.startswith("Execution e1 is running now (its lease runs until ")
    with pytest.raises(ExecutionNotPausedError, match="decide its calls once it pauses"):
        await store.decide("e1", C3, True)

    await store.finish("e1", owner=owner, status="completed", result={"success": True})
    with pytest.raises(ExecutionNotPausedError, match=r"^Execution e1 is not paused: it completed"):
        await store.claim("e1", owner=new_owner(), lease=60)
    state = await store.get("e1")
    assert state is not None and state.result == {"success": True}


async def test_of_many_claims_at_once_in_one_process_exactly_one_wins(
    store: ExecutionStore,
) -> None:
    await paused(store)
    outcomes = await asyncio.gather(
        *(store.claim("e1", owner=new_owner(), lease=60, decisions={C2: True}) for _ in range(8)),
        return_exceptions=True,
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["ExecutionNotPausedError"] * 7 + [
        "ExecutionState"
    ]
    state = await store.get("e1")
    assert state is not None and (state.status, state.passes) == ("running", 2)


async def test_writes_are_fenced_by_the_lease(store: ExecutionStore) -> None:
    await paused(store)
    first = new_owner()
    await store.claim("e1", owner=first, lease=60)
    store.clock.now += 61  # type: ignore[attr-defined]  # the lease ran out: abandoned
    state = await store.get("e1")
    assert state is not None and state.abandoned
    second = new_owner()
    await store.claim("e1", owner=second, lease=60)
    with pytest.raises(LeaseLostError, match="no longer held by this pass"):
        await store.record("e1", owner=first, calls=[call(2, "started")])
    with pytest.raises(LeaseLostError):
        await store.finish("e1", owner=first, status="completed")
    await store.record("e1", owner=second, calls=[call(2, "started", ran=True)])


async def test_started_calls_of_an_abandoned_execution_are_in_doubt(store: ExecutionStore) -> None:
    owner = new_owner()
    await store.create(NewExecution("e1", "t", "code", "{}", 3600), owner=owner, lease=30)
    await store.record("e1", owner=owner, calls=[call(1, "ok", value=1), call(2, "started")])
    assert await store.pending() == []  # its owner may still be running it
    store.clock.now += 31  # type: ignore[attr-defined]
    [waiting] = await store.pending()
    assert waiting.call.kind == "in_doubt" and waiting.call.call_id == C2
    [summary] = await store.executions()
    assert (summary.status, summary.abandoned, summary.waiting) == ("running", True, 1)
    decided = await store.decide("e1", C2, False)
    assert (decided.state, decided.approved) == ("in_doubt", False)
    claimed = await store.claim("e1", owner=new_owner(), lease=30)
    assert [(c.step, c.state, c.approved) for c in claimed.calls] == [
        (1, "ok", None),
        (2, "in_doubt", False),
    ]


async def test_an_owner_that_died_on_this_host_is_gone_at_once(
    store: ExecutionStore, tmp_path: Path
) -> None:
    script = "from codemode.stores._base import new_owner; print(new_owner())"
    dead = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.strip()
    await store.create(NewExecution("e1", "t", "code", "{}", 3600), owner=dead, lease=3600)
    state = await store.get("e1")
    assert state is not None and state.abandoned
    await store.create(NewExecution("e2", "t", "code", "{}", 3600), owner=new_owner(), lease=3600)
    state = await store.get("e2")
    assert state is not None and not state.abandoned


async def test_expiry_is_enforced_on_decide_and_claim(store: ExecutionStore) -> None:
    await paused(store, ttl=60)
    store.clock.now += 61  # type: ignore[attr-defined]
    assert await store.pending() == []
    with pytest.raises(ExecutionExpiredError) as err:
        await store.decide("e1", C2, True)
    assert err.value.message == (
        "Execution e1 expired at 2023-11-14 22:14:20 UTC: it waited longer than its pause_ttl "
        "of 1min, so none of its waiting calls will run. Start a new execution if the task "
        "still needs doing."
    )
    state = await store.get("e1")
    assert state is not None and state.status == "expired"
    with pytest.raises(ExecutionNotPausedError, match="it expired at 2023-11-14 22:14:20 UTC"):
        await store.claim("e1", owner=new_owner(), lease=60)


async def test_prune_expires_and_deletes_after_the_retention(store: ExecutionStore) -> None:
    await paused(store, "e1", ttl=60)
    owner = new_owner()
    await store.create(NewExecution("e2", "t", "code", "{}", 60), owner=owner, lease=10)
    await store.finish("e2", owner=owner, status="completed", result={"success": True})
    store.clock.now += 120  # type: ignore[attr-defined]
    assert await store.prune() == PruneReport(expired=1, deleted=0)
    assert [(s.execution_id, s.status) for s in await store.executions()] == [
        ("e1", "expired"),
        ("e2", "completed"),
    ]
    store.clock.now += 7 * 86400  # type: ignore[attr-defined]
    assert await store.prune() == PruneReport(expired=0, deleted=2)
    assert await store.get("e1") is None
    await paused(store, "e3")
    assert await store.prune(keep_finished=1) == PruneReport(expired=0, deleted=0)


async def test_errors_recorded_for_calls_read_back(store: ExecutionStore) -> None:
    owner = new_owner()
    await store.create(NewExecution("e1", "t", "code", "{}", 60), owner=owner, lease=10)
    failed = call(1, "error", error=CallError("no such order", "LookupError"), ran=True)
    await store.record("e1", owner=owner, calls=[failed])
    state = await store.get("e1")
    assert state is not None and state.calls == (failed,)


async def test_any_text_a_tool_returned_reads_back_unchanged(store: ExecutionStore) -> None:
    # Non-ASCII, NUL, and a lone surrogate (a str Python allows, that UTF-8 cannot encode).
    value = {"text": "Zoë 日本 \u0000 \ud800", "emoji": "🙂"}
    owner = new_owner()
    await store.create(NewExecution("e1", "t", "code", "{}", 60), owner=owner, lease=10)
    await store.record("e1", owner=owner, calls=[call(1, "ok", value=value, ran=True)])
    state = await store.get("e1")
    assert state is not None and state.calls[0].value == value


CLAIMER = textwrap.dedent(
    """
    import asyncio, sys, time
    from codemode.stores import ExecutionNotPausedError, open_store
    from codemode.stores._base import new_owner

    async def main():
        store = open_store(sys.argv[1])
        while time.time() < float(sys.argv[2]):
            time.sleep(0.001)
        try:
            await store.claim("e1", owner=new_owner(), lease=60)
            print("claimed", flush=True)
        except ExecutionNotPausedError:
            print("refused", flush=True)
        sys.stdin.read()  # a claim's owner that exits is gone: hold it until all have tried
        await store.aclose()

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("kind", STORES)
async def test_of_many_processes_claiming_at_once_exactly_one_wins(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    location = store_location(kind, request, tmp_path)
    async with open_store(location) as store:  # type: ignore[attr-defined]
        await paused(store)
    start = time.time() + 1.5
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLAIMER,
            location,
            str(start),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(6)
    ]
    outputs = []
    for p in procs:
        assert p.stdout is not None
        outputs.append((await p.stdout.readline()).decode().strip())
    for p in procs:
        await p.communicate(b"")
    assert sorted(outputs) == ["claimed"] + ["refused"] * 5
