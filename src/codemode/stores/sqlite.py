"""SqliteStore: the default ExecutionStore, one SQLite file in WAL mode.

Safe across processes on one host: every write is one ``BEGIN IMMEDIATE`` transaction (SQLite's
write lock), so a claim, a decision or a fenced record is atomic against every other process
using the file. The stdlib ``sqlite3`` module blocks, so each store runs its connection on one
thread of its own and the coroutines wait for it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from ._base import (
    CallRecord,
    Decision,
    DecisionError,
    ExecutionExpiredError,
    ExecutionNotFoundError,
    ExecutionState,
    ExecutionStatus,
    ExecutionSummary,
    LeaseLostError,
    NewExecution,
    PendingApproval,
    PruneReport,
    seconds,
    step_of,
)
from ._rows import (
    CALL_COLUMNS,
    EXECUTION_COLUMNS,
    CommitThenRaise,
    call_from_row,
    call_row,
    state_from_row,
)
from ._rules import apply_decisions, expiry_of, refuse_claim, refuse_decide

__all__ = ["SqliteStore"]

T = TypeVar("T")

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    code_mode_id TEXT NOT NULL,
    code TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    pause_ttl REAL NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    passes INTEGER NOT NULL,
    owner TEXT,
    lease_until REAL,
    expires_at REAL,
    finished_at REAL,
    result TEXT
);
CREATE INDEX IF NOT EXISTS executions_by_status ON executions (status, updated_at);
CREATE TABLE IF NOT EXISTS calls (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    tool_id TEXT NOT NULL,
    input TEXT,
    input_hash TEXT NOT NULL,
    line INTEGER,
    state TEXT NOT NULL,
    value TEXT,
    error TEXT,
    ran INTEGER NOT NULL,
    approved INTEGER,
    reason TEXT,
    decided_at REAL,
    PRIMARY KEY (execution_id, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tape (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    chunk TEXT NOT NULL,
    PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;
"""


