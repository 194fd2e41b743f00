"""The ExecutionStore protocol: where durable executions keep their journal between passes.

A store holds, per execution: the program and its fingerprint, a status, a lease (who runs it
now), one record per tool call (by step, the order the program issued its calls) and the
worker's tape (opaque JSON chunks: event order, clock and random values). The journal
(``codemode.durable``) decides what to record and replays it; a store only keeps it and makes
each operation atomic. Every method that changes state is one atomic step, so a store can be
built on any database with a transaction or a compare-and-set:

- ``claim`` is the lease that makes "two concurrent resumes: exactly one runs" true: it checks
  the status, expiry and lease, applies the decisions, and hands the execution to one owner;
- ``record`` and ``finish`` are fenced by that owner, so a process that lost its lease can
  never overwrite the journal of the process that took over;
- ``decide`` is a compare-and-set on one waiting call, bound to its ``call_id`` (which names
  the call's step and input hash): a stale UI cannot approve a different call.

Times are the store's own clock (seconds since the epoch); durations (``lease``, ``ttl``) are
passed instead of deadlines so that hosts with skewed clocks agree.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol, runtime_checkable

import psutil

from .._result import PendingCall, PendingKind

__all__ = [
    "CallError",
    "CallRecord",
    "CallState",
    "Decision",
    "DecisionError",
    "ExecutionExpiredError",
    "ExecutionNotFoundError",
    "ExecutionNotPausedError",
    "ExecutionState",
    "ExecutionStatus",
    "ExecutionStore",
    "ExecutionStoreError",
    "ExecutionSummary",
    "LeaseLostError",
    "NewExecution",
    "PendingApproval",
    "PruneReport",
    "call_id",
    "new_owner",
    "normalize_decision",
    "owner_is_gone",
    "replace_call",
    "seconds",
    "step_of",
]

ExecutionStatus = Literal["running", "paused", "completed", "failed", "expired"]
"""``running``: a pass holds the lease. ``paused``: calls wait for decisions. The rest are
terminal, kept for audit until pruned."""

TERMINAL: frozenset[str] = frozenset({"completed", "failed", "expired"})

CallState = Literal["started", "pending", "in_doubt", "ok", "error"]
"""``started``: running live (recorded before it ran). ``pending``: waits for approval.
``in_doubt``: was started when its host stopped; an operator decides whether to run it again.
``ok`` / ``error``: its outcome, replayed to the program on every later pass."""

WAITING: frozenset[str] = frozenset({"pending", "in_doubt"})

Decision = bool | str
"""``True`` approves (or, for a call in doubt, runs it again); ``False`` or a reason string
denies it: the program gets ``ApprovalDeniedError`` with the reason."""


# -- errors -------------------------------------------------------------------------------------
class ExecutionStoreError(Exception):
    """A durable execution cannot do what was asked; ``name`` is the error name a model sees."""

    name = "ExecutionStoreError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ExecutionNotFoundError(ExecutionStoreError):
    """No execution has this id (never created, or pruned)."""

    name = "ExecutionNotFoundError"


class ExecutionNotPausedError(ExecutionStoreError):
    """The execution is running (another pass holds it) or has finished."""

    name = "ExecutionNotPausedError"

    def __init__(self, message: str, status: ExecutionStatus) -> None:
        super().__init__(message)
        self.status = status


class ExecutionExpiredError(ExecutionStoreError):
    """The execution waited longer than its ``pause_ttl``; nothing of it runs any more."""

    name = "ExecutionExpiredError"


class DecisionError(ExecutionStoreError):
    """A decision names no waiting call, or contradicts one already made."""

    name = "DecisionError"


class LeaseLostError(ExecutionStoreError):
    """This process no longer holds the execution: another process took it over."""

    name = "LeaseLostError"


# -- records ------------------------------------------------------------------------------------
def call_id(step: int, input_hash: str) -> str:
    """The id of the call at ``step`` with this input: decisions are keyed by it, so a decision
    can only ever apply to the call it was made for."""
    return f"{step}-{input_hash[:12]}"


def step_of(call_id: str) -> int | None:
    """The step a call id names, or None when it is not a call id."""
    head, _, _ = call_id.partition("-")
    return int(head) if head.isdigit() else None


@dataclass(frozen=True)
class CallError:
    """The error a call ended with, as the program saw it."""

    message: str
    name: str = "Error"


@dataclass(frozen=True)
class CallRecord:
    """One step of an execution's journal: what the program called, and what became of it."""

    step: int
    name: str  # the function the program called (external_<name>)
    tool_id: str  # the tool's id ("" when the name is no tool's)
    input_json: str | None  # the input as the program sent it (JSON text); None: no input
    input_hash: str
    line: int | None  # the line of the call in the program, as the worker reported it
    state: CallState
    value: Any = None  # state "ok": the JSON value the program got
    error: CallError | None = None  # state "error"
    ran: bool = False  # the tool itself was run (the call may have taken effect)
    approved: bool | None = None  # the decision on the current wait (pending / in_doubt)
    reason: str | None = None  # why it was denied
    decided_at: float | None = None

    @property
    def call_id(self) -> str:
        return call_id(self.step, self.input_hash)

    @property
    def waiting(self) -> bool:
        return self.state in WAITING

    def input(self) -> Any:
        """The input as JSON data (the raw text when it is not JSON)."""
        if self.input_json is None:
            return None
        try:
            return json.loads(self.input_json)
        except ValueError:
            return self.input_json

    def pending_call(self) -> PendingCall:
        kind: PendingKind = "approval" if self.state == "pending" else "in_doubt"
        return PendingCall(
            call_id=self.call_id,
            tool_id=self.tool_id or self.name,
            input=self.input(),
            line=self.line,
            kind=kind,
        )


