"""Records as rows, for the stores on SQL (SQLite and Postgres): both schemas have the same
columns in the same order, so one mapping (and one way out of a transaction) serves both.
Booleans go in as ``bool`` (SQLite keeps them as 0 and 1) and come out through ``bool``; JSON is
ASCII-escaped, so a lone surrogate in a tool's result is stored rather than failing the
database's UTF-8 encoding."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ._base import CallError, CallRecord, ExecutionState
from ._remote import is_abandoned

__all__ = [
    "CALL_COLUMNS",
    "EXECUTION_COLUMNS",
    "CommitThenRaise",
    "call_from_row",
    "call_row",
    "state_from_row",
]

# The columns of both schemas, in the order the mappings below read and write them.
EXECUTION_COLUMNS = (
    "id, code_mode_id, code, fingerprint, status, pause_ttl, created_at, updated_at, passes, "
    "owner, lease_until, expires_at, finished_at, result"
)
CALL_COLUMNS = (
    "step, name, tool_id, input, input_hash, line, state, value, error, ran, approved, reason, "
    "decided_at"
)


class CommitThenRaise(Exception):
    """Raised inside a transaction: commit what was written, then raise ``error`` (a refusal
    that must not undo what the transaction already recorded, such as an expiry)."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def call_row(execution_id: str, call: CallRecord) -> tuple[Any, ...]:
    """The ``calls`` row of ``call``."""
    return (
        execution_id,
        call.step,
        call.name,
        call.tool_id,
        call.input_json,
        call.input_hash,
        call.line,
        call.state,
        json.dumps(call.value) if call.state == "ok" else None,
        None
        if call.error is None
        else json.dumps({"message": call.error.message, "name": call.error.name}),
        call.ran,
        call.approved,
        call.reason,
        call.decided_at,
    )


def call_from_row(row: Sequence[Any]) -> CallRecord:
    """The record of a ``calls`` row (without its execution id)."""
    (step, name, tool_id, input_json, input_hash, line, state, value, error, ran) = row[:10]
    approved, reason, decided_at = row[10:]
    err = None
    if error is not None:
        data = json.loads(error)
        err = CallError(message=data["message"], name=data["name"])
    return CallRecord(
        step=step,
        name=name,
        tool_id=tool_id,
        input_json=input_json,
        input_hash=input_hash,
        line=line,
        state=state,
        value=None if value is None else json.loads(value),
        error=err,
        ran=bool(ran),
        approved=None if approved is None else bool(approved),
        reason=reason,
        decided_at=decided_at,
    )


def state_from_row(
    row: Sequence[Any], now: float, calls: tuple[CallRecord, ...], tape: tuple[str, ...]
) -> ExecutionState:
    """The state of an ``executions`` row, with its calls and tape, as seen at ``now``."""
    (
        execution_id,
        code_mode_id,
        code,
        fingerprint,
        status,
        pause_ttl,
        created_at,
        updated_at,
        passes,
        owner,
        lease_until,
        expires_at,
        finished_at,
        result,
    ) = row
    return ExecutionState(
        execution_id=execution_id,
        code_mode_id=code_mode_id,
        code=code,
        fingerprint=fingerprint,
        status=status,
        pause_ttl=pause_ttl,
        created_at=created_at,
        updated_at=updated_at,
        passes=passes,
        owner=owner,
        lease_until=lease_until,
        expires_at=expires_at,
        finished_at=finished_at,
        result=None if result is None else json.loads(result),
        abandoned=is_abandoned(status, owner, lease_until, now),
        calls=calls,
        tape=tape,
    )