class SqliteStore:
    """An ``ExecutionStore`` in one SQLite file (created 0600 if missing).

    ``keep_finished`` is how long ``prune`` keeps finished executions for audit. ``synchronous``
    is SQLite's: ``"full"`` (the default) syncs each commit to disk, so a recorded call survives
    a power loss; ``"normal"`` survives a crash of the process but not of the machine, and
    commits faster. ``clock`` is for tests.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        keep_finished: timedelta | float = timedelta(days=7),
        synchronous: Literal["full", "normal"] = "full",
        busy_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if synchronous not in ("full", "normal"):
            raise ValueError(f'synchronous must be "full" or "normal", got {synchronous!r}')
        self.path = str(path)
        self.keep_finished = seconds(keep_finished, "keep_finished")
        self._synchronous = synchronous.upper()
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="codemode-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    # -- plumbing --------------------------------------------------------------------------------
    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._conn = self._connect()
        return fn(self._conn)

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:" and not os.path.exists(self.path):
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # Journals hold tool inputs and results: only this user may read them.
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > _SCHEMA_VERSION:
            conn.close()
            raise RuntimeError(
                f"{self.path} was written by a newer codemode (schema {version}, this one knows "
                f"{_SCHEMA_VERSION}); upgrade codemode to use it"
            )
        if version < _SCHEMA_VERSION:  # idempotent, so two processes may both do it
            conn.executescript(
                f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version = {_SCHEMA_VERSION}; COMMIT;"
            )
        return conn

    async def _write(self, fn: Callable[[sqlite3.Connection, float], T]) -> T:
        """Run ``fn`` in one ``BEGIN IMMEDIATE`` transaction (the file's write lock)."""

        def transaction(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn, self._clock())
            except CommitThenRaise as wrapped:
                conn.execute("COMMIT")
                raise wrapped.error from None
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._run(transaction)

    async def aclose(self) -> None:
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close_connection)
        self._closed = True
        self._executor.shutdown(wait=False)

    def close(self) -> None:
        """``aclose`` for callers without an event loop."""
        if self._closed:
            return
        self._executor.submit(self._close_connection).result()
        self._closed = True
        self._executor.shutdown(wait=False)

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- reading ---------------------------------------------------------------------------------
    def _state(
        self, conn: sqlite3.Connection, execution_id: str, now: float, *, full: bool = True
    ) -> ExecutionState | None:
        row = conn.execute(
            f"SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?", (execution_id,)
        ).fetchone()
        if row is None:
            return None
        calls: tuple[CallRecord, ...] = ()
        tape: tuple[str, ...] = ()
        calls = tuple(
            call_from_row(r)
            for r in conn.execute(
                f"SELECT {CALL_COLUMNS} FROM calls WHERE execution_id = ? ORDER BY step",
                (execution_id,),
            )
        )
        if full:
            tape = tuple(
                r[0]
                for r in conn.execute(
                    "SELECT chunk FROM tape WHERE execution_id = ? ORDER BY seq", (execution_id,)
                )
            )
        return state_from_row(row, now, calls, tape)

    async def get(self, execution_id: str) -> ExecutionState | None:
        return await self._run(lambda conn: self._state(conn, execution_id, self._clock()))

    async def pending(self, *, limit: int | None = None) -> list[PendingApproval]:
        def read(conn: sqlite3.Connection) -> list[PendingApproval]:
            now = self._clock()
            rows = conn.execute(
                f"SELECT {EXECUTION_COLUMNS} FROM executions "
                "WHERE status = 'paused' OR status = 'running' ORDER BY updated_at, id"
            ).fetchall()
            found: list[PendingApproval] = []
            for row in rows:
                state = state_from_row(row, now, (), ())
                if state.status == "running" and not state.abandoned:
                    continue
                expiry = expiry_of(state)
                if expiry is not None and now > expiry:
                    continue
                calls = tuple(
                    call_from_row(r)
                    for r in conn.execute(
                        f"SELECT {CALL_COLUMNS} FROM calls WHERE execution_id = ? "
                        "AND state IN ('pending', 'in_doubt', 'started') ORDER BY step",
                        (state.execution_id,),
                    )
                )
                state = state_from_row(row, now, calls, ())
                since = state.updated_at if state.status == "paused" else state.lease_until
                for call in state.waiting():
                    if call.approved is None:
                        found.append(
                            PendingApproval(
                                execution_id=state.execution_id,
                                code_mode_id=state.code_mode_id,
                                call=call.pending_call(),
                                since=since or state.updated_at,
                                expires_at=expiry,
                            )
                        )
            found.sort(key=lambda p: (p.since, p.execution_id, p.call.call_id))
            return found if limit is None else found[:limit]

        return await self._run(read)

    async def executions(
        self, *, status: ExecutionStatus | None = None, limit: int = 100
    ) -> list[ExecutionSummary]:
        def read(conn: sqlite3.Connection) -> list[ExecutionSummary]:
            now = self._clock()
            where, args = ("WHERE status = ?", [status]) if status else ("", [])
            rows = conn.execute(
                f"SELECT {EXECUTION_COLUMNS} FROM executions {where} "
                "ORDER BY updated_at DESC, id LIMIT ?",
                [*args, limit],
            ).fetchall()
            summaries = []
            for row in rows:
                state = state_from_row(row, now, (), ())
                states = ("pending", "in_doubt", "started") if state.abandoned else WAITING_STATES
                marks = ",".join("?" * len(states))
                waiting = conn.execute(
                    f"SELECT COUNT(*) FROM calls WHERE execution_id = ? AND state IN ({marks})",
                    (state.execution_id, *states),
                ).fetchone()[0]
                summaries.append(
                    ExecutionSummary(
                        execution_id=state.execution_id,
                        code_mode_id=state.code_mode_id,
                        status=state.status,
                        created_at=state.created_at,
                        updated_at=state.updated_at,
                        passes=state.passes,
                        waiting=waiting,
                        expires_at=expiry_of(state),
                        finished_at=state.finished_at,
                        abandoned=state.abandoned,
                    )
                )
            return summaries

        return await self._run(read)

    # -- writing ---------------------------------------------------------------------------------
    async def create(self, execution: NewExecution, *, owner: str, lease: float) -> None:
        def write(conn: sqlite3.Connection, now: float) -> None:
            conn.execute(
                f"INSERT INTO executions ({EXECUTION_COLUMNS}) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?, ?, 1, ?, ?, NULL, NULL, NULL)",
                (
                    execution.execution_id,
                    execution.code_mode_id,
                    execution.code,
                    execution.fingerprint,
                    execution.pause_ttl,
                    now,
                    now,
                    owner,
                    now + lease,
                ),
            )

        await self._write(write)

    async def claim(
        self,
        execution_id: str,
        *,
        owner: str,
        lease: float,
        decisions: Mapping[str, Decision] | None = None,
    ) -> ExecutionState:
        def write(conn: sqlite3.Connection, now: float) -> ExecutionState:
            state = self._loaded(conn, execution_id, now)
            refusal = refuse_claim(state, now)
            if isinstance(refusal, ExecutionExpiredError):
                _mark_expired(conn, state)
                raise CommitThenRaise(refusal)
            if refusal is not None:
                raise refusal
            _save_calls(conn, execution_id, apply_decisions(state, decisions or {}, now))
            conn.execute(
                "UPDATE executions SET status = 'running', owner = ?, lease_until = ?, "
                "expires_at = NULL, passes = passes + 1, updated_at = ? WHERE id = ?",
                (owner, now + lease, now, execution_id),
            )
            claimed = self._state(conn, execution_id, now)
            assert claimed is not None
            return claimed

        return await self._write(write)

    async def decide(self, execution_id: str, call_id: str, decision: Decision) -> CallRecord:
        def write(conn: sqlite3.Connection, now: float) -> CallRecord:
            state = self._loaded(conn, execution_id, now, full=False)
            refusal = refuse_decide(state, now)
            if isinstance(refusal, ExecutionExpiredError):
                _mark_expired(conn, state)
                raise CommitThenRaise(refusal)
            if refusal is not None:
                raise refusal
            step = step_of(call_id)
            decided_now = apply_decisions(state, {call_id: decision}, now)
            changed = [c for c in decided_now if c.step == step]
            _save_calls(conn, execution_id, changed)
            decided = next(
                (c for c in state.waiting() if c.call_id == call_id), None
            )  # unchanged when decided the same way before
            result = changed[0] if changed else decided
            if result is None:  # apply_decisions raises first; kept for the type checker
                raise DecisionError(f"Execution {execution_id} has no call {call_id}.")
            return result

        return await self._write(write)

    def _loaded(
        self, conn: sqlite3.Connection, execution_id: str, now: float, *, full: bool = True
    ) -> ExecutionState:
        state = self._state(conn, execution_id, now, full=full)
        if state is None:
            raise ExecutionNotFoundError(
                f"There is no execution {execution_id} in this store (it never existed here, "
                "or it finished and was pruned)."
            )
        return state

    async def record(
        self,
        execution_id: str,
        *,
        owner: str,
        calls: Sequence[CallRecord] = (),
        tape: Sequence[str] = (),
    ) -> None:
        rows = _call_rows(execution_id, calls)  # built here: the store's thread mostly waits on C

        def write(conn: sqlite3.Connection, now: float) -> None:
            _check_owner(conn, execution_id, owner)
            _save_rows(conn, rows)
            _append_tape(conn, execution_id, tape)

        await self._write(write)

    async def finish(
        self,
        execution_id: str,
        *,
        owner: str,
        status: Literal["paused", "completed", "failed"],
        result: Mapping[str, Any] | None = None,
        calls: Sequence[CallRecord] = (),
        tape: Sequence[str] = (),
    ) -> None:
        if status not in ("paused", "completed", "failed"):
            raise ValueError(f"a pass ends paused, completed or failed, not {status!r}")

        rows = _call_rows(execution_id, calls)
        text = None if result is None else json.dumps(result, ensure_ascii=False)

        def write(conn: sqlite3.Connection, now: float) -> None:
            _check_owner(conn, execution_id, owner)
            _save_rows(conn, rows)
            _append_tape(conn, execution_id, tape)
            if status == "paused":
                conn.execute(
                    "UPDATE executions SET status = 'paused', owner = NULL, lease_until = NULL, "
                    "expires_at = ? + pause_ttl, updated_at = ?, result = ? WHERE id = ?",
                    (now, now, text, execution_id),
                )
            else:
                conn.execute(
                    "UPDATE executions SET status = ?, owner = NULL, lease_until = NULL, "
                    "expires_at = NULL, finished_at = ?, updated_at = ?, result = ? WHERE id = ?",
                    (status, now, now, text, execution_id),
                )

        await self._write(write)

    async def prune(self, *, keep_finished: timedelta | float | None = None) -> PruneReport:
        keep = self.keep_finished if keep_finished is None else seconds(keep_finished, "keep")

        def write(conn: sqlite3.Connection, now: float) -> PruneReport:
            expired = conn.execute(
                "UPDATE executions SET status = 'expired', finished_at = expires_at, "
                "updated_at = ?, owner = NULL WHERE status = 'paused' AND expires_at < ?",
                (now, now),
            ).rowcount
            expired += conn.execute(
                "UPDATE executions SET status = 'expired', finished_at = lease_until + pause_ttl,"
                " updated_at = ?, owner = NULL, lease_until = NULL "
                "WHERE status = 'running' AND lease_until + pause_ttl < ?",
                (now, now),
            ).rowcount
            deleted = conn.execute(
                "DELETE FROM executions WHERE status IN ('completed', 'failed', 'expired') "
                "AND finished_at < ?",
                (now - keep,),
            ).rowcount
            return PruneReport(expired=expired, deleted=deleted)

        return await self._write(write)


