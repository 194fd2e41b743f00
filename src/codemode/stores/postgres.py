"""PostgresStore: durable executions in PostgreSQL, shared by every host of a deployment
(``pip install 'codemode[postgres]'``: psycopg 3 and its connection pool).

Every write is one transaction that first locks the execution's row (``SELECT ... FOR UPDATE``):
a claim, a decision and a fenced record of the same execution therefore happen one after the
other on any number of hosts, and each sees what the one before it committed. The record of a
call (the hot path) sends its lock, its writes and its commit together (pipeline mode). The
rules they apply are the ones every store shares (``_rules``). The tables live in a schema of
their own (``codemode`` unless told otherwise), created on first use and versioned.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal, TypeVar

from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

from ._base import (
    CallRecord,
    Decision,
    DecisionError,
    ExecutionExpiredError,
    ExecutionState,
    ExecutionStatus,
    ExecutionSummary,
    NewExecution,
    PendingApproval,
    PruneReport,
    seconds,
    step_of,
)
from ._remote import (
    ServerClock,
    lease_lost,
    not_found,
    pending_of,
    sorted_pending,
    split_option,
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

__all__ = ["PostgresStore"]

T = TypeVar("T")
Conn = AsyncConnection[Any]

SCHEMA_VERSION = 1

# {s} is the store's schema. Times are seconds since the epoch on the store's clock (float8
# round-trips a Python float exactly); JSON is kept as text, byte for byte as written (jsonb
# would reorder object keys, and a replayed value must be the value the program first saw).
_TABLES = """
CREATE TABLE {s}.executions (
    id text PRIMARY KEY,
    code_mode_id text NOT NULL,
    code text NOT NULL,
    fingerprint text NOT NULL,
    status text NOT NULL
        CHECK (status IN ('running', 'paused', 'completed', 'failed', 'expired')),
    pause_ttl float8 NOT NULL,
    created_at float8 NOT NULL,
    updated_at float8 NOT NULL,
    passes integer NOT NULL,
    owner text,
    lease_until float8,
    expires_at float8,
    finished_at float8,
    result text
);
CREATE INDEX executions_by_status ON {s}.executions (status, updated_at);
CREATE INDEX executions_by_update ON {s}.executions (updated_at DESC, id);
CREATE TABLE {s}.calls (
    execution_id text NOT NULL REFERENCES {s}.executions (id) ON DELETE CASCADE,
    step integer NOT NULL,
    name text NOT NULL,
    tool_id text NOT NULL,
    input text,
    input_hash text NOT NULL,
    line integer,
    state text NOT NULL,
    value text,
    error text,
    ran boolean NOT NULL,
    approved boolean,
    reason text,
    decided_at float8,
    PRIMARY KEY (execution_id, step)
);
CREATE TABLE {s}.tape (
    execution_id text NOT NULL REFERENCES {s}.executions (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    chunk text NOT NULL,
    PRIMARY KEY (execution_id, seq)
);
"""


class PostgresStore:
    """An ``ExecutionStore`` in PostgreSQL, for executions that pause on one host and resume on
    another.

    ``dsn`` is a libpq connection string or URL (``postgresql://user@host/db``); a
    ``schema=`` parameter in a URL (or the ``schema`` argument) names the schema the tables go
    in (default ``codemode``), created with them on first use. ``pool_size`` bounds the
    connections this store opens; ``keep_finished`` is how long ``prune`` keeps finished
    executions for audit. Times are the server's clock (``clock`` replaces it, for tests).

    The store opens its connections on first use, in that event loop: use it from one loop,
    and ``await store.aclose()`` (or ``async with``) when done.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        pool_size: int = 10,
        keep_finished: timedelta | float = timedelta(days=7),
        connect_timeout: float = 30.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(dsn, str) or not dsn:
            raise ValueError("PostgresStore needs a connection string, e.g. postgresql://host/db")
        dsn, from_url = split_option(dsn, "schema")
        schema = schema or from_url or "codemode"
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        self.schema = schema
        self.keep_finished = seconds(keep_finished, "keep_finished")
        self._dsn = dsn
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._opening: asyncio.Task[AsyncConnectionPool[Conn]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._guard: asyncio.Task[None] | None = None
        self._clock = ServerClock(self._server_time, clock)
        self._sql = _Statements(schema)

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r})"

    # -- plumbing --------------------------------------------------------------------------------
    async def _connection_pool(self) -> AsyncConnectionPool[Conn]:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                f"{self!r} was opened in another event loop; its connections belong to that "
                "loop. Create one store per event loop."
            )
        if self._pool is not None:
            return self._pool
        if self._opening is None:  # concurrent first uses share one opening
            self._opening = asyncio.ensure_future(self._open())
        try:
            self._pool = await asyncio.shield(self._opening)
        except BaseException:
            if self._opening.done():
                self._opening = None  # a failed opening is tried again on the next use
            raise
        return self._pool

    async def _open(self) -> AsyncConnectionPool[Conn]:
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self._dsn,
            min_size=1,
            max_size=self._pool_size,
            kwargs={"autocommit": True},
            # A connection is checked as it is taken (an empty query): after a restart or a
            # failover, a dead pooled connection is replaced rather than failing a write.
            check=AsyncConnectionPool.check_connection,
            timeout=self._connect_timeout,
            open=False,
            name=f"codemode-{self.schema}",
        )
        # The first connection is made here, not by the pool, so that a server that cannot be
        # reached fails the first use with libpq's reason (the pool would only time out).
        conn = await AsyncConnection.connect(
            self._dsn, autocommit=True, connect_timeout=max(1, round(self._connect_timeout))
        )
        async with conn:
            await self._migrate(conn)
        await pool.open()
        self._guard = asyncio.get_running_loop().create_task(_close_with_loop(pool))
        return pool

    async def _migrate(self, conn: Conn) -> None:
        """Create the schema and its tables if missing (under an advisory lock, so that hosts
        starting together create them once), and refuse tables of a newer codemode."""
        s = sql.Identifier(self.schema)
        version_table = f"{_quoted(self.schema)}.schema_version"
        async with conn.transaction():
            found = await (
                await conn.execute("SELECT to_regclass(%s)", (version_table,))
            ).fetchone()
            if found is None or found[0] is None:
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"codemode:{self.schema}",)
                )
                await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(s))
                await conn.execute(
                    sql.SQL(
                        "CREATE TABLE IF NOT EXISTS {}.schema_version (version integer)"
                    ).format(s)
                )
            cursor = await conn.execute(
                sql.SQL("SELECT max(version) FROM {}.schema_version").format(s)
            )
            row = await cursor.fetchone()
            version = 0 if row is None or row[0] is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"schema {self.schema} was written by a newer codemode (schema version "
                    f"{version}, this one knows {SCHEMA_VERSION}); upgrade codemode to use it"
                )
            if version < 1:
                await conn.execute(sql.SQL(_TABLES).format(s=s))
                await conn.execute(
                    sql.SQL("INSERT INTO {}.schema_version VALUES (%s)").format(s),
                    (SCHEMA_VERSION,),
                )

    async def _server_time(self) -> float:
        pool = await self._connection_pool()
        async with pool.connection() as conn:
            cursor = await conn.execute("SELECT extract(epoch FROM clock_timestamp())::float8")
            row = await cursor.fetchone()
            assert row is not None
            return float(row[0])

    async def _read(self, fn: Callable[[Conn, float], Awaitable[T]]) -> T:
        """Run ``fn`` in one read-only snapshot (what it reads was all committed together)."""
        pool = await self._connection_pool()
        now = await self._clock.now()
        async with pool.connection() as conn, conn.transaction():
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return await fn(conn, now)

    async def _write(self, fn: Callable[[Conn, float], Awaitable[T]]) -> T:
        """Run ``fn`` in one transaction; ``CommitThenRaise`` commits, then raises."""
        pool = await self._connection_pool()
        now = await self._clock.now()
        async with pool.connection() as conn:
            async with conn.transaction():
                try:
                    return await fn(conn, now)
                except CommitThenRaise as wrapped:
                    refusal = wrapped.error  # leaving the block normally commits
            raise refusal

    async def _fenced(
        self, execution_id: str, owner: str, fn: Callable[[Conn, float], Awaitable[None]]
    ) -> None:
        """Write what ``fn`` queues, in one transaction, only while ``owner`` holds the
        execution: the row lock, the check and the writes go to the server together (pipeline
        mode, one round trip), and a lost lease rolls the writes back."""
        pool = await self._connection_pool()
        now = await self._clock.now()
        async with pool.connection() as conn, conn.pipeline() as pipeline, conn.transaction():
            fence = await conn.execute(self._sql.lock_owner, (execution_id,))
            await fn(conn, now)
            await pipeline.sync()
            row = await fence.fetchone()
            if row is None or row[0] != "running" or row[1] != owner:
                raise lease_lost(execution_id, None if row is None else row[0])

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is None and self._opening is not None:
            try:
                pool = await self._opening
            except Exception:
                pool = None
        guard, self._guard = self._guard, None
        if guard is not None:
            guard.cancel()  # it closes the pool ...
            await asyncio.wait([guard])
        if pool is not None:
            await pool.close()  # ... unless it never started

    async def __aenter__(self) -> PostgresStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- reading ---------------------------------------------------------------------------------
    async def _state(
        self, conn: Conn, execution_id: str, now: float, *, lock: bool, full: bool = True
    ) -> ExecutionState | None:
        query = self._sql.lock_execution if lock else self._sql.execution
        row = await (await conn.execute(query, (execution_id,))).fetchone()
        if row is None:
            return None
        cursor = await conn.execute(self._sql.calls, (execution_id,))
        calls = tuple(call_from_row(r) for r in await cursor.fetchall())
        tape: tuple[str, ...] = ()
        if full:
            cursor = await conn.execute(self._sql.tape, (execution_id,))
            tape = tuple(r[0] for r in await cursor.fetchall())
        return state_from_row(row, now, calls, tape)

    async def get(self, execution_id: str) -> ExecutionState | None:
        async def read(conn: Conn, now: float) -> ExecutionState | None:
            return await self._state(conn, execution_id, now, lock=False)

        return await self._read(read)

    async def pending(self, *, limit: int | None = None) -> list[PendingApproval]:
        async def read(conn: Conn, now: float) -> list[PendingApproval]:
            cursor = await conn.execute(self._sql.waiting_calls)
            grouped: dict[str, tuple[Sequence[Any], list[CallRecord]]] = {}
            for row in await cursor.fetchall():
                execution, call = row[:14], row[14:]
                entry = grouped.setdefault(execution[0], (execution, []))
                entry[1].append(call_from_row(call))
            found: list[PendingApproval] = []
            for execution, calls in grouped.values():
                found += pending_of(state_from_row(execution, now, tuple(calls), ()), now)
            return sorted_pending(found, limit)

        return await self._read(read)

    async def executions(
        self, *, status: ExecutionStatus | None = None, limit: int = 100
    ) -> list[ExecutionSummary]:
        async def read(conn: Conn, now: float) -> list[ExecutionSummary]:
            if status is None:
                cursor = await conn.execute(self._sql.summaries, (limit,))
            else:
                cursor = await conn.execute(self._sql.summaries_of_status, (status, limit))
            summaries = []
            for row in await cursor.fetchall():
                state = state_from_row(row[:14], now, (), ())
                waiting, started = row[14:]
                summaries.append(
                    ExecutionSummary(
                        execution_id=state.execution_id,
                        code_mode_id=state.code_mode_id,
                        status=state.status,
                        created_at=state.created_at,
                        updated_at=state.updated_at,
                        passes=state.passes,
                        waiting=waiting + (started if state.abandoned else 0),
                        expires_at=expiry_of(state),
                        finished_at=state.finished_at,
                        abandoned=state.abandoned,
                    )
                )
            return summaries

        return await self._read(read)

    # -- writing ---------------------------------------------------------------------------------
    async def create(self, execution: NewExecution, *, owner: str, lease: float) -> None:
        async def write(conn: Conn, now: float) -> None:
            await conn.execute(
                self._sql.insert_execution,
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

    async def _locked(
        self, conn: Conn, execution_id: str, now: float, full: bool
    ) -> ExecutionState:
        state = await self._state(conn, execution_id, now, lock=True, full=full)
        if state is None:
            raise not_found(execution_id)
        return state

    async def claim(
        self,
        execution_id: str,
        *,
        owner: str,
        lease: float,
        decisions: Mapping[str, Decision] | None = None,
    ) -> ExecutionState:
        async def write(conn: Conn, now: float) -> ExecutionState:
            state = await self._locked(conn, execution_id, now, full=True)
            refusal = refuse_claim(state, now)
            if isinstance(refusal, ExecutionExpiredError):
                await self._mark_expired(conn, state)
                raise CommitThenRaise(refusal)
            if refusal is not None:
                raise refusal
            changed = apply_decisions(state, decisions or {}, now)
            await self._save_calls(conn, execution_id, changed)
            await conn.execute(self._sql.claim, (owner, now + lease, now, execution_id))
            by_step = {call.step: call for call in changed}
            return ExecutionState(
                execution_id=state.execution_id,
                code_mode_id=state.code_mode_id,
                code=state.code,
                fingerprint=state.fingerprint,
                status="running",
                pause_ttl=state.pause_ttl,
                created_at=state.created_at,
                updated_at=now,
                passes=state.passes + 1,
                owner=owner,
                lease_until=now + lease,
                expires_at=None,
                finished_at=state.finished_at,
                result=state.result,
                abandoned=False,
                calls=tuple(by_step.get(call.step, call) for call in state.calls),
                tape=state.tape,
            )

        return await self._write(write)

    async def decide(self, execution_id: str, call_id: str, decision: Decision) -> CallRecord:
        async def write(conn: Conn, now: float) -> CallRecord:
            state = await self._locked(conn, execution_id, now, full=False)
            refusal = refuse_decide(state, now)
            if isinstance(refusal, ExecutionExpiredError):
                await self._mark_expired(conn, state)
                raise CommitThenRaise(refusal)
            if refusal is not None:
                raise refusal
            step = step_of(call_id)
            changed = [
                c for c in apply_decisions(state, {call_id: decision}, now) if c.step == step
            ]
            await self._save_calls(conn, execution_id, changed)
            if changed:
                return changed[0]
            # Decided the same way before: the call as it stands.
            decided = next((c for c in state.waiting() if c.call_id == call_id), None)
            if decided is None:  # apply_decisions raises first; kept for the type checker
                raise DecisionError(f"Execution {execution_id} has no call {call_id}.")
            return decided

        return await self._write(write)

    async def record(
        self,
        execution_id: str,
        *,
        owner: str,
        calls: Sequence[CallRecord] = (),
        tape: Sequence[str] = (),
    ) -> None:
        async def write(conn: Conn, now: float) -> None:
            await self._save_calls(conn, execution_id, calls)
            await self._append_tape(conn, execution_id, tape)

        await self._fenced(execution_id, owner, write)

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
        text = None if result is None else json.dumps(result)

        async def write(conn: Conn, now: float) -> None:
            await self._save_calls(conn, execution_id, calls)
            await self._append_tape(conn, execution_id, tape)
            if status == "paused":
                await conn.execute(self._sql.pause, (now, now, text, execution_id))
            else:
                await conn.execute(self._sql.end, (status, now, now, text, execution_id))

        await self._fenced(execution_id, owner, write)

    async def prune(self, *, keep_finished: timedelta | float | None = None) -> PruneReport:
        keep = self.keep_finished if keep_finished is None else seconds(keep_finished, "keep")

        async def write(conn: Conn, now: float) -> PruneReport:
            expired = (await conn.execute(self._sql.expire_paused, (now, now))).rowcount
            expired += (await conn.execute(self._sql.expire_abandoned, (now, now))).rowcount
            deleted = (await conn.execute(self._sql.delete_finished, (now - keep,))).rowcount
            return PruneReport(expired=expired, deleted=deleted)

        return await self._write(write)

    # -- pieces of writes --------------------------------------------------------------------------
    async def _mark_expired(self, conn: Conn, state: ExecutionState) -> None:
        expiry = expiry_of(state)
        await conn.execute(self._sql.mark_expired, (expiry, expiry, state.execution_id))

    async def _save_calls(self, conn: Conn, execution_id: str, calls: Sequence[CallRecord]) -> None:
        if not calls:
            return
        rows = [call_row(execution_id, call) for call in calls]
        async with conn.cursor() as cursor:
            await cursor.executemany(self._sql.upsert_call, rows)

    async def _append_tape(self, conn: Conn, execution_id: str, tape: Sequence[str]) -> None:
        if tape:
            await conn.execute(self._sql.append_tape, (execution_id, list(tape), execution_id))


def _not_a_cancelled_connect(record: logging.LogRecord) -> bool:
    """psycopg's pool warns "error connecting" when a connection attempt is cancelled, which
    happens only as the task or loop goes away (at the end of ``asyncio.run``): no error."""
    args = record.args
    return not (
        record.msg == "error connecting in %r: %s"
        and isinstance(args, tuple)
        and len(args) == 2
        and isinstance(args[1], asyncio.CancelledError)
    )


logging.getLogger("psycopg.pool").addFilter(_not_a_cancelled_connect)


async def _close_with_loop(pool: AsyncConnectionPool[Conn]) -> None:
    """Wait for the loop's end, then close ``pool``. A script that never closes the store
    (``asyncio.run(main())``) would otherwise hang at exit: the run cancels every task, and the
    pool's workers take a cancellation for a failed connection attempt and wait for their next
    job, forever. Closing the pool sends them that job: stop."""
    try:
        await asyncio.get_running_loop().create_future()
    except asyncio.CancelledError:
        await pool.close()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Statements:
    """Every statement of one store, with its schema filled in once."""

    def __init__(self, schema: str) -> None:
        def q(text: str) -> sql.Composed:
            return sql.SQL(text).format(s=sql.Identifier(schema))

        cols, call_cols = EXECUTION_COLUMNS, CALL_COLUMNS
        e_cols = ", ".join(f"e.{c.strip()}" for c in cols.split(","))
        c_cols = ", ".join(f"c.{c.strip()}" for c in call_cols.split(","))
        self.execution = q(f"SELECT {cols} FROM {{s}}.executions WHERE id = %s")
        self.lock_execution = q(f"SELECT {cols} FROM {{s}}.executions WHERE id = %s FOR UPDATE")
        self.lock_owner = q("SELECT status, owner FROM {s}.executions WHERE id = %s FOR UPDATE")
        self.calls = q(f"SELECT {call_cols} FROM {{s}}.calls WHERE execution_id = %s ORDER BY step")
        self.tape = q("SELECT chunk FROM {s}.tape WHERE execution_id = %s ORDER BY seq")
        self.waiting_calls = q(
            f"SELECT {e_cols}, {c_cols} FROM {{s}}.executions e "
            "JOIN {s}.calls c ON c.execution_id = e.id "
            "WHERE e.status IN ('paused', 'running') "
            "AND c.state IN ('pending', 'in_doubt', 'started') "
            "ORDER BY e.updated_at, e.id, c.step"
        )
        counts = (
            "(SELECT count(*) FROM {s}.calls c WHERE c.execution_id = e.id "
            "AND c.state IN ('pending', 'in_doubt')), "
            "(SELECT count(*) FROM {s}.calls c WHERE c.execution_id = e.id "
            "AND c.state = 'started')"
        )
        self.summaries = q(
            f"SELECT {e_cols}, {counts} FROM {{s}}.executions e "
            "ORDER BY e.updated_at DESC, e.id LIMIT %s"
        )
        self.summaries_of_status = q(
            f"SELECT {e_cols}, {counts} FROM {{s}}.executions e WHERE e.status = %s "
            "ORDER BY e.updated_at DESC, e.id LIMIT %s"
        )
        self.insert_execution = q(
            f"INSERT INTO {{s}}.executions ({cols}) "
            "VALUES (%s, %s, %s, %s, 'running', %s, %s, %s, 1, %s, %s, NULL, NULL, NULL)"
        )
        self.claim = q(
            "UPDATE {s}.executions SET status = 'running', owner = %s, lease_until = %s, "
            "expires_at = NULL, passes = passes + 1, updated_at = %s WHERE id = %s"
        )
        self.pause = q(
            "UPDATE {s}.executions SET status = 'paused', owner = NULL, lease_until = NULL, "
            "expires_at = %s + pause_ttl, updated_at = %s, result = %s WHERE id = %s"
        )
        self.end = q(
            "UPDATE {s}.executions SET status = %s, owner = NULL, lease_until = NULL, "
            "expires_at = NULL, finished_at = %s, updated_at = %s, result = %s WHERE id = %s"
        )
        self.mark_expired = q(
            "UPDATE {s}.executions SET status = 'expired', finished_at = %s, owner = NULL, "
            "lease_until = NULL, updated_at = %s WHERE id = %s"
        )
        self.expire_paused = q(
            "UPDATE {s}.executions SET status = 'expired', finished_at = expires_at, "
            "updated_at = %s, owner = NULL WHERE status = 'paused' AND expires_at < %s"
        )
        self.expire_abandoned = q(
            "UPDATE {s}.executions SET status = 'expired', finished_at = lease_until + pause_ttl,"
            " updated_at = %s, owner = NULL, lease_until = NULL "
            "WHERE status = 'running' AND lease_until + pause_ttl < %s"
        )
        self.delete_finished = q(
            "DELETE FROM {s}.executions WHERE status IN ('completed', 'failed', 'expired') "
            "AND finished_at < %s"
        )
        self.upsert_call = q(
            f"INSERT INTO {{s}}.calls (execution_id, {call_cols}) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (execution_id, step) DO UPDATE SET name = excluded.name, "
            "tool_id = excluded.tool_id, input = excluded.input, "
            "input_hash = excluded.input_hash, line = excluded.line, state = excluded.state, "
            "value = excluded.value, error = excluded.error, ran = excluded.ran, "
            "approved = excluded.approved, reason = excluded.reason, "
            "decided_at = excluded.decided_at"
        )
        # The row lock taken before (the execution's) makes max(seq) safe to extend.
        self.append_tape = q(
            "INSERT INTO {s}.tape (execution_id, seq, chunk) "
            "SELECT %s, base.next + chunks.ord - 1, chunks.chunk "
            "FROM unnest(%s::text[]) WITH ORDINALITY AS chunks (chunk, ord), "
            "(SELECT COALESCE(max(seq) + 1, 0) AS next FROM {s}.tape "
            " WHERE execution_id = %s) AS base"
        )
