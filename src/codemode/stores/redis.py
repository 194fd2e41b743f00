"""RedisStore: durable executions in Redis, shared by every host of a deployment
(``pip install 'codemode[redis]'``: the ``redis`` package's asyncio client).

Atomicity comes from Redis itself:

- a claim, a decision, the end of a pass and expiry are optimistic transactions: ``WATCH`` the
  execution's keys, read them, apply the rules every store shares (``_rules``), and write in
  ``MULTI``/``EXEC``, which fails (and is tried again) if anyone changed a watched key between;
- recording a call, the hot path, is one Lua script that checks the lease owner and writes in
  one step, so a process that lost its lease can never write.

Keys (``P`` is the prefix, ``codemode`` by default): ``P:x:ID`` (hash: the execution),
``P:c:ID`` (hash: step -> call record JSON), ``P:t:ID`` (list: the tape), and indexes ``P:updated``
(every execution by update time), ``P:status:S`` (by status), ``P:expiry`` (paused and running
executions by when they expire) and ``P:finished`` (finished ones by when they finished).

Retention: every execution's keys carry a TTL (``pause_ttl`` plus ``keep_finished`` while it
waits, ``keep_finished`` once finished), so Redis drops them even if ``prune`` never runs;
``prune`` marks expired executions and removes finished ones and stale index entries. Durability
is Redis's: run it with ``appendonly yes`` (and ``appendfsync always`` to lose no recorded
call on a power loss). One Redis server (or a primary); Redis Cluster is not supported.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Literal, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import WatchError

from ._base import (
    TERMINAL,
    CallRecord,
    Decision,
    DecisionError,
    ExecutionExpiredError,
    ExecutionState,
    ExecutionStatus,
    ExecutionStoreError,
    ExecutionSummary,
    NewExecution,
    PendingApproval,
    PruneReport,
    seconds,
    step_of,
)
from ._remote import (
    STATUSES,
    ServerClock,
    call_from_json,
    call_to_json,
    is_abandoned,
    lease_lost,
    not_found,
    pending_of,
    sorted_pending,
    split_option,
    summary_of,
)
from ._rules import apply_decisions, expiry_of, refuse_claim, refuse_decide

__all__ = ["RedisStore"]

T = TypeVar("T")

# redis-py types each command as "an awaitable or a value" (one class serves both clients and
# both pipeline modes), which no caller can use without casts: the client and its pipelines are
# Any here, and what they return is checked where it is read.
Pipeline = Any

# KEYS: the execution, its calls, its tape. ARGV: owner, this write's id, the number of calls,
# then step and record JSON per call, then tape chunks. Returns "ok", or the status when the
# lease is lost. A write whose reply was lost (the connection dropped) is sent again by the
# client: its id, kept as the execution's last write, makes the second one a no-op, so a tape
# chunk is never appended twice.
_RECORD = """
local head = redis.call('HMGET', KEYS[1], 'status', 'owner', 'last_write')
if head[1] ~= 'running' or head[2] ~= ARGV[1] then
  return 'lost:' .. (head[1] or 'gone')
end
if head[3] == ARGV[2] then
  return 'ok'
end
local n = tonumber(ARGV[3])
local i = 4
if n > 0 then
  redis.call('HSET', KEYS[2], unpack(ARGV, 4, 3 + 2 * n))
  i = 4 + 2 * n
end
if #ARGV >= i then
  redis.call('RPUSH', KEYS[3], unpack(ARGV, i))
