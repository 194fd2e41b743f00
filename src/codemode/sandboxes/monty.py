"""MontySandbox: Python programs run by Monty (PyPI ``pydantic-monty``), a Python interpreter
in Rust that has no file system, network or environment unless the host gives it one.

Monty runs every program in a worker process of its own pool (warm, recycled after
``max_uses`` sessions); each execution gets a fresh session, so no state is shared between
programs. We drive a session through Monty's snapshot API, one suspension at a time, so that
every ``external_*`` call is the bridge's to run (allow-list, validation, approvals, tracing)
and all of them run concurrently: each call is answered with a pending future at once, and
the program continues until everything it can do waits on the host.

Monty's synchronous bindings run the session in a thread of ours: its asyncio bindings wake
the event loop from Monty's own threads, which can abort the interpreter at exit, and they
cost four times as much per call. Anything abnormal (timeout, cancellation, a limit) kills the
session's worker process; the pool replaces it.
"""

from __future__ import annotations

import asyncio
import atexit
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
from typing import Any, Final

import pydantic_monty

from .._result import CodeModeError
from ..languages import Language, get_language
from ..languages.python._program import MAX_RESULT_BYTES_NAME, RESULT_MARKER
from ._base import ExecutionHost, Job, Outcome, Sandbox, SandboxError, ToolReply

__all__ = ["MontySandbox"]

_SUSPENSIONS: Final = 2**31 - 1  # we count tool calls ourselves; Monty's default is 1000
_PROGRAM_FILE: Final = "<python-input-0>"  # how Monty names the first feed of a session
_LOG_LINE_COST: Final = 64  # as in the Deno runner: what one more line costs the host
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
    """The host ended the execution (timeout, cancellation, interpreter exit)."""


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
        self.queued: deque[tuple[int, str, str]] = deque()  # calls over the concurrency limit
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
        self.thread = threading.Thread(target=self._main, name="codemode-monty", daemon=True)

    # -- the loop's side ---------------------------------------------------------------------
    def abort(self) -> None:
        """End the execution now: its worker is killed, a waiting thread wakes."""
        with self.changed:
            self.aborted = True
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
                following = self.queued.popleft() if self.queued else None
                if following is None:
                    self.in_flight -= 1
                self.changed.notify_all()
            if following is not None:
                self._start_call(*following)

        return reply

    def _start_call(self, call_id: int, tool: str, args_json: str) -> None:
        self.host.start_call(tool, args_json, self._reply_to(call_id))

    def _settle_later(self, call_id: int, seconds: float) -> None:
        def settle() -> None:
            with self.changed:
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
            if self.aborted:  # nobody reads it: the waiting coroutine was cancelled or is gone
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
            os_policy={"sleep": "call_host"},
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
                    if isinstance(snapshot, pydantic_monty.FunctionSnapshot):
                        snapshot = self._on_call(snapshot)
                    elif isinstance(snapshot, pydantic_monty.FutureSnapshot):
                        snapshot = self._on_wait(snapshot)
                    else:
                        snapshot = self._on_name(snapshot)
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
        tool = name[len("external_") :] if name.startswith("external_") else None
        if tool is None or tool not in self.tools:
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
        try:
            data = to_json_value(args[0] if args else dict(kwargs), "input", f"input of {name}")
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
        call = (snapshot.call_id, tool, args_json)
        with self.lock:
            start = self.in_flight < limits.max_concurrent_tool_calls
            if start:
                self.in_flight += 1
            else:
                self.queued.append(call)
        if start:
            self._post(self._start_call, *call)
        return snapshot.resume({"future": ...})

    def _on_os_call(self, snapshot: pydantic_monty.FunctionSnapshot) -> Any:
        name = snapshot.function_name
        if name == "asyncio.sleep":
            self._post(self._settle_later, snapshot.call_id, _seconds(snapshot.args))
            return snapshot.resume({"future": ...})
        if name == "time.sleep":
            with self.changed:
                self.changed.wait_for(lambda: self.aborted, timeout=_seconds(snapshot.args))
                if self.aborted:
                    raise _Aborted
            return snapshot.resume({"return_value": None})
        return snapshot.resume_not_handled()  # files, environment: Monty's own refusal

    def _on_wait(self, snapshot: pydantic_monty.FutureSnapshot) -> Any:
        pending = snapshot.pending_call_ids
        with self.changed:
            self.changed.wait_for(lambda: self.aborted or any(i in self.replies for i in pending))
            if self.aborted:
                raise _Aborted
            ready = {i: self.replies.pop(i) for i in pending if i in self.replies}
        return snapshot.resume(ready)

    def _on_name(self, snapshot: pydantic_monty.NameLookupSnapshot) -> Any:
        name = snapshot.variable_name
        if name.startswith("external_") and name[len("external_") :] in self.tools:

            def reference() -> None: ...  # a name for the function: calls come back to us

            reference.__name__ = reference.__qualname__ = name
            return snapshot.resume(value=reference)
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

    async def execute(self, job: Job, host: ExecutionHost) -> Outcome:
        run = _Run(self, job, host)
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
