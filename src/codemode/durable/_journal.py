"""The journal of one pass of a durable execution: the bridge's two durable layers, the
worker's tape, and the decision to pause.

Steps are numbered by the order the program issues its calls (the order they reach the host:
one realm, one ordered channel). The host is the authority: on replay it checks each call
against the record at its step (tool and input hash) and answers it from the record itself,
so nothing the worker reports can make it skip an approval, run a recorded call again, or
apply a decision to another call.

Pausing needs "nothing else can make progress": no call running here (calls waiting for a
decision aside) and nothing the program can do by itself. The host asks the worker (``probe
n``) whenever its own side is quiet; the worker answers ``idle n`` once it has no timer, no
operation and no releasable event left, saying how many calls it still waits on. The answer
counts only if no call arrived since the probe and the numbers agree; then the execution stops
and every waiting call is returned together.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

from .._bridge import CallSite, Next, denial
from .._result import CodeModeError, PendingCall
from .._tools import Tool
from ..sandboxes._base import DurableRun, ToolReply
from ..stores._base import (
    CallError,
    CallRecord,
    CallState,
    ExecutionState,
    ExecutionStore,
    replace_call,
)
from ._tape import Tape

__all__ = ["Journal", "input_hash", "paused_error"]

_log = logging.getLogger("codemode")


def input_hash(name: str, args_json: str | None) -> str:
    """What a call is, for comparing it with a record: the function and its input text (the
    same program in a fresh realm serialises the same input to the same text)."""
    return hashlib.sha256(json.dumps([name, args_json]).encode()).hexdigest()


class Journal:
    """Records one pass of an execution in ``store`` and replays what earlier passes recorded
    (``state``, None for a new execution)."""

    def __init__(
        self,
        *,
        store: ExecutionStore,
        execution_id: str,
        owner: str,
        tools: Mapping[str, Tool],
        max_concurrent_calls: int,
        state: ExecutionState | None = None,
    ) -> None:
        self.store = store
        self.execution_id = execution_id
        self.owner = owner
        self._tools = tools
        self._max_concurrent = max_concurrent_calls
        recorded = state.calls if state is not None else ()
        self._recorded: dict[int, CallRecord] = {call.step: call for call in recorded}
        self._current: dict[int, CallRecord] = dict(self._recorded)  # latest record per step
        self._unverified = set(self._recorded)  # recorded steps this pass has not reached yet
        self._replayed = asyncio.Event()  # set once every recorded step was matched
        if not self._unverified:
            self._replayed.set()
        self._tape = Tape(state.tape if state is not None else ())
        self._writer = _Writer(store, execution_id, owner, self._tape)
        self._steps = 0
        self._line: int | None = None  # the line the worker reported for the next call
        self._waiting: dict[int, CallRecord] = {}  # calls waiting for a decision
        self._outcome_recorded: set[int] = set()
        self._busy = 0  # calls in the layers, waiting ones aside
        self._held = 0  # live calls held until the replay is verified
        self._probe = 0
        self._calls_at_probe = 0
        self._quiet_scheduled = False
        self._reprobes = 0
        self._control: Callable[[dict[str, Any]], None] | None = None
        self.stopped = False
        self.paused = False
        self.failure: CodeModeError | None = None

    # -- what the code tool reads --------------------------------------------------------------
    @property
    def replay_run(self) -> DurableRun:
        """What the worker replays before it goes live."""
        return self._tape.replay

    @property
    def replay_complete(self) -> bool:
        return self._replayed.is_set()

    def pending(self) -> list[PendingCall]:
        """The calls this pass waits on, in step order."""
        return [self._waiting[step].pending_call() for step in sorted(self._waiting)]

    def waiting(self) -> list[CallRecord]:
        return [self._waiting[step] for step in sorted(self._waiting)]

    def unreached_error(self) -> CodeModeError:
        """The divergence of a program that ended before making every recorded call."""
        step = min(self._unverified)
        call = self._recorded[step]
        return CodeModeError(
            name="ReplayDivergenceError",
            message=(
                f"On resume, the program stopped before step {step}: the first run made "
                f"{_describe(call.name, call.input_json, call.line)} there, and this run never "
                f"did. {self._applied()} {_RULE}"
            ),
        )

    async def finish(
        self, status: Literal["paused", "completed", "failed"], result: Mapping[str, Any]
    ) -> None:
        """End the pass in the store: after every pending write, with the rest of the tape."""
        await self._writer.drain()
        chunk = self._tape.unsaved()
        await self.store.finish(
            self.execution_id,
            owner=self.owner,
            status=status,
            result=result,
            tape=[chunk] if chunk else [],
        )

    # -- what the sandbox reports (through the bridge) -----------------------------------------
    def arrived(self, site: CallSite) -> None:
        self._reprobes = 0
        self._steps += 1
        site.step = self._steps
        site.line, self._line = self._line, None
        site.input_hash = input_hash(site.name, site.args_json)
        site.execution_id = self.execution_id

    def tape(self, journal: Any) -> None:
        if isinstance(journal, dict):
            line = journal.get("l")
            self._line = line if isinstance(line, int) and not isinstance(line, bool) else None
            self._tape.add(journal)

    def attach(self, control: Callable[[dict[str, Any]], None]) -> None:
        self._control = control

    def detach(self) -> None:
        """The pass is over: nothing more goes to the sandbox."""
        self._control = None

    def idle(self, probe: Any, waiting: Any, journal: Any) -> None:
        self._tape.add(journal)
        if self.stopped or probe != self._probe or self._steps != self._calls_at_probe:
            return  # stale: a call arrived since, or a newer probe is out
        if self._busy - self._held > 0 or not isinstance(waiting, int):
            return
        expected = len(self._waiting) + self._held
        # Calls over the concurrency limit wait in the runner, unseen here: more is fine then.
        if waiting > expected and expected < self._max_concurrent:
            # It waits on calls answered here whose replies are still on their way: ask again,
            # behind them on the same channel (a bounded number of times: a forged count must
            # not keep the two sides talking).
            if self._reprobes < _MAX_REPROBES:
                self._reprobes += 1
                self._quiet()
            return
        if waiting < expected:
            return
        if not self._replayed.is_set():
            self._stop(failure=self.unreached_error())
        elif self._waiting:
            self.paused = True
            self._stop()

    # -- the layers ----------------------------------------------------------------------------
    async def replay(self, site: CallSite, next: Next) -> ToolReply | None:
        """Outermost layer: answer a recorded call from the record, and record what becomes of
        a call that does not run (denied, invalid, waiting)."""
        if self.stopped:
            return None
        step = site.step
        assert step is not None
        self._busy += 1
        try:
            recorded = self._recorded.get(step)
            if recorded is not None:
                if (recorded.name, recorded.input_hash) != (site.name, site.input_hash):
                    self._stop(failure=self._divergence(site, recorded))
                    return None
                self._unverified.discard(step)
                if not self._unverified:
                    self._replayed.set()
                if recorded.state == "ok":
                    return ToolReply(True, value=recorded.value)
                if recorded.state == "error":
                    error = recorded.error or CallError("tool call failed")
                    return ToolReply(False, error_message=error.message, error_name=error.name)
                if recorded.approved is True:
                    site.decided = True  # a person approved it (or said to run it again)
                elif recorded.approved is False:
                    return self._denied(site, recorded)
                elif recorded.state in ("in_doubt", "started"):
                    tool = site.tool
                    if tool is None or not tool.idempotent:
                        self._wait(replace_call(recorded, state="in_doubt"))
                        return None
                    site.decided = True  # it passed approval when it started; running it again
            answer = await next(site)
            if answer is None:  # deferred: it waits for a decision
                record = self._make(site, "pending")
                if self._current.get(step) != record:
                    self._queue(record)
                self._wait(record)
                return None
            if step not in self._outcome_recorded:  # it never ran: denied, invalid, unknown
                self._queue(self._outcome(site, answer, ran=False))
            return answer
        finally:
            self._busy -= 1
            self._quiet_soon()

    async def record(self, site: CallSite, next: Next) -> ToolReply | None:
        """Innermost layer but the run: recorded as started before it runs (and waited for),
        with its outcome after. Held until the replay is verified, so a call is never run live
        for a program that diverges."""
        if not self._replayed.is_set():
            self._held += 1
            self._quiet()
            try:
                await self._replayed.wait()
            finally:
                self._held -= 1
        if self.stopped:
            return None
        if not await self._write(self._make(site, "started", ran=True)):
            return None
        answer = await next(site)
        assert answer is not None and site.step is not None  # the run always answers
        self._queue(self._outcome(site, answer, ran=True))
        self._outcome_recorded.add(site.step)
        return None if self.stopped else answer

    # -- internals -----------------------------------------------------------------------------
    def _denied(self, site: CallSite, recorded: CallRecord) -> ToolReply:
        tool_id = site.tool.id if site.tool is not None else site.name
        if recorded.state == "pending":
            answer = denial(tool_id, recorded.reason)
        else:
            message = f"Tool {tool_id} was in doubt after its host stopped and was not run again"
            if recorded.reason:
                message += f": {recorded.reason}"
            answer = ToolReply(False, error_message=message, error_name="ApprovalDeniedError")
        self._queue(self._outcome(site, answer, ran=False))
        return answer

    def _wait(self, record: CallRecord) -> None:
        self._current[record.step] = record
        self._waiting[record.step] = record

    def _make(self, site: CallSite, state: CallState, *, ran: bool = False) -> CallRecord:
        assert site.step is not None and site.input_hash is not None
        base = self._current.get(site.step)
        return CallRecord(
            step=site.step,
            name=site.name,
            tool_id=site.tool.id if site.tool is not None else "",
            input_json=site.args_json,
            input_hash=site.input_hash,
            line=site.line if site.line is not None else (base.line if base else None),
            state=state,
            ran=ran or (base.ran if base else False),
            approved=base.approved if base else None,
            reason=base.reason if base else None,
            decided_at=base.decided_at if base else None,
        )

    def _outcome(self, site: CallSite, answer: ToolReply, *, ran: bool) -> CallRecord:
        if answer.ok:
            return replace_call(self._make(site, "ok", ran=ran), value=answer.value)
        error = CallError(answer.error_message, answer.error_name)
        return replace_call(self._make(site, "error", ran=ran), error=error)

    async def _write(self, record: CallRecord) -> bool:
        """Record durably and wait for it; False (and the execution stopped) when the store
        failed. Only a call's start is waited for: it must be durable before the call runs."""
        try:
            await asyncio.shield(self._queue(record, urgent=True))
        except asyncio.CancelledError:
            raise
        except Exception:
            return False
        return True

    def _queue(self, record: CallRecord, *, urgent: bool = False) -> asyncio.Future[None]:
        """Record in the background (in order with every other record): an outcome need not
        be durable before the program hears it, since a call started and not finished on
        record is in doubt, never run again unasked. A failure stops the execution."""
        self._current[record.step] = record
        done = self._writer.enqueue(record, urgent=urgent)
        done.add_done_callback(lambda future: self._written(record, future))
        return done

    def _written(self, record: CallRecord, done: asyncio.Future[None]) -> None:
        if done.cancelled() or done.exception() is None:
            return
        exc = done.exception()
        _log.warning("durable execution %s: recording failed: %s", self.execution_id, exc)
        name = getattr(exc, "name", None)
        self._stop(
            failure=CodeModeError(
                name=name if isinstance(name, str) else "ExecutionStoreError",
                message=(
                    f"The host could not record call {record.step} of execution "
                    f"{self.execution_id} ({exc}); the execution stopped so that no call "
                    "runs unrecorded."
                ),
            )
        )

    def _quiet_soon(self) -> None:
        """``_quiet`` once this call's reply is written (the probe then follows it)."""
        if not self._quiet_scheduled:
            self._quiet_scheduled = True
            asyncio.get_running_loop().call_soon(self._quiet)

    def _quiet(self) -> None:
        """Ask the worker whether it is idle, when nothing runs here but waiting calls."""
        self._quiet_scheduled = False
        if self.stopped or self._control is None or self._busy - self._held > 0:
            return
        if not self._waiting and not self._held:
            return
        self._probe += 1
        self._calls_at_probe = self._steps
        self._control({"t": "probe", "n": self._probe})

    def _stop(self, *, failure: CodeModeError | None = None) -> None:
        if self.stopped:
            return
        self.stopped = True
        if failure is not None:
            self.failure = failure
        self._replayed.set()  # held calls wake, see the stop, and run nothing
        if self._control is not None:
            self._control({"t": "stop"})

    def _divergence(self, site: CallSite, recorded: CallRecord) -> CodeModeError:
        return CodeModeError(
            name="ReplayDivergenceError",
            line=site.line,
            message=(
                f"On resume, the program made a different call at step {site.step}: "
                f"{_describe(site.name, site.args_json, site.line)}, where the first run made "
                f"{_describe(recorded.name, recorded.input_json, recorded.line)}. The replay "
                f"stopped there and nothing after it ran. {self._applied()} {_RULE}"
            ),
        )

    def _applied(self) -> str:
        applied = [
            f"{_describe(c.name, c.input_json, None)} (step {c.step})"
            for step, c in sorted(self._current.items())
            if c.ran and c.state in ("ok", "error", "started")
        ]
        if not applied:
            return "No call of this execution had run yet."
        return "Calls already applied: " + ", ".join(applied) + "."


