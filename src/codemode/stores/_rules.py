"""The rules every store applies, as pure functions over an execution read inside the store's
own transaction (or lock, or optimistic check). A store supplies atomicity; these supply the
meaning, so every store refuses the same things with the same words."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from ._base import (
    TERMINAL,
    CallRecord,
    Decision,
    DecisionError,
    ExecutionExpiredError,
    ExecutionNotPausedError,
    ExecutionState,
    ExecutionStoreError,
    normalize_decision,
    replace_call,
)

__all__ = ["apply_decisions", "expiry_of", "refuse_claim", "refuse_decide", "when"]


def when(timestamp: float) -> str:
    """A store time as people read it."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def expiry_of(state: ExecutionState) -> float | None:
    """When a paused execution expires; an abandoned one expires ``pause_ttl`` after its lease."""
    if state.status == "paused":
        return state.expires_at
    if state.status == "running" and state.lease_until is not None:
        return state.lease_until + state.pause_ttl
    return None


def _expired(state: ExecutionState, now: float) -> ExecutionExpiredError | None:
    expiry = expiry_of(state)
    if expiry is None or now <= expiry:
        return None
    return ExecutionExpiredError(
        f"Execution {state.execution_id} expired at {when(expiry)}: it waited longer than its "
        f"pause_ttl of {_duration(state.pause_ttl)}, so none of its waiting calls will run. "
        "Start a new execution if the task still needs doing."
    )


def _finished(state: ExecutionState) -> ExecutionNotPausedError:
    at = f" at {when(state.finished_at)}" if state.finished_at is not None else ""
    return ExecutionNotPausedError(
        f"Execution {state.execution_id} is not paused: it {state.status}{at}. "
        "It cannot be resumed or decided again.",
        state.status,
    )


def refuse_claim(state: ExecutionState, now: float) -> ExecutionStoreError | None:
    """Why ``state`` cannot be claimed now, or None. An ``ExecutionExpiredError`` means the
    store should mark the execution expired (and commit that) before raising it."""
    if state.status in TERMINAL:
        return _finished(state)
    if state.status == "running" and not state.abandoned:
        until = f" (its lease runs until {when(state.lease_until)})" if state.lease_until else ""
        return ExecutionNotPausedError(
            f"Execution {state.execution_id} is running now{until}: another resume (or its "
            "first pass) holds it, so this resume runs nothing. Wait for it to pause or finish.",
            "running",
        )
    return _expired(state, now)


def refuse_decide(state: ExecutionState, now: float) -> ExecutionStoreError | None:
    """Why calls of ``state`` cannot be decided now, or None (expired: as ``refuse_claim``)."""
    if state.status in TERMINAL:
        return _finished(state)
    if state.status == "running" and not state.abandoned:
        return ExecutionNotPausedError(
            f"Execution {state.execution_id} is running now; decide its calls once it pauses "
            "again (or pass the decisions to resume).",
            "running",
        )
    return _expired(state, now)


def apply_decisions(
    state: ExecutionState, decisions: Mapping[str, Decision], now: float
) -> list[CallRecord]:
    """The calls ``decisions`` change, decided (compare-and-set on each call id); raises
    ``DecisionError`` naming the first that cannot apply. Started calls of an abandoned
    execution come back ``in_doubt`` (their wait begins now), decided or not."""
    waiting = {call.call_id: call for call in state.waiting()}
    changed: dict[int, CallRecord] = {}
    if state.abandoned:
        for call in waiting.values():
            original = next(c for c in state.calls if c.step == call.step)
            if original.state == "started":
                changed[call.step] = call
    for cid, decision in decisions.items():
        approved, reason = normalize_decision(decision)
        found = waiting.get(cid)
        if found is None:
            raise DecisionError(_no_such_call(state, cid, list(waiting)))
        call = found
        if call.approved is not None:
            if (call.approved, call.reason) == (approved, reason):
                continue  # the same decision again: nothing to change
            raise DecisionError(
                f"Call {cid} of execution {state.execution_id} was already "
                f"{_decided(call.approved, call.reason)}; a decision cannot be changed."
            )
        changed[call.step] = replace_call(call, approved=approved, reason=reason, decided_at=now)
    return [changed[step] for step in sorted(changed)]


def _decided(approved: bool, reason: str | None) -> str:
    if approved:
        return "approved"
    return f"denied ({reason})" if reason else "denied"


def _no_such_call(state: ExecutionState, cid: str, waiting: list[str]) -> str:
    known = next((c for c in state.calls if c.call_id == cid), None)
    if known is not None:
        what = f"call {cid} of execution {state.execution_id} does not wait for a decision "
        what += f"(it is {known.state})"
    else:
        what = f"execution {state.execution_id} has no call {cid}"
    listed = ", ".join(waiting) if waiting else "none"
    return f"{what[0].upper()}{what[1:]}; the calls waiting are: {listed}."


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds % 60 == 0:
        return f"{int(seconds // 60)}min"
    return f"{seconds:g}s"