@dataclass(frozen=True)
class NewExecution:
    """What ``create`` stores: the program, what it was written against, and how long a pause
    may last."""

    execution_id: str
    code_mode_id: str
    code: str
    fingerprint: str  # JSON text: the program's and the tools' hashes (see durable)
    pause_ttl: float  # seconds


@dataclass(frozen=True)
class ExecutionState:
    """Everything a store holds about one execution, as of one read."""

    execution_id: str
    code_mode_id: str
    code: str
    fingerprint: str
    status: ExecutionStatus
    pause_ttl: float
    created_at: float
    updated_at: float
    passes: int  # how many times it has been run (1 + resumes)
    owner: str | None = None  # the lease holder while running
    lease_until: float | None = None
    expires_at: float | None = None  # a paused execution cannot be decided or resumed after
    finished_at: float | None = None
    result: Mapping[str, Any] | None = None  # a finished execution's result JSON (audit)
    abandoned: bool = False  # running, but its owner is gone: a claim may take it over
    calls: tuple[CallRecord, ...] = ()
    tape: tuple[str, ...] = ()

    def waiting(self) -> list[CallRecord]:
        """Calls that wait for a decision (a started call of an abandoned execution is in
        doubt)."""
        found = []
        for call in self.calls:
            if call.waiting:
                found.append(call)
            elif self.abandoned and call.state == "started":
                found.append(_in_doubt(call))
        return found


def _in_doubt(call: CallRecord) -> CallRecord:
    return CallRecord(
        step=call.step,
        name=call.name,
        tool_id=call.tool_id,
        input_json=call.input_json,
        input_hash=call.input_hash,
        line=call.line,
        state="in_doubt",
        ran=True,
    )


@dataclass(frozen=True)
class ExecutionSummary:
    """One line of ``executions()``: enough for a list in a UI or CLI."""

    execution_id: str
    code_mode_id: str
    status: ExecutionStatus
    created_at: float
    updated_at: float
    passes: int
    waiting: int  # calls waiting for a decision
    expires_at: float | None = None
    finished_at: float | None = None
    abandoned: bool = False


@dataclass(frozen=True)
class PendingApproval:
    """One entry of the approval queue: a call that waits for a person, and where."""

    execution_id: str
    code_mode_id: str
    call: PendingCall
    since: float  # when the execution stopped to wait
    expires_at: float | None


@dataclass(frozen=True)
class PruneReport:
    expired: int  # paused (or abandoned) executions found past their expiry, now "expired"
    deleted: int  # finished executions older than the retention, removed