WAITING_STATES = ("pending", "in_doubt")


def _check_owner(conn: sqlite3.Connection, execution_id: str, owner: str) -> None:
    row = conn.execute(
        "SELECT status, owner FROM executions WHERE id = ?", (execution_id,)
    ).fetchone()
    if row is None or row[0] != "running" or row[1] != owner:
        now_status = "gone" if row is None else row[0]
        raise LeaseLostError(
            f"Execution {execution_id} is no longer held by this pass (it is {now_status}; "
            "another process took it over or it was pruned), so nothing was recorded."
        )


def _mark_expired(conn: sqlite3.Connection, state: ExecutionState) -> None:
    conn.execute(
        "UPDATE executions SET status = 'expired', finished_at = ?, owner = NULL, "
        "lease_until = NULL, updated_at = ? WHERE id = ?",
        (expiry_of(state), expiry_of(state), state.execution_id),
    )


def _save_calls(conn: sqlite3.Connection, execution_id: str, calls: Sequence[CallRecord]) -> None:
    _save_rows(conn, _call_rows(execution_id, calls))


def _call_rows(execution_id: str, calls: Sequence[CallRecord]) -> list[tuple[Any, ...]]:
    return [call_row(execution_id, call) for call in calls]


def _save_rows(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    conn.executemany(
        f"INSERT INTO calls (execution_id, {CALL_COLUMNS}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (execution_id, step) DO UPDATE SET name = excluded.name, "
        "tool_id = excluded.tool_id, input = excluded.input, input_hash = excluded.input_hash, "
        "line = excluded.line, state = excluded.state, value = excluded.value, "
        "error = excluded.error, ran = excluded.ran, approved = excluded.approved, "
        "reason = excluded.reason, decided_at = excluded.decided_at",
        rows,
    )


def _append_tape(conn: sqlite3.Connection, execution_id: str, tape: Sequence[str]) -> None:
    if not tape:
        return
    start = conn.execute(
        "SELECT COALESCE(MAX(seq) + 1, 0) FROM tape WHERE execution_id = ?", (execution_id,)
    ).fetchone()[0]
    conn.executemany(
        "INSERT INTO tape (execution_id, seq, chunk) VALUES (?, ?, ?)",
        [(execution_id, start + i, chunk) for i, chunk in enumerate(tape)],
    )