end
redis.call('HSET', KEYS[1], 'last_write', ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
return 'ok'
"""

_MAX_ATTEMPTS = 10_000  # optimistic transactions retried on contention; never in a loop forever


class RedisStore:
    """An ``ExecutionStore`` in Redis, for executions that pause on one host and resume on
    another.

    ``url`` is a Redis URL (``redis://host:6379/0``, ``rediss://`` for TLS,
    ``unix:///path/redis.sock``); a ``prefix=`` parameter in it (or the ``prefix`` argument)
    names the keys' prefix (default ``codemode``), so several deployments can share a
    database. ``keep_finished`` is how long finished executions are kept for audit (their
    keys' TTL, and ``prune``'s default). Times are the server's clock (``clock`` replaces it,
    for tests).

    The client connects on first use, in that event loop: use the store from one loop, and
    ``await store.aclose()`` (or ``async with``) when done.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        keep_finished: timedelta | float = timedelta(days=7),
        clock: Callable[[], float] | None = None,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ValueError("RedisStore needs a URL, e.g. redis://localhost:6379/0")
        url, from_url = split_option(url, "prefix")
        self.prefix = prefix or from_url or "codemode"
        self.keep_finished = seconds(keep_finished, "keep_finished")
        self._url = url
        self._client: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._clock = ServerClock(self._server_time, clock)

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r})"

    # -- keys and plumbing -----------------------------------------------------------------------
    def _x(self, execution_id: str) -> str:
        return f"{self.prefix}:x:{execution_id}"

    def _c(self, execution_id: str) -> str:
        return f"{self.prefix}:c:{execution_id}"

    def _t(self, execution_id: str) -> str:
        return f"{self.prefix}:t:{execution_id}"

    def _keys(self, execution_id: str) -> tuple[str, str, str]:
        return self._x(execution_id), self._c(execution_id), self._t(execution_id)

    @property
    def _updated(self) -> str:
        return f"{self.prefix}:updated"

    def _status(self, status: str) -> str:
        return f"{self.prefix}:status:{status}"

    @property
    def _expiry(self) -> str:
        return f"{self.prefix}:expiry"

    @property
    def _finished(self) -> str:
        return f"{self.prefix}:finished"

    def _redis(self) -> Any:
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
        if self._client is None:
            # A dropped connection is made again and the command sent again (3 times, backing
            # off): reads are safe to repeat, a watched transaction starts over (WatchError),
            # and a record is made idempotent by its write id.
            self._client = aioredis.from_url(
                self._url,
                decode_responses=True,
                retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), 3),
            )
            self._record_script = self._client.register_script(_RECORD)
        return self._client

    async def _server_time(self) -> float:
        seconds_, micros = await self._redis().time()
        return float(seconds_) + float(micros) / 1e6

    async def _transaction(
        self, keys: Sequence[str], fn: Callable[[Pipeline, float], Awaitable[T]]
    ) -> T:
        """Run ``fn`` as an optimistic transaction: it reads (the pipeline executes at once
        while watching), then calls ``pipe.multi()`` and queues its writes, which
        ``EXEC`` applies only if no watched key changed meanwhile; else it runs again."""
        client = self._redis()
        async with client.pipeline(transaction=True) as pipe:
            for _attempt in range(_MAX_ATTEMPTS):
                try:
                    await pipe.watch(*keys)
                    now = await self._clock.now()
                    result = await fn(pipe, now)
                    if pipe.explicit_transaction:
                        await pipe.execute()
                    else:
                        await pipe.unwatch()
                    return result
                except WatchError:
                    await pipe.reset()
                    continue
                except BaseException:
                    await pipe.reset()
                    raise
        raise ExecutionStoreError(f"{self!r}: too much contention on {keys[0]}")

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def __aenter__(self) -> RedisStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- reading ---------------------------------------------------------------------------------
    async def _read_states(
        self, execution_ids: Sequence[str], now: float, *, tape: bool
    ) -> list[ExecutionState]:
        """The executions with their calls (and tapes), read in one ``MULTI``: a snapshot."""
        if not execution_ids:
            return []
        async with self._redis().pipeline(transaction=True) as pipe:
            for execution_id in execution_ids:
                pipe.hgetall(self._x(execution_id))
                pipe.hgetall(self._c(execution_id))
                if tape:
                    pipe.lrange(self._t(execution_id), 0, -1)
            replies = await pipe.execute()
        width = 3 if tape else 2
        states = []
        for i in range(0, len(replies), width):
            fields, calls = replies[i], replies[i + 1]
            if fields:
                chunks = tuple(replies[i + 2]) if tape else ()
                states.append(_state_from_hash(fields, calls, chunks, now))
        return states

    async def get(self, execution_id: str) -> ExecutionState | None:
        now = await self._clock.now()
        states = await self._read_states([execution_id], now, tape=True)
        return states[0] if states else None

    async def pending(self, *, limit: int | None = None) -> list[PendingApproval]:
        client = self._redis()
        now = await self._clock.now()
        ids = await client.zrange(self._status("paused"), 0, -1)
        ids += await client.zrange(self._status("running"), 0, -1)
        found: list[PendingApproval] = []
        for state in await self._read_states(ids, now, tape=False):
            found += pending_of(state, now)
        return sorted_pending(found, limit)

    async def executions(
        self, *, status: ExecutionStatus | None = None, limit: int = 100
    ) -> list[ExecutionSummary]:
        if status is not None and status not in STATUSES:
            return []
        client = self._redis()
        now = await self._clock.now()
        index = self._updated if status is None else self._status(status)
        summaries: list[ExecutionSummary] = []
        start = 0
        while len(summaries) < limit:  # entries whose keys expired are skipped
            ids = await client.zrevrange(index, start, start + limit - 1)
            if not ids:
                break
            start += len(ids)
            for state in await self._read_states(ids, now, tape=False):
                if status is None or state.status == status:
                    summaries.append(summary_of(state))
        summaries.sort(key=lambda s: (-s.updated_at, s.execution_id))
        return summaries[:limit]

    # -- writing ---------------------------------------------------------------------------------
    async def create(self, execution: NewExecution, *, owner: str, lease: float) -> None:
        execution_id = execution.execution_id

        async def write(pipe: Pipeline, now: float) -> None:
            if await pipe.exists(self._x(execution_id)):
                raise ExecutionStoreError(f"There is already an execution {execution_id}.")
            pipe.multi()
            state = ExecutionState(
                execution_id=execution_id,
                code_mode_id=execution.code_mode_id,
                code=execution.code,
                fingerprint=execution.fingerprint,
                status="running",
                pause_ttl=execution.pause_ttl,
                created_at=now,
                updated_at=now,
                passes=1,
                owner=owner,
                lease_until=now + lease,
            )
            self._put(pipe, state, None, now)

        await self._transaction([self._x(execution_id)], write)

    async def _watched_state(
        self, pipe: Pipeline, execution_id: str, now: float, *, tape: bool
    ) -> ExecutionState:
        fields = await pipe.hgetall(self._x(execution_id))
        if not fields:
            raise not_found(execution_id)
        calls = await pipe.hgetall(self._c(execution_id))
        chunks = tuple(await pipe.lrange(self._t(execution_id), 0, -1)) if tape else ()
        return _state_from_hash(fields, calls, chunks, now)

    async def claim(
        self,
        execution_id: str,
        *,
        owner: str,
        lease: float,
        decisions: Mapping[str, Decision] | None = None,
    ) -> ExecutionState:
        expired: list[ExecutionExpiredError] = []

        async def write(pipe: Pipeline, now: float) -> ExecutionState:
            expired.clear()
            state = await self._watched_state(pipe, execution_id, now, tape=True)
            refusal = refuse_claim(state, now)
            if isinstance(refusal, ExecutionExpiredError):
                pipe.multi()
                self._expire(pipe, state, finished_at=expiry_of(state), updated_at=None, now=now)
                expired.append(refusal)
                return state
            if refusal is not None:
                raise refusal
            changed = apply_decisions(state, decisions or {}, now)
            by_step = {call.step: call for call in changed}
            claimed = _replace_state(
                state,
                status="running",
                owner=owner,
                lease_until=now + lease,
                expires_at=None,
                passes=state.passes + 1,
                updated_at=now,
                abandoned=False,
                calls=tuple(by_step.get(call.step, call) for call in state.calls),
            )
            pipe.multi()
            self._put_calls(pipe, execution_id, changed)
            self._put(pipe, claimed, state.status, now)
            return claimed

        claimed = await self._transaction(self._keys(execution_id), write)
        if expired:
            raise expired[0]
        return claimed

    async def decide(self, execution_id: str, call_id: str, decision: Decision) -> CallRecord:
        expired: list[ExecutionExpiredError] = []

        async def write(pipe: Pipeline, now: float) -> CallRecord | None:
            expired.clear()
            state = await self._watched_state(pipe, execution_id, now, tape=False)
            refusal = refuse_decide(state, now)
            if isinstance(refusal, ExecutionExpiredError):
                pipe.multi()
                self._expire(pipe, state, finished_at=expiry_of(state), updated_at=None, now=now)
                expired.append(refusal)
                return None
            if refusal is not None:
                raise refusal
            step = step_of(call_id)
            changed = [
                c for c in apply_decisions(state, {call_id: decision}, now) if c.step == step
            ]
            if changed:
                pipe.multi()
                self._put_calls(pipe, execution_id, changed)
                return changed[0]
            # Decided the same way before: the call as it stands.
            return next((c for c in state.waiting() if c.call_id == call_id), None)

        decided = await self._transaction(self._keys(execution_id)[:2], write)
        if expired:
            raise expired[0]
        if decided is None:  # apply_decisions raises first; kept for the type checker
            raise DecisionError(f"Execution {execution_id} has no call {call_id}.")
        return decided

    async def record(
        self,
        execution_id: str,
        *,
        owner: str,
        calls: Sequence[CallRecord] = (),
        tape: Sequence[str] = (),
    ) -> None:
        self._redis()
        args: list[Any] = [owner, uuid.uuid4().hex, len(calls)]
        for call in calls:
            args += [call.step, call_to_json(call)]
        args += list(tape)
        reply = await self._record_script(keys=list(self._keys(execution_id)), args=args)
        if reply != "ok":
            status = str(reply).removeprefix("lost:")
            raise lease_lost(execution_id, None if status == "gone" else status)

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

        async def write(pipe: Pipeline, now: float) -> None:
            fields = await pipe.hgetall(self._x(execution_id))
            if not fields or fields.get("status") != "running" or fields.get("owner") != owner:
                raise lease_lost(execution_id, fields.get("status") if fields else None)
            state = _state_from_hash(fields, {}, (), now)
            ended = _replace_state(
                state,
                status=status,
                owner=None,
                lease_until=None,
                updated_at=now,
                result=None if text is None else json.loads(text),
                expires_at=now + state.pause_ttl if status == "paused" else None,
                finished_at=None if status == "paused" else now,
            )
            pipe.multi()
            self._put_calls(pipe, execution_id, calls)
            if tape:
                pipe.rpush(self._t(execution_id), *tape)
            self._put(pipe, ended, state.status, now, result_text=text)

        await self._transaction([self._x(execution_id)], write)

    async def prune(self, *, keep_finished: timedelta | float | None = None) -> PruneReport:
        keep = self.keep_finished if keep_finished is None else seconds(keep_finished, "keep")
        client = self._redis()
        now = await self._clock.now()
        expired = 0
        for execution_id in await client.zrangebyscore(self._expiry, "-inf", f"({now!r}"):
            expired += await self._prune_expired(execution_id)
        deleted = 0
        for execution_id in await client.zrangebyscore(self._finished, "-inf", f"({now - keep!r}"):
            deleted += await self._delete(execution_id, now - keep)
        return PruneReport(expired=expired, deleted=deleted)

    async def _prune_expired(self, execution_id: str) -> int:
        async def write(pipe: Pipeline, now: float) -> int:
            fields = await pipe.hgetall(self._x(execution_id))
            pipe.multi()
            if not fields:  # its keys expired: only the index entries are left
                self._unindex(pipe, execution_id)
                return 0
            state = _state_from_hash(fields, {}, (), now)
            expiry = expiry_of(state)
            if expiry is None or expiry >= now:
                self._index(pipe, state)
                return 0
            self._expire(pipe, state, finished_at=expiry, updated_at=now, now=now)
            return 1

        return await self._transaction([self._x(execution_id)], write)

    async def _delete(self, execution_id: str, before: float) -> int:
        async def write(pipe: Pipeline, now: float) -> int:
            fields = await pipe.hgetall(self._x(execution_id))
            if fields:
                state = _state_from_hash(fields, {}, (), now)
                finished_at = state.finished_at
                if state.status not in TERMINAL or finished_at is None or finished_at >= before:
                    return 0
            pipe.multi()
            pipe.delete(*self._keys(execution_id))
            self._unindex(pipe, execution_id)
            return 1 if fields else 0

        return await self._transaction([self._x(execution_id)], write)

    # -- pieces of writes (queued in a MULTI) ------------------------------------------------------
    def _put_calls(self, pipe: Pipeline, execution_id: str, calls: Sequence[CallRecord]) -> None:
        if calls:
            mapping = {str(call.step): call_to_json(call) for call in calls}
            pipe.hset(self._c(execution_id), mapping=mapping)

    def _put(
        self,
        pipe: Pipeline,
        state: ExecutionState,
        old_status: str | None,
        now: float,
        *,
        result_text: str | None = None,
    ) -> None:
        """Write the execution's fields as ``state`` has them, and its indexes and TTLs."""
        key = self._x(state.execution_id)
        values, absent = _hash_of(state, result_text)
        pipe.hset(key, mapping=values)
        if absent:
            pipe.hdel(key, *absent)
        if old_status is not None and old_status != state.status:
            pipe.zrem(self._status(old_status), state.execution_id)
        self._index(pipe, state)
        # Retention: kept while it may run or wait, then for keep_finished.
        if state.status in TERMINAL:
            until = (state.finished_at or now) + self.keep_finished
        else:
            until = (expiry_of(state) or now) + self.keep_finished
        ttl_ms = max(1, math.ceil((until - now) * 1000))
        for name in self._keys(state.execution_id):
            pipe.pexpire(name, ttl_ms)

    def _index(self, pipe: Pipeline, state: ExecutionState) -> None:
        execution_id = state.execution_id
        pipe.zadd(self._updated, {execution_id: state.updated_at})
        pipe.zadd(self._status(state.status), {execution_id: state.updated_at})
        expiry = expiry_of(state)
        if expiry is None:
            pipe.zrem(self._expiry, execution_id)
        else:
            pipe.zadd(self._expiry, {execution_id: expiry})
        if state.status in TERMINAL and state.finished_at is not None:
            pipe.zadd(self._finished, {execution_id: state.finished_at})
        else:
            pipe.zrem(self._finished, execution_id)

    def _unindex(self, pipe: Pipeline, execution_id: str) -> None:
        for index in (self._updated, self._expiry, self._finished):
            pipe.zrem(index, execution_id)
        for status in STATUSES:
            pipe.zrem(self._status(status), execution_id)

    def _expire(
        self,
        pipe: Pipeline,
        state: ExecutionState,
        *,
        finished_at: float | None,
        updated_at: float | None,
        now: float,
    ) -> None:
        """Mark ``state`` expired (``updated_at`` None: at its expiry, as a claim or a decision
        that finds it expired does; ``prune`` says now)."""
        expired = _replace_state(
            state,
            status="expired",
            owner=None,
            lease_until=None,
            finished_at=finished_at,
            updated_at=finished_at if updated_at is None else updated_at,
        )
        self._put(pipe, expired, state.status, now, result_text=_result_text(state))