# -- the protocol -------------------------------------------------------------------------------
@runtime_checkable
class ExecutionStore(Protocol):
    """Keeps durable executions. Implementations: ``SqliteStore`` (here), and stores on Redis
    or Postgres built on their own atomic primitives. All methods are coroutines; each one that
    writes is atomic."""

    async def create(self, execution: NewExecution, *, owner: str, lease: float) -> None:
        """Store a new execution, ``running`` and leased to ``owner`` for ``lease`` seconds."""

    async def claim(
        self,
        execution_id: str,
        *,
        owner: str,
        lease: float,
        decisions: Mapping[str, Decision] | None = None,
    ) -> ExecutionState:
        """Take a paused (or abandoned) execution to run it again, in one atomic step: check it
        is paused and not expired, or running with an owner that is gone; apply ``decisions``
        (each as ``decide`` would; a started call of an abandoned execution becomes
        ``in_doubt``); lease it to ``owner``; count the pass. Returns the state after.

        Raises ``ExecutionNotFoundError``, ``ExecutionNotPausedError`` (running or finished),
        ``ExecutionExpiredError`` (and marks it expired) or ``DecisionError``; then nothing
        changed (but the expiry)."""
        ...

    async def record(
        self,
        execution_id: str,
        *,
        owner: str,
        calls: Sequence[CallRecord] = (),
        tape: Sequence[str] = (),
    ) -> None:
        """Upsert ``calls`` (by step) and append ``tape`` chunks, in one atomic step, only while
        ``owner`` holds the execution (else ``LeaseLostError``)."""

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
        """End a pass (with a last ``record``), releasing the lease: ``paused`` expires after the
        execution's ``pause_ttl``; ``completed`` / ``failed`` are kept with ``result`` for audit
        until pruned. Fenced by ``owner`` like ``record``."""

    async def decide(self, execution_id: str, call_id: str, decision: Decision) -> CallRecord:
        """Decide one waiting call (compare-and-set): the execution must be paused and not
        expired (or abandoned), the call waiting, and not decided otherwise already (deciding
        the same way again is a no-op). Returns the call as decided."""
        ...

    async def get(self, execution_id: str) -> ExecutionState | None:
        """The execution with its calls and tape, or None."""
        ...

    async def pending(self, *, limit: int | None = None) -> list[PendingApproval]:
        """The approval queue: undecided waiting calls of paused (and abandoned) executions that
        have not expired, oldest first."""
        ...

    async def executions(
        self, *, status: ExecutionStatus | None = None, limit: int = 100
    ) -> list[ExecutionSummary]:
        """Executions, most recently updated first, optionally of one status."""
        ...

    async def prune(self, *, keep_finished: timedelta | float | None = None) -> PruneReport:
        """Housekeeping (expiry is enforced on decide and claim without it): mark executions
        past their expiry ``expired``, and delete finished ones older than ``keep_finished``
        (the store's own retention when None)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""


# -- helpers stores share -----------------------------------------------------------------------
def seconds(value: timedelta | float | int, what: str) -> float:
    """A duration as seconds; a number is seconds already."""
    if isinstance(value, timedelta):
        result = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = float(value)
    else:
        raise TypeError(f"{what} must be a timedelta or a number of seconds, got {value!r}")
    if result <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return result


def normalize_decision(decision: Decision) -> tuple[bool, str | None]:
    """``(approved, reason)`` for a decision; a bad one is a ``DecisionError``."""
    if isinstance(decision, bool):
        return decision, None
    if isinstance(decision, str):
        if not decision.strip():
            raise DecisionError("a denial reason must not be empty; pass False to deny without one")
        return False, decision
    raise DecisionError(
        f"a decision is True (approve), False (deny) or a reason string (deny), got {decision!r}"
    )


@functools.cache
def _this_host() -> str:
    """This machine and pid namespace: a pid means the same process only within both."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}|{namespace}"


def new_owner() -> str:
    """A lease owner token for one pass of this process: unique, and telling which process
    holds it, so a store on this host can see that a crashed owner is gone at once."""
    pid = os.getpid()
    try:
        started = psutil.Process(pid).create_time()
    except psutil.Error:
        started = 0.0
    return f"{_this_host()}|{pid}|{started:.3f}|{uuid.uuid4().hex}"


def owner_is_gone(owner: str) -> bool:
    """Whether ``owner`` was a process on this host that no longer runs. Owners on other
    hosts are never known to be gone: their leases expire instead."""
    parts = owner.split("|")
    if len(parts) != 5 or f"{parts[0]}|{parts[1]}" != _this_host():
        return False
    try:
        pid, started = int(parts[2]), float(parts[3])
        process = psutil.Process(pid)
        if abs(process.create_time() - started) > 0.01:
            return True  # the pid was reused
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except (ValueError, psutil.Error):
        return False


def replace_call(call: CallRecord, **changes: Any) -> CallRecord:
    """A copy of ``call`` with ``changes``."""
    return dataclasses.replace(call, **changes)