def paused_error(execution_id: str, journal: Journal) -> CodeModeError:
    """The error of a paused result: what waits, for whom, and not to run the code again."""
    waiting = journal.waiting()
    shown = []
    for call in waiting[:5]:
        if call.state == "pending":
            why = "waits for approval"
        else:
            why = (
                "is in doubt: it was running when its host stopped, so it may or may not have "
                "taken effect; an operator decides whether to run it again"
            )
        shown.append(f"{_describe(call.name, call.input_json, call.line)} {why}")
    if len(waiting) > 5:
        shown.append(f"and {len(waiting) - 5} more")
    count = "1 tool call is" if len(waiting) == 1 else f"{len(waiting)} tool calls are"
    return CodeModeError(
        name="ExecutionPaused",
        message=(
            f"The program is paused: {count} waiting for a decision by a person (not by "
            f"you): {'; '.join(shown)}. Execution {execution_id} will continue from this point "
            "once they are decided; calls already made will not run again, and a denied call "
            "reaches the program as ApprovalDeniedError. Do not run this code again (that "
            "would repeat its calls): tell the user what is waiting for approval."
        ),
    )


_RULE = (
    "A resumed program runs again from its start, so it must make the same calls in the same "
    "order (clock and random values are replayed; other outside inputs are not). Do not run "
    "the program again for what already ran."
)