def _result_text(state: ExecutionState) -> str | None:
    return None if state.result is None else json.dumps(state.result)


def _replace_state(state: ExecutionState, **changes: Any) -> ExecutionState:
    fields = {name: getattr(state, name) for name in ExecutionState.__dataclass_fields__}
    fields.update(changes)
    return ExecutionState(**fields)


_FLOAT_FIELDS = (
    "pause_ttl",
    "created_at",
    "updated_at",
    "lease_until",
    "expires_at",
    "finished_at",
)
_TEXT_FIELDS = ("code_mode_id", "code", "fingerprint", "status", "owner")


def _hash_of(state: ExecutionState, result_text: str | None) -> tuple[dict[str, Any], list[str]]:
    """The hash fields of ``state``, and the names of those that are absent (None)."""
    values: dict[str, Any] = {"id": state.execution_id, "passes": state.passes}
    absent: list[str] = []
    for name in _FLOAT_FIELDS:
        value = getattr(state, name)
        if value is None:
            absent.append(name)
        else:
            values[name] = repr(float(value))
    for name in _TEXT_FIELDS:
        value = getattr(state, name)
        if value is None:
            absent.append(name)
        else:
            values[name] = value
    text = result_text if result_text is not None else _result_text(state)
    if text is None:
        absent.append("result")
    else:
        values["result"] = text
    return values, absent


def _state_from_hash(
    fields: Mapping[str, str], calls: Mapping[str, str], tape: tuple[str, ...], now: float
) -> ExecutionState:
    def number(name: str) -> float | None:
        value = fields.get(name)
        return None if value is None else float(value)

    status = fields["status"]
    owner = fields.get("owner")
    lease_until = number("lease_until")
    result = fields.get("result")
    records = sorted(
        (call_from_json(int(step), text) for step, text in calls.items()), key=lambda c: c.step
    )
    return ExecutionState(
        execution_id=fields["id"],
        code_mode_id=fields["code_mode_id"],
        code=fields["code"],
        fingerprint=fields["fingerprint"],
        status=status,  # type: ignore[arg-type]
        pause_ttl=float(fields["pause_ttl"]),
        created_at=float(fields["created_at"]),
        updated_at=float(fields["updated_at"]),
        passes=int(fields["passes"]),
        owner=owner,
        lease_until=lease_until,
        expires_at=number("expires_at"),
        finished_at=number("finished_at"),
        result=None if result is None else json.loads(result),
        abandoned=is_abandoned(status, owner, lease_until, now),
        calls=tuple(records),
        tape=tape,
    )
