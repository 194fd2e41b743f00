"""MontySandbox: Python programs run by Monty (PyPI ``pydantic-monty``), a Python interpreter
in Rust that has no file system, network or environment unless the host gives it one.

Monty runs every program in a worker process of its own pool (warm, recycled after
``max_uses`` sessions); each execution gets a fresh session, so no state is shared between
programs. We drive a session through Monty's snapshot API, one suspension at a time, so that
every ``external_*`` call is the bridge's to run (allow-list, validation, approvals, tracing)
and all of them run concurrently: each call is answered with a pending future at once, and
the program continues until everything it can do waits on the host.

With discovery on, the name ``codemode`` is a host object whose ``search_tools`` and
``describe_tools`` reach the bridge under the reserved call names, like any call. A durable
execution (``Job.durable``) also reads the clock and entropy from the host, which records what
the program observed and in which order results reached it, and replays that on resume
(``_monty_tape.py``); the host ends the program to pause it once it waits on nothing but calls
held for a decision (the journal's ``probe``/``idle`` exchange, answered at a wait).

Monty's synchronous bindings run the session in a thread of ours: its asyncio bindings wake
the event loop from Monty's own threads, which can abort the interpreter at exit, and they
cost four times as much per call. Anything abnormal (timeout, cancellation, a limit, a pause)
kills the session's worker process; the pool replaces it.
"""

from __future__ import annotations

import asyncio
import atexit
import bisect
import contextlib
import contextvars
import datetime
import decimal
import json
import math
import os
import re
import signal
import threading
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

import pydantic_monty

from .._result import CodeModeError
from ..discovery._tools import DESCRIBE_CALL, SEARCH_CALL
from ..languages import Language, get_language
from ..languages.python._contract import DESCRIBE_FUNCTION, SEARCH_FUNCTION
from ..languages.python._program import MAX_RESULT_BYTES_NAME, RESULT_MARKER
from ._base import DurableHost, ExecutionHost, Job, Outcome, Sandbox, SandboxError, ToolReply
from ._monty_tape import ReplayDiverged, Tape, TapeFull

__all__ = ["MontySandbox"]

_SUSPENSIONS: Final = 2**31 - 1  # we count tool calls ourselves; Monty's default is 1000
_PROGRAM_FILE: Final = "<python-input-0>"  # how Monty names the first feed of a session
_LOG_LINE_COST: Final = 64  # as in the Deno runner: what one more line costs the host
_MAX_URANDOM: Final = 1 << 20  # bytes per os.urandom() call, as Monty's own handler allows
# Sleeps wait on the host (so a timeout ends them); a durable execution also reads the clock and
# entropy from the host, which records them (see _monty_tape.py).
_OS_POLICY: Final[pydantic_monty.OSPolicy] = {"sleep": "call_host"}
_DURABLE_OS_POLICY: Final[pydantic_monty.OSPolicy] = {
    "sleep": "call_host",
    "datetime": "call_host",
    "random_start": "call_host",
}
# The `codemode` object's functions, by the name they reach the host with -> the reserved call
# name the bridge answers them under (discovery/_tools.py).
_DISCOVERY_CALLS: Final = {SEARCH_FUNCTION: SEARCH_CALL, DESCRIBE_FUNCTION: DESCRIBE_CALL}
# Exceptions a tool's failure can be raised as in the program: Python's built-ins Monty knows.
_BUILTIN_ERRORS: Final = frozenset(
    {"Exception", "ArithmeticError", "OverflowError", "ZeroDivisionError", "LookupError",
     "IndexError", "KeyError", "RuntimeError", "NotImplementedError", "RecursionError",
     "AttributeError", "NameError", "ValueError", "UnicodeDecodeError", "UnicodeEncodeError",
     "OSError", "FileNotFoundError", "FileExistsError", "IsADirectoryError",
     "NotADirectoryError", "PermissionError", "AssertionError", "TimeoutError", "TypeError",
     "ConnectionError"}
)  # fmt: skip
# Our error names for tool failures, as the Python exception the program catches.
_ERROR_TYPES: Final = {
    "ValidationError": "ValueError",
    "ApprovalDeniedError": "PermissionError",
    "ReferenceError": "NameError",
    "UnknownToolError": "LookupError",  # describe_tools() of a name that is no tool
}