def _describe(name: str, args_json: str | None, line: int | None) -> str:
    text = args_json or ""
    if len(text) > 120:
        text = text[:117] + "..."
    where = f" at line {line}" if line is not None else ""
    return f"external_{name}({text}){where}"


def _retrieve(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()


_MAX_REPROBES = 100  # probes in a row answered "still waiting on replies", with no new call
_LAZY_WRITE_S = 0.05  # how long an outcome may wait to share a commit with the next start


class _Writer:
    """Group commit: records written while a commit is under way go together in the next one,
    with the tape so far (so a call's record never lands before the events that led to it).
    Only a call's start is urgent; other records (outcomes, waits) ride along with the next
    urgent one, or are committed within ``_LAZY_WRITE_S``, so a sequential program pays about
    one commit per call."""

    def __init__(self, store: ExecutionStore, execution_id: str, owner: str, tape: Tape) -> None:
        self._store = store
        self._execution_id = execution_id
        self._owner = owner
        self._tape = tape
        self._queue: list[tuple[CallRecord, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None
        self._later: asyncio.TimerHandle | None = None

    def enqueue(self, record: CallRecord, *, urgent: bool) -> asyncio.Future[None]:
        """Queue ``record`` (at once, so records keep their order); the future is done when it
        is durable."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        done.add_done_callback(_retrieve)  # a caller cancelled meanwhile leaves none unread
        self._queue.append((record, done))
        if urgent:
            self._start()
        elif self._later is None and self._flushing is None:
            self._later = loop.call_later(_LAZY_WRITE_S, self._start)
        return done

    def _start(self) -> None:
        if self._later is not None:
            self._later.cancel()
            self._later = None
        if self._flushing is None and self._queue:
            self._flushing = asyncio.ensure_future(self._flush())

    async def drain(self) -> None:
        """Commit everything queued, now."""
        self._start()
        while self._flushing is not None:
            await asyncio.shield(self._flushing)

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                latest = {record.step: record for record, _ in batch}
                chunk = self._tape.unsaved()
                try:
                    await self._store.record(
                        self._execution_id,
                        owner=self._owner,
                        calls=[latest[step] for step in sorted(latest)],
                        tape=[chunk] if chunk else [],
                    )
                except asyncio.CancelledError:
                    for _, done in batch:
                        done.cancel()
                    raise
                except Exception as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._flushing = None
