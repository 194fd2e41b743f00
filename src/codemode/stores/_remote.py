"""What the stores on a database server (Redis, Postgres) share: the server's clock, call
records as JSON, the approval queue and summaries built from what they read, and the words of
their refusals (the same as ``SqliteStore``'s, so every store reads alike).

The rules themselves (what may be claimed or decided) are in ``_rules``; this module only turns
rows into the protocol's records."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._base import (
    CallError,
    CallRecord,
    ExecutionNotFoundError,
    ExecutionState,
    ExecutionStatus,
    ExecutionSummary,
    LeaseLostError,
    PendingApproval,
    owner_is_gone,
)
from ._rules import expiry_of

__all__ = [
    "ServerClock",
    "call_from_json",
    "call_to_json",
    "is_abandoned",
    "lease_lost",
    "not_found",
    "pending_of",
    "sorted_pending",
    "split_option",
    "summary_of",
]


class ServerClock:
    """The database server's clock, read without a round trip per operation.

    The protocol's times are the store's own, so that hosts whose clocks disagree still agree on
    when a lease or a pause ends. Asking the server for the time on every write would cost a
    round trip each; instead the offset between this host's clock and the server's is measured
    (to within half a round trip) and measured again every ``refresh`` seconds. A fixed
    ``clock`` (tests) replaces the server's."""

    def __init__(
        self,
        read_server: Callable[[], Awaitable[float]],
        clock: Callable[[], float] | None = None,
        *,
        refresh: float = 60.0,
    ) -> None:
        self._read_server = read_server
        self._fixed = clock
        self._refresh = refresh
        self._offset = 0.0
        self._measured_at = -math.inf

    async def now(self) -> float:
        if self._fixed is not None:
            return self._fixed()
        local = time.monotonic()
        if local - self._measured_at > self._refresh:
            before = time.time()
            server = await self._read_server()
            after = time.time()
            self._offset = server - (before + after) / 2
            self._measured_at = local
        return time.time() + self._offset


def split_option(url: str, name: str) -> tuple[str, str | None]:
    """``url`` without its query parameter ``name``, and that parameter's value (None when
    absent): a codemode option carried in a URL that the driver would refuse."""
    parts = urlsplit(url)
    if not parts.query:
        return url, None
    kept, found = [], None
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == name:
            found = value
        else:
            kept.append((key, value))
    return urlunsplit(parts._replace(query=urlencode(kept))), found


# -- call records as JSON ------------------------------------------------------------------------
def call_to_json(call: CallRecord) -> str:
    """One call record as JSON text (its step is the key it is stored under)."""
    data: dict[str, Any] = {
        "name": call.name,
        "tool_id": call.tool_id,
        "input": call.input_json,
        "input_hash": call.input_hash,
        "line": call.line,
        "state": call.state,
        "ran": call.ran,
        "approved": call.approved,
        "reason": call.reason,
        "decided_at": call.decided_at,
    }
    if call.state == "ok":
        data["value"] = call.value
    if call.error is not None:
        data["error"] = {"message": call.error.message, "name": call.error.name}
    return json.dumps(data)  # ASCII: a lone surrogate in a value must not fail the write


def call_from_json(step: int, text: str | bytes) -> CallRecord:
    data = json.loads(text)
    error = data.get("error")
    return CallRecord(
        step=step,
        name=data["name"],
        tool_id=data["tool_id"],
        input_json=data["input"],
        input_hash=data["input_hash"],
        line=data["line"],
        state=data["state"],
        value=data.get("value"),
        error=None if error is None else CallError(error["message"], error["name"]),
        ran=data["ran"],
        approved=data["approved"],
        reason=data["reason"],
        decided_at=data["decided_at"],
    )


# -- what is derived from a read -----------------------------------------------------------------
def is_abandoned(status: str, owner: str | None, lease_until: float | None, now: float) -> bool:
    """Running, but nobody runs it: its lease ran out, or its owner died on this host."""
    return status == "running" and (
        (lease_until is not None and now > lease_until)
        or (owner is not None and owner_is_gone(owner))
    )


def pending_of(state: ExecutionState, now: float) -> list[PendingApproval]:
    """The undecided waiting calls of ``state`` (read with its calls), unless it is running
    with a live owner or has expired."""
    if state.status not in ("paused", "running"):
        return []
    if state.status == "running" and not state.abandoned:
        return []
    expiry = expiry_of(state)
    if expiry is not None and now > expiry:
        return []
    since = state.updated_at if state.status == "paused" else state.lease_until
    return [
        PendingApproval(
            execution_id=state.execution_id,
            code_mode_id=state.code_mode_id,
            call=call.pending_call(),
            since=since or state.updated_at,
            expires_at=expiry,
        )
        for call in state.waiting()
        if call.approved is None
    ]


def sorted_pending(found: Iterable[PendingApproval], limit: int | None) -> list[PendingApproval]:
    """The approval queue in its order: oldest wait first."""
    queue = sorted(found, key=lambda p: (p.since, p.execution_id, p.call.call_id))
    return queue if limit is None else queue[:limit]


def summary_of(state: ExecutionState) -> ExecutionSummary:
    """One line of ``executions()`` for ``state`` (read with its calls)."""
    return ExecutionSummary(
        execution_id=state.execution_id,
        code_mode_id=state.code_mode_id,
        status=state.status,
        created_at=state.created_at,
        updated_at=state.updated_at,
        passes=state.passes,
        waiting=len(state.waiting()),
        expires_at=expiry_of(state),
        finished_at=state.finished_at,
        abandoned=state.abandoned,
    )


def result_from_text(text: str | None) -> Mapping[str, Any] | None:
    return None if text is None else json.loads(text)


STATUSES: tuple[ExecutionStatus, ...] = ("running", "paused", "completed", "failed", "expired")


# -- refusals --------------------------------------------------------------------------------------
def not_found(execution_id: str) -> ExecutionNotFoundError:
    return ExecutionNotFoundError(
        f"There is no execution {execution_id} in this store (it never existed here, "
        "or it finished and was pruned)."
    )


def lease_lost(execution_id: str, status: str | None) -> LeaseLostError:
    return LeaseLostError(
        f"Execution {execution_id} is no longer held by this pass (it is {status or 'gone'}; "
        "another process took it over or it was pruned), so nothing was recorded."
    )