# --------------------------------------------------------------------------------------------
# Values crossing from the program to a tool: the documented JSON rules, as the prelude
# (``languages/python/_program.py``) applies them to the result inside the sandbox.

_COROUTINE: Final = re.compile(
    r"<coroutine external_future\(\d+\)>|<coroutine object [^>]*>|<gather\(\d+\)>"
)
_FUNCTION: Final = re.compile(r"<function '[^']*' at 0x[0-9a-f]+>")


def to_json_value(value: Any, path: str, what: str, seen: list[Any] | None = None) -> Any:
    """``value`` (as Monty hands it to the host) as JSON data, or a TypeError naming the
    problem and where. An un-awaited coroutine reaches the host as its repr: it is recognised
    by that."""
    seen = [] if seen is None else seen
    if isinstance(value, str):
        if _COROUTINE.fullmatch(value):
            raise TypeError(
                f"{what} is not JSON: an un-awaited coroutine at {path}; add `await` before the "
                "external_* call (or await asyncio.gather(...) for several)"
            )
        if _FUNCTION.fullmatch(value):
            raise TypeError(f"{what} is not JSON: function at {path}")
        return value
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        raise TypeError(
            f"{what} is not JSON: {value} at {path} (NaN and infinity have no JSON form; use "
            "None or a string)"
        )
    if isinstance(value, list | tuple | set | frozenset | dict):
        if any(other is value for other in seen):
            raise TypeError(f"{what} is not JSON: circular reference at {path}")
        seen.append(value)
        out: Any
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if isinstance(key, str):
                    name = key
                elif key is None or isinstance(key, bool):
                    name = json.dumps(key)
                elif isinstance(key, int | float):
                    name = str(key)
                else:
                    raise TypeError(
                        f"{what} is not JSON: a key of type {type(key).__name__} at {path} "
                        "(JSON keys are strings)"
                    )
                out[name] = to_json_value(item, f"{path}[{key!r}]", what, seen)
        else:
            items = list(value)
            if isinstance(value, set | frozenset):
                with contextlib.suppress(TypeError):
                    items = sorted(items)
            out = [to_json_value(v, f"{path}[{i}]", what, seen) for i, v in enumerate(items)]
        seen.pop()
        return out
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return to_json_value(float(value), path, what, seen)
    if isinstance(value, bytes):
        raise TypeError(
            f"{what} is not JSON: bytes at {path} (decode them: .decode() for text, "
            "base64.b64encode(...).decode() for binary)"
        )
    if isinstance(value, pydantic_monty.MontyClassProxy):
        raise TypeError(
            f"{what} is not JSON: an instance of {value.name} at {path} (return a dict of its "
            "fields)"
        )
    kind = getattr(value, "name", type(value).__name__)
    raise TypeError(f"{what} is not JSON: {kind} at {path}")


# --------------------------------------------------------------------------------------------
# One execution, driven in a thread of its own.

# Every running execution, so that interpreter exit can stop them before Python finalises
# (a thread still inside Monty then would abort the process).
_RUNS: weakref.WeakSet[_Run] = weakref.WeakSet()
_POOLS: weakref.WeakSet[MontySandbox] = weakref.WeakSet()


@atexit.register
def _stop_everything() -> None:
    runs = list(_RUNS)
    for run in runs:
        run.abort()
    for run in runs:
        run.thread.join(timeout=5)
    for sandbox in list(_POOLS):
        sandbox.close_now()


class _Aborted(Exception):
    """The host ended the execution (timeout, cancellation, interpreter exit, a pause)."""


def _host_function(name: str) -> Callable[[], None]:
    """A function the program can hold and call: Monty hands each call back to us by ``name``."""

    def reference() -> None: ...

    reference.__name__ = reference.__qualname__ = name
    return reference


@dataclass(frozen=True)
class CodemodeDiscovery:
    """The ``codemode`` object of a program whose catalog is outlined: its two functions are
    answered by the host, under the reserved names the bridge knows (the stubs in
    ``languages/python/_contract.py`` declare it under this name)."""

    search_tools: Callable[[], None]
    describe_tools: Callable[[], None]


_PAUSED: Final = Outcome(
    ok=False,
    error=CodeModeError(name="ExecutionPaused", message="The host paused the execution."),
)


class _Ended(Exception):
    """The program broke a limit: the execution ends with ``outcome``."""

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome


class _Run:
    """One program in one Monty session. The thread owns the session; the loop owns the
    tool calls; ``lock``/``changed`` guard what they share."""

    def __init__(self, sandbox: MontySandbox, job: Job, host: ExecutionHost) -> None:
        self.sandbox = sandbox
        self.job = job
        self.host = host
        self.loop = asyncio.get_running_loop()
        self.context = contextvars.copy_context()  # the execution's span parents its calls
        self.done: asyncio.Future[Outcome] = self.loop.create_future()
        self.finished: asyncio.Future[None] = self.loop.create_future()
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.replies: dict[int, Any] = {}  # Monty call id -> its resume value
        self.queued: deque[tuple[int, str, str, int | None]] = (
            deque()
        )  # calls over the concurrency limit
        self.in_flight = 0
        self.calls = 0
        self.aborted = False
        self.pid: int | None = None  # the worker, while this run has it checked out
        self.tools = frozenset(job.tools)
        self.code_lines = job.source.count("\n") + 1 - job.line_offset
        self.raised: dict[tuple[str, str], str] = {}  # (type, message) -> the tool's error name
        self.log_bytes = 0
        self.logs_closed = False
        self.partial = {"stdout": "", "stderr": ""}
        # A durable execution (job.durable): the host hears the tape and asks whether the
        # program is idle (``asked``); it may stop it, to pause.
        self.durable: DurableHost | None = None
        self.tape: Tape | None = None
        if job.durable is not None:
            self.durable = cast(DurableHost, host)  # a durable job comes with a DurableHost
            self.tape = Tape(job.durable.values, self._went_live)
        self.futures = 0  # futures made so far: each is numbered in order (tape "w" entries)
        self.number: dict[int, int] = {}  # Monty call id -> its number
        self.call_of: dict[int, int] = {}  # number -> Monty call id
        self.outstanding: set[int] = set()  # tool calls not answered yet (their Monty ids)
        self.sleeps: dict[int, float] = {}  # asyncio.sleep()s not over yet: id -> seconds
        self.asked = 0  # the latest probe of the host
        self.answered = 0
        self.stopped = False
        self.line_starts: list[int] | None = None
        self.thread = threading.Thread(target=self._main, name="codemode-monty", daemon=True)

    # -- the loop's side ---------------------------------------------------------------------
    def abort(self) -> None:
        """End the execution now: its worker is killed, a waiting thread wakes."""
        with self.changed:
            self.aborted = True
            self._kill()
            self.changed.notify_all()

    def control(self, message: dict[str, Any]) -> None:
        """The journal's requests (durable executions): ``probe`` asks whether the program is
        idle, ``stop`` ends it to pause (the outcome is then ExecutionPaused)."""
        with self.changed:
            if message.get("t") == "probe":
                n = message.get("n")
                if isinstance(n, int) and n > self.asked:
                    self.asked = n
            elif message.get("t") == "stop":
                self.stopped = self.aborted = True
                self._kill()
            self.changed.notify_all()

    def _kill(self) -> None:
        # Under the lock: the thread gives the worker back to the pool only after it has
        # taken the lock and cleared ``pid``, so we can never kill another execution's worker.
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)
            self.pid = None

    def _reply_to(self, call_id: int) -> Callable[[ToolReply], None]:
        def reply(answer: ToolReply) -> None:
            if answer.ok:
                value: dict[str, Any] = {"return_value": answer.value}
            else:
                exc_type = _ERROR_TYPES.get(answer.error_name, answer.error_name)
                if exc_type not in _BUILTIN_ERRORS:
                    exc_type = "Exception"
                message = answer.error_message
                if exc_type == "KeyError" and len(message) > 1 and message[0] == message[-1] == "'":
                    message = message[1:-1]  # str(KeyError(k)) quotes k; Monty quotes it again
                self.raised[
                    (exc_type, str(KeyError(message)) if exc_type == "KeyError" else message)
                ] = answer.error_name
                value = {"exc_type": exc_type, "message": message}
            with self.changed:
                self.replies[call_id] = value
                self.outstanding.discard(call_id)
                following = self.queued.popleft() if self.queued else None
                if following is None:
                    self.in_flight -= 1
                self.changed.notify_all()
            if following is not None:
                self._start_call(*following)

        return reply

    def _start_call(self, call_id: int, tool: str, args_json: str, line: int | None = None) -> None:
        if self.durable is not None:  # the line of the call, for the journal's record of it
            self.durable.record({"l": line} if line is not None else {})
        self.host.start_call(tool, args_json, self._reply_to(call_id))

    def _settle_later(self, call_id: int, seconds: float) -> None:
        def settle() -> None:
            with self.changed:
                if self.tape is not None and self.sleeps.pop(call_id, None) is None:
                    return  # replayed meanwhile
                self.replies[call_id] = {"return_value": None}
                self.changed.notify_all()

        self.loop.call_later(seconds, settle)

    def _post(self, callback: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            self.loop.call_soon_threadsafe(callback, *args, context=self.context)

    # -- the thread's side -------------------------------------------------------------------
    def _main(self) -> None:
        try:
            outcome: Outcome | BaseException = self._drive()
        except BaseException as exc:  # reported to the waiting coroutine, never lost
            outcome = exc
        self._flush_partial_lines()
        self._post(self._finish, outcome)

    def _finish(self, outcome: Outcome | BaseException) -> None:
        if not self.done.done():
            if self.stopped:  # the journal paused the execution
                self.done.set_result(_PAUSED)
            elif self.aborted:  # nobody reads it: the waiting coroutine was cancelled or is gone
                self.done.cancel()
            elif isinstance(outcome, BaseException):
                self.done.set_exception(outcome)
            else:
                self.done.set_result(outcome)
        if not self.finished.done():
            self.finished.set_result(None)

    def _drive(self) -> Outcome:
        pool = self.sandbox._monty()
        limits = self.job.limits
        with pool.checkout(
            limits={
                "max_memory": self.sandbox.memory_mb * 1024 * 1024,
                "max_suspensions": _SUSPENSIONS,
            },
            os_policy=_OS_POLICY if self.tape is None else _DURABLE_OS_POLICY,
        ) as session:
            with self.lock:
                if self.aborted:
                    raise _Aborted
                self.pid = session.worker_pid
            clean = False
            try:
                snapshot = session.feed_start(
                    self.job.source,
                    inputs={MAX_RESULT_BYTES_NAME: limits.max_result_bytes},
                    print_callback=self._print,
                )
                while not isinstance(snapshot, pydantic_monty.MontyComplete):
                    if self.aborted:
                        raise _Aborted
                    try:
                        if isinstance(snapshot, pydantic_monty.FunctionSnapshot):
                            snapshot = self._on_call(snapshot)
                        elif isinstance(snapshot, pydantic_monty.FutureSnapshot):
                            snapshot = self._on_wait(snapshot)
                        else:
                            snapshot = self._on_name(snapshot)
                    except (ReplayDiverged, TapeFull) as exc:  # durable executions only
                        name = "ReplayDivergenceError"
                        if isinstance(exc, TapeFull):
                            name = "DurableLimitError"
                        line = self._line(snapshot.position)
                        error = CodeModeError(name=name, message=str(exc), line=line)
                        return Outcome(ok=False, error=error)
                clean = True
                return self._complete(snapshot.output)
            except _Ended as ended:
                return ended.outcome
            except (pydantic_monty.MontyRuntimeError, pydantic_monty.MontySyntaxError) as exc:
                clean = True  # the program raised: the session ended normally
                return self._failed(exc)
            except pydantic_monty.MontyCrashedError as exc:
                if self.aborted:
                    raise _Aborted from None
                raise self._crash(exc) from None
            except pydantic_monty.MontyError as exc:
                if self.aborted:
                    raise _Aborted from None
                raise SandboxError("SandboxError", f"The Monty sandbox failed: {exc}") from None
            finally:
                with self.lock:
                    if not clean:
                        self._kill()  # a suspended or broken session is never reused
                    self.pid = None

    def _on_call(self, snapshot: pydantic_monty.FunctionSnapshot) -> Any:
        name = snapshot.function_name
        if snapshot.is_os_function:
            return self._on_os_call(snapshot)
        if snapshot.object_id is not None:  # a method of the one host object, `codemode`
            error = AttributeError(f"'CodemodeDiscovery' object has no attribute '{name}'")
            return snapshot.resume({"exception": error})
        if name in _DISCOVERY_CALLS and _DISCOVERY_CALLS[name] in self.tools:
            tool = _DISCOVERY_CALLS[name]
            data: Any = _discovery_input(name, snapshot.args, snapshot.kwargs)
            if isinstance(data, TypeError):
                return snapshot.resume({"exception": data})
        else:
            tool = name[len("external_") :] if name.startswith("external_") else ""
            if not tool or tool not in self.tools:
                return snapshot.resume({"exception": NameError(f"name '{name}' is not defined")})
            args, kwargs = snapshot.args, snapshot.kwargs
            if args and (kwargs or len(args) > 1):
                return snapshot.resume(
                    {
                        "exception": TypeError(
                            f"{name}() takes keyword arguments (or one dict): "
                            f"await {name}(field=value, ...)"
                        )
                    }
                )
            data = args[0] if args else dict(kwargs)
        try:
            data = to_json_value(data, "input", f"input of {name}")
            args_json = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        except TypeError as exc:
            return snapshot.resume({"exception": TypeError(str(exc))})
        limits = self.job.limits
        self.calls += 1
        if self.calls > limits.max_tool_calls:
            raise _Ended(
                _error(
                    "ToolCallLimitError",
                    f"The program made more than {limits.max_tool_calls} tool calls (the limit "
                    "per execution); batch work into fewer calls.",
                )
            )
        call_id = snapshot.call_id
        line: int | None = None
        chunk: dict[str, Any] = {}
        if self.tape is not None:
            self._number(call_id)
            line = self._line(snapshot.position)
            chunk = self.tape.report()
        with self.lock:
            start = self.in_flight < limits.max_concurrent_tool_calls
            if start:
                self.in_flight += 1
            else:
                self.queued.append((call_id, tool, args_json, line))
            self.outstanding.add(call_id)
        if chunk:  # what the program observed before this call, for the journal's tape
            self._post(cast(DurableHost, self.durable).record, chunk)
        if start:
            self._post(self._start_call, call_id, tool, args_json, line)
        return snapshot.resume({"future": ...})

    def _on_os_call(self, snapshot: pydantic_monty.FunctionSnapshot) -> Any:
        name = snapshot.function_name
        tape = self.tape
        if name == "asyncio.sleep":
            seconds = _seconds(snapshot.args)
            if tape is None:
                self._post(self._settle_later, snapshot.call_id, seconds)
            else:
                self._number(snapshot.call_id)
                with self.lock:
                    self.sleeps[snapshot.call_id] = seconds
                if not tape.replaying:  # replayed sleeps end when the record says they did
                    self._post(self._settle_later, snapshot.call_id, seconds)
            return snapshot.resume({"future": ...})
        if name == "time.sleep":
            if tape is not None and tape.replay_sleep():
                return snapshot.resume({"return_value": None})
            seconds = _seconds(snapshot.args)
            with self.changed:
                self.changed.wait_for(lambda: self.aborted, timeout=seconds)
                if self.aborted:
                    raise _Aborted
            if tape is not None:
                tape.slept(seconds)
            return snapshot.resume({"return_value": None})
        if name == "os.urandom":
            size = snapshot.args[0] if snapshot.args else None
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                error: BaseException = TypeError("os.urandom() takes a size: a non-negative int")
                return snapshot.resume({"exception": error})
            if size > _MAX_URANDOM:
                error = MemoryError(f"os.urandom() size exceeds the limit of {_MAX_URANDOM} bytes")
                return snapshot.resume({"exception": error})
            value = os.urandom(size) if tape is None else tape.entropy(size)
            return snapshot.resume({"return_value": value})
        if tape is not None and name in ("time.time", "datetime.now", "date.today"):
            return snapshot.resume({"return_value": _clock_answer(name, snapshot.args, tape)})
        return snapshot.resume_not_handled()  # files, environment: Monty's own refusal

    def _on_wait(self, snapshot: pydantic_monty.FutureSnapshot) -> Any:
        pending = snapshot.pending_call_ids
        if self.tape is not None:
            return snapshot.resume(self._durable_wait(pending))
        with self.changed:
            self.changed.wait_for(lambda: self.aborted or any(i in self.replies for i in pending))
            if self.aborted:
                raise _Aborted
            ready = {i: self.replies.pop(i) for i in pending if i in self.replies}
        return snapshot.resume(ready)

    def _durable_wait(self, pending: list[int]) -> dict[int, Any]:
        """The results to resolve at this wait: the recorded ones while replaying (each when it
        is here), whatever is here once live; meanwhile, answer the host's probes."""
        tape = cast(Tape, self.tape)
        with self.changed:
            while True:
                if self.aborted:
                    raise _Aborted
                delivery = self._deliverable(tape, pending)
                if delivery:
                    break
                if self.asked > self.answered and not self.sleeps:
                    # Nothing here can make progress: only calls the host holds remain.
                    self.answered = self.asked
                    host = cast(DurableHost, self.durable)
                    self._post(host.idle, self.asked, len(self.outstanding), tape.report())
                self.changed.wait()
            ready: dict[int, Any] = {}
            for call_id in delivery:
                ready[call_id] = self.replies.pop(call_id, None) or {"return_value": None}
                self.sleeps.pop(call_id, None)  # a sleep ends when its result is given
        tape.delivered([self.number[call_id] for call_id in delivery])
        return ready

    def _deliverable(self, tape: Tape, pending: list[int]) -> list[int]:
        """Under the lock: the Monty ids to resolve now, in order (empty: wait)."""
        recorded = tape.next_delivery()
        if recorded is None:
            return [i for i in self.replies if i in pending]  # in the order they came
        waiting = set(pending)
        ids = [self.call_of.get(n) for n in recorded]
        if any(i is None or i not in waiting for i in ids):
            raise tape.diverged_delivery(recorded, sorted(self.number[i] for i in pending))
        delivery = [i for i in ids if i is not None]
        if all(i in self.replies or i in self.sleeps for i in delivery):
            return delivery
        return []

    def _number(self, call_id: int) -> None:
        self.futures += 1
        self.number[call_id] = self.futures
        self.call_of[self.futures] = call_id

    def _went_live(self) -> None:
        """The replay is used up: sleeps made meanwhile start waiting now."""
        with self.lock:
            sleeps = list(self.sleeps.items())
        for call_id, seconds in sleeps:
            self._post(self._settle_later, call_id, seconds)

    def _line(self, position: pydantic_monty.SourceRange) -> int | None:
        """The line of the model's code at ``position``, or None outside it."""
        if position.filename != _PROGRAM_FILE:
            return None
        if self.line_starts is None:
            starts = [0]
            for i, byte in enumerate(self.job.source.encode()):
                if byte == 10:
                    starts.append(i + 1)
            self.line_starts = starts
        line = bisect.bisect_right(self.line_starts, position.start) - self.job.line_offset
        return line if 1 <= line <= self.code_lines else None

    def _on_name(self, snapshot: pydantic_monty.NameLookupSnapshot) -> Any:
        name = snapshot.variable_name
        if snapshot.object_id is None:
            if name.startswith("external_") and name[len("external_") :] in self.tools:
                return snapshot.resume(value=_host_function(name))
            if name == "codemode" and SEARCH_CALL in self.tools and DESCRIBE_CALL in self.tools:
                functions = CodemodeDiscovery(
                    _host_function(SEARCH_FUNCTION), _host_function(DESCRIBE_FUNCTION)
                )
                return snapshot.resume(
                    value=pydantic_monty.ClassInstance(functions, eager_attrs="all")
                )
        return snapshot.resume()

    def _complete(self, output: Any) -> Outcome:
        limit = self.job.limits.max_result_bytes
        if isinstance(output, tuple) and len(output) == 3 and output[0] == RESULT_MARKER:
            status, value = output[1], output[2]
            if status == "ok" and isinstance(value, str):
                # Checked again here: the program can rebind the prelude's limit.
                size = len(value) if len(value) * 4 <= limit else len(value.encode())
                return _too_large(size, limit) if size > limit else Outcome(True, value)
            if status == "too_large" and isinstance(value, int):
                return _too_large(value, limit)
        if output is None:
            return Outcome(ok=True)
        try:  # a value the program did not end with (e.g. forged): converted here instead
            text = json.dumps(to_json_value(output, "result", "result"), ensure_ascii=False)
        except TypeError as exc:
            return _error("TypeError", str(exc))
        size = len(text.encode())
        return _too_large(size, limit) if size > limit else Outcome(ok=True, result_json=text)

    def _failed(
        self, exc: pydantic_monty.MontyRuntimeError | pydantic_monty.MontySyntaxError
    ) -> Outcome:
        inner = exc.exception()
        name = type(inner).__name__
        message = exc.display(format="msg")
        if isinstance(exc, pydantic_monty.MontySyntaxError):
            name = "SyntaxError"
        elif name == "MemoryError" and "memory limit exceeded" in message:
            return _error(
                "MemoryLimitError",
                f"The program used more than the memory limit of {self.sandbox.memory_mb} MB; "
                "use less memory.",
            )
        name = self.raised.get((name, message), name)  # a tool's error keeps its class name
        line = None
        for frame in reversed(exc.traceback()):
            candidate = frame.line - self.job.line_offset
            if frame.filename == _PROGRAM_FILE and 1 <= candidate <= self.code_lines:
                line = candidate
                break
        return Outcome(ok=False, error=CodeModeError(message=message, name=name, line=line))

    def _crash(self, exc: pydantic_monty.MontyCrashedError) -> SandboxError:
        text = str(exc)
        if "memory limit" in text:
            return SandboxError(
                "MemoryLimitError",
                f"The program used more than the memory limit of {self.sandbox.memory_mb} MB; "
                "use less memory.",
            )
        return SandboxError(
            "SandboxCrashError", f"The Monty worker ended during the program: {text}"
        )

    def _print(self, stream: str, text: str) -> None:
        lines = (self.partial[stream] + text).split("\n")
        self.partial[stream] = lines.pop()
        for line in lines:
            self._log(stream, line)

    def _flush_partial_lines(self) -> None:
        for stream, rest in self.partial.items():
            if rest:
                self._log(stream, rest)
            self.partial[stream] = ""

    def _log(self, stream: str, line: str) -> None:
        if self.logs_closed:
            return
        text = f"[stderr] {line}" if stream == "stderr" else line
        limit = self.job.limits.max_log_bytes
        self.log_bytes += len(text.encode()) + _LOG_LINE_COST
        if self.log_bytes > limit:
            self.logs_closed = True
            text = f"[logs truncated: over the limit of {limit} bytes]"
        self._post(self.host.log, text)


def _seconds(args: tuple[Any, ...]) -> float:
    value = args[0] if args else 0
    return max(float(value), 0.0) if isinstance(value, int | float) else 0.0


def _clock_answer(name: str, args: tuple[Any, ...], tape: Tape) -> Any:
    """A recorded clock read as the OS function ``name`` returns it (the sandbox's zone is UTC,
    as without a store)."""
    seconds = tape.clock()
    if name == "time.time":
        return seconds
    now = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    if name == "date.today":
        return now.date()
    zone = args[0] if args else None
    if isinstance(zone, datetime.tzinfo):
        return now.astimezone(zone)
    return now.replace(tzinfo=None)


def _discovery_input(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The input of ``codemode.search_tools(query, limit=10)`` or
    ``codemode.describe_tools(names)`` (one dict of the input is accepted too), or the
    TypeError that says how to call it."""
    search = name == SEARCH_FUNCTION
    usage = (
        "await codemode.search_tools(query, limit=10)"
        if search
        else 'await codemode.describe_tools(["name", ...])'
    )
    fields = ("query", "limit") if search else ("names",)
    if len(args) == 1 and not kwargs and isinstance(args[0], dict):
        return args[0]  # the input as one dict, as external_* functions take it
    if len(args) > len(fields):
        return TypeError(f"{name}() takes at most {len(fields)} arguments: {usage}")
    data = dict(zip(fields, args, strict=False))
    for key, value in kwargs.items():
        if key not in fields:
            return TypeError(f"{name}() got an unexpected keyword argument '{key}': {usage}")
        if key in data:
            return TypeError(f"{name}() got multiple values for argument '{key}': {usage}")
        data[key] = value
    if fields[0] not in data:
        return TypeError(f"{name}() missing required argument '{fields[0]}': {usage}")
    if not search and isinstance(data["names"], str | tuple):
        names = data["names"]
        data["names"] = [names] if isinstance(names, str) else list(names)
    return data


def _error(name: str, message: str) -> Outcome:
    return Outcome(ok=False, error=CodeModeError(message=message, name=name))


def _too_large(size: int, limit: int) -> Outcome:
    return _error(
        "ResultTooLargeError",
        f"The result is {size} bytes of JSON, over the limit of {limit}; return a smaller value "
        "(filter, aggregate or paginate).",
    )


class MontySandbox(Sandbox):
    """Python programs in Monty: no file system, network or environment, a heap limit, and a
    warm pool of worker processes (``prestart`` started ahead of demand, at most
    ``max_processes``, each recycled after ``max_uses`` executions)."""

    def __init__(
        self,
        *,
        memory_mb: int = 512,
        prestart: int = 2,
        max_processes: int = 16,
        max_uses: int = 100,
    ) -> None:
        if memory_mb < 16:
            raise ValueError(f"memory_mb must be at least 16, got {memory_mb}")
        if prestart < 0 or max_uses < 1 or max_processes < 1:
            raise ValueError("prestart must be >= 0, max_uses and max_processes >= 1")
        if prestart > max_processes:
            raise ValueError(f"prestart ({prestart}) cannot exceed max_processes ({max_processes})")
        self.memory_mb = memory_mb
        self.prestart = prestart
        self.max_processes = max_processes
        self.max_uses = max_uses
        self._pool: pydantic_monty.Monty | None = None
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MontySandbox(memory_mb={self.memory_mb}, prestart={self.prestart})"

    @property
    def language(self) -> Language:
        return get_language("python")

    def _monty(self) -> pydantic_monty.Monty:
        """The worker pool, started on first use (blocking: call it off the event loop)."""
        with self._pool_lock:
            if self._pool is None:
                pool = pydantic_monty.Monty(
                    min_processes=self.prestart,
                    max_processes=self.max_processes,
                    max_checkouts_per_worker=self.max_uses,
                )
                pool.__enter__()
                self._pool = pool
                _POOLS.add(self)
            return self._pool

    async def start(self) -> None:
        """Start the pool (and its ``prestart`` workers) now instead of at the first execution."""
        await asyncio.to_thread(self._monty)

    async def __aenter__(self) -> MontySandbox:
        await self.start()
        return self

    @property
    def supports_durable(self) -> bool:
        return True  # the host records what the program observes (see _monty_tape.py)

    async def execute(self, job: Job, host: ExecutionHost) -> Outcome:
        run = _Run(self, job, host)
        if run.durable is not None:
            run.durable.attach(run.control)
        _RUNS.add(run)
        run.thread.start()
        try:
            return await asyncio.shield(run.done)
        except asyncio.CancelledError:
            run.abort()
            # Nothing of an execution outlives it: wait for its thread to let go of the session.
            await asyncio.shield(run.finished)
            raise
        except _Aborted:  # interpreter exit stopped it
            raise SandboxError(
                "SandboxExitError", "The sandbox was shut down during the program"
            ) from None

    def close_now(self) -> None:
        """Stop the workers (blocking)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.__exit__(None, None, None)

    async def aclose(self) -> None:
        """Stop the worker processes; the next execution starts new ones."""
        await asyncio.to_thread(self.close_now)

    def close(self) -> None:
        """``aclose`` for callers without an event loop."""
        self.close_now()
