"""DenoSandbox: programs run in a Deno worker with no permissions, in a process that holds
almost nothing, behind a channel only the trusted runner can open.

Each process runs one execution at a time, each in a fresh worker (a realm is never reused),
and is kept warm for the next one: processes are started ahead of demand so an execution pays
only for its program. Anything abnormal (timeout, crash, limit, protocol violation) kills the
whole process group; the pool replaces it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import weakref
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import psutil

from .._json import dumps, dumps_line, loads
from .._result import CodeModeError
from ._base import DurableHost, ExecutionHost, Job, Outcome, Sandbox, SandboxError, ToolReply
from ._channel import RunnerChannel
from ._confine import (
    Confinement,
    ConfinementError,
    ConfinementReport,
    ConfinementSetting,
    Wall,
    resolve_wall,
)
from ._runner_build import RUNNER_BUILT

__all__ = ["DenoSandbox"]

RUNNER = RUNNER_BUILT  # runner.ts, transpiled once (see _runner_build.py)
_STDERR_TAIL = 8192
_START_TIMEOUT = 20.0
_RECYCLE_WAIT = 0.1  # seconds an execution waits for a recycling process before starting one
# Threads one worker may add: its own, and its runtime's blocking pool (32 in Deno 2), with slack.
_THREADS_PER_WORKER = 40


def deno_executable() -> str:
    """The Deno binary shipped by the ``deno`` PyPI package (never one found on PATH)."""
    import deno

    return str(deno.find_deno_bin())


@dataclass(frozen=True)
class _ProcessConfig:
    heap_mb: int
    memory_mb: int
    host_privileges: bool  # LocalSandbox: the program may do anything the user may
    deno_dir: str
    wall: Wall | None = None  # the OS wall around the process, if any
    confinement: Confinement | None = None  # what the wall lets through


# Every live sandbox process, so that interpreter exit leaves none behind.
_LIVE: weakref.WeakSet[_DenoProcess] = weakref.WeakSet()


@atexit.register
def _kill_all() -> None:
    for process in list(_LIVE):
        process.kill()


class _DenoProcess:
    """One runner process and its socket; serves executions one at a time."""

    def __init__(self, proc: subprocess.Popen[bytes], workdir: str) -> None:
        self.proc = proc
        self.workdir = workdir
        self.channel: RunnerChannel | None = None
        self.uses = 0
        self.ready = False  # a fresh realm is waiting for the next job
        self.over_memory = False
        self.over_threads: int | None = None  # the thread allowance the program went over
        self.fresh_rss = 0  # bytes, when its first realm was ready
        self.heap_mb = 0  # the V8 heap limit it was started with
        self.message_limit = 0  # bytes in one line from the runner
        self.retire_rss = 0  # bytes; a process holding more once a job is done is not reused
        self.ready_threads = 0  # its thread count when its realm was last ready
        self._process: psutil.Process | None = None
        self._stderr: _StderrTail | None = None
        self._stderr_transport: asyncio.ReadTransport | None = None
        self._reaped: asyncio.Future[int] | None = None
        self._killed = False
        self.wall: Wall | None = None
        self.runtime_pid = proc.pid  # Deno's own pid (a wall may start it as a grandchild)
        _LIVE.add(self)

    @classmethod
    async def start(cls, config: _ProcessConfig, limit: int) -> _DenoProcess:
        workdir = tempfile.mkdtemp(prefix="codemode-")  # 0700: only we can reach the socket
        socket_path = os.path.join(workdir, "host.sock")
        loop = asyncio.get_running_loop()
        # One connection is accepted, the runner's; then nothing listens. A plain socket and
        # sock_accept, not a server: no accept task of asyncio's own is left to cancel (and
        # report, in debug mode) when a loop shuts down during a start.
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(socket_path)
            listener.listen(1)
            listener.setblocking(False)
            proc = _spawn(
                [deno_executable(), "run", *_deno_flags(config, socket_path), str(RUNNER)],
                env=_environment(config, socket_path, workdir),
                cwd=workdir,
                config=config,
            )
        except BaseException:
            listener.close()
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        self = cls(proc, workdir)
        self.wall = config.wall
        self.heap_mb = config.heap_mb
        self.message_limit = limit
        exited: asyncio.Future[Any] | None = None
        accepted: asyncio.Future[tuple[socket.socket, Any]] | None = None
        try:
            await self._read_stderr()
            exited = asyncio.ensure_future(self.wait_exit())
            accepted = asyncio.ensure_future(loop.sock_accept(listener))
            waiting: set[asyncio.Future[Any]] = {accepted, exited}
            done, _ = await asyncio.wait(
                waiting, timeout=_START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
            )
            if accepted not in done:
                await self._stderr_settled()
                raise SandboxError(
                    "SandboxStartError",
                    f"The Deno sandbox process did not start: {self.describe_exit()}",
                )
            connection, _ = accepted.result()
            try:
                _, self.channel = await loop.connect_accepted_socket(
                    lambda: RunnerChannel(limit), sock=connection
                )
            except BaseException:
                connection.close()
                raise
            self.runtime_pid = _peer_pid(connection) or proc.pid
        except BaseException:
            await asyncio.shield(self.closed())  # reaped even when the start is cancelled
            raise
        finally:
            if exited is not None:
                exited.cancel()
            if accepted is not None and self.channel is None:
                _drop_connection(accepted)
            _close_listener(listener)
            with contextlib.suppress(OSError):
                os.unlink(socket_path)
        return self

    async def _read_stderr(self) -> None:
        """Keep the last bytes of stderr for error messages; a flood is read and dropped. A
        protocol rather than a reading task: nothing is left pending when a loop closes."""
        assert self.proc.stderr is not None
        loop = asyncio.get_running_loop()
        tail = self._stderr = _StderrTail(loop)
        self._stderr_transport, _ = await loop.connect_read_pipe(lambda: tail, self.proc.stderr)

    @property
    def stderr_tail(self) -> bytes:
        return b"" if self._stderr is None else bytes(self._stderr.tail)

    async def wait_exit(self) -> int:
        """Wait until the process exits by itself, and reap it. Polled: asyncio's child
        watchers cost a thread per process and, on Python 3.11, can wait forever for a spawn
        that was cancelled."""
        while (code := self.proc.poll()) is None:
            await asyncio.sleep(0.005)
        return code

    def _reaping(self) -> asyncio.Future[int]:
        """A future for the exit code of a killed process, polled from loop callbacks until it
        is reaped (a few milliseconds). Unlike a task, a callback still pending when a loop
        closes is dropped silently."""
        if self._reaped is None:
            loop = asyncio.get_running_loop()
            reaped: asyncio.Future[int] = loop.create_future()
            self._reaped = reaped

            def poll() -> None:
                code = self.proc.poll()
                if code is None:
                    loop.call_later(0.005, poll)
                elif not reaped.done():
                    reaped.set_result(code)

            poll()
        return self._reaped

    async def _stderr_settled(self) -> None:
        """Wait briefly for the rest of stderr once the process is gone (its last words)."""
        if self._stderr is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._stderr.closed), 0.5)

    async def wait_ready(self) -> None:
        """Wait for the runner to report a fresh worker waiting for its job."""
        if self.ready:
            return
        assert self.channel is not None
        line = await self.channel.read_line()
        if line is None or loads(line).get("t") != "ready":
            raise SandboxError(
                "SandboxStartError", f"The sandbox runner did not get ready: {self.describe_exit()}"
            )
        # Blob data outlives the realm that made it (the blob store is the process's): a
        # process left holding much more memory than it started with is retired, so that no
        # program inherits a smaller memory budget from the one before it.
        # The thread count is read here too, off the next execution's path: the watchdog
        # measures the program's threads against it.
        try:
            process = self._psutil()
            with process.oneshot():
                rss = process.memory_info().rss
                self.ready_threads = process.num_threads()
        except psutil.Error:
            rss = 0
        if self.uses == 0:
            self.fresh_rss = rss
        elif self.retire_rss and rss > self.retire_rss:
            raise SandboxError("SandboxRetired", f"The sandbox process kept {rss >> 20} MB")
        self.ready = True

    @property
    def returncode(self) -> int | None:
        """How the runtime ended, as ``Popen.returncode`` says it (negative: a signal), also
        when a wall between it and us reports it another way."""
        code = self.proc.returncode
        return code if self.wall is None else self.wall.exit_status(code)

    def clear_scratch(self) -> bool:
        """Empty the working directory, the process's scratch (the one place a confined program
        may write), so that nothing one execution wrote reaches the next. False: it could not."""
        try:
            with os.scandir(self.workdir) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path)
                    else:
                        os.unlink(entry.path)
        except OSError:
            return False
        return True

    @property
    def alive(self) -> bool:
        return not self._killed and self.proc.poll() is None

    def kill(self) -> None:
        """End the whole process group now (a worker can trap SIGTERM, so SIGKILL)."""
        if self._killed:
            return
        self._killed = True
        _LIVE.discard(self)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        channel = None if self.channel is None else self.channel.transport
        for transport in (channel, self._stderr_transport):
            if transport is not None:
                with contextlib.suppress(RuntimeError):  # its loop may be closed (at exit)
                    transport.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def closed(self) -> asyncio.Future[int]:
        """Kill now; the future is done once the process is reaped and its pipe closed. A
        future, not a coroutine: shielding it starts no task that a closing loop could find
        pending."""
        self.kill()
        return self._reaping()

    async def aclose(self) -> None:
        """Kill and reap, so no zombie or pipe outlives the process."""
        await self.closed()

    def describe_exit(self) -> str:
        code = self.returncode
        if code is None:
            how = "it is still running"
        elif code < 0:
            how = f"it was killed by signal {signal.Signals(-code).name}"
        else:
            how = f"it exited with code {code}"
        tail = self.stderr_tail.decode("utf-8", "replace").strip()
        return f"{how}" + (f"; it said: {tail[-1000:]}" if tail else "")

    async def execute(
        self, job: Job, host: ExecutionHost, memory_mb: int, *, expose_channel: bool = False
    ) -> Outcome:
        """Run one job; the caller kills the process if this raises or is cancelled.
        ``expose_channel`` (tests only) hands the program the buffer of its channel.

        Lines are handled as they arrive (``on_line``, in the loop iteration that read them):
        a tool call starts at once, and its reply is written the moment it is known.
        """
        channel = self.channel
        assert channel is not None
        self.uses += 1
        self.retire_rss = self.fresh_rss + memory_mb * 1024 * 1024 // 4
        self.ready = False
        limits = job.limits
        message = {
            "t": "run",
            "source": job.source,
            "lineOffset": job.line_offset,
            "lastLine": job.last_line,
            "tools": list(job.tools),
            "limits": {
                "maxToolCalls": limits.max_tool_calls,
                "maxConcurrentToolCalls": limits.max_concurrent_tool_calls,
                "maxLogBytes": limits.max_log_bytes,
                "maxResultBytes": limits.max_result_bytes,
                "maxWorkers": limits.max_workers,
            },
        }
        if expose_channel:
            message["exposeChannel"] = True
        # Replies to concurrent calls that are known in one loop iteration (a Promise.all) go
        # in one write: one system call, and one wake-up of the runner, for all of them. A
        # reply with no other call in flight (a sequential loop) is written at once.
        batch: list[bytes] = []
        loop = asyncio.get_running_loop()

        def flush() -> None:
            if batch:
                channel.write(b"".join(batch))
                batch.clear()

        def write(data: bytes) -> None:
            if in_flight == 0:
                if batch:
                    batch.append(data)
                    flush()
                else:
                    channel.write(data)
                return
            if not batch:
                loop.call_soon(flush)
            batch.append(data)

        durable: DurableHost | None = None
        ended = False
        if job.durable is not None:  # the worker records (and first replays) its journal
            message["durable"] = {"events": job.durable.events, "values": job.durable.values}
            durable = cast(DurableHost, host)  # a durable job comes with a DurableHost

            def control(message: dict[str, Any]) -> None:
                # Probes and stops are for this execution only: once it has ended, the
                # process may be running the next one. A probe follows the replies before it.
                if not ended:
                    flush()
                    channel.write(dumps_line(message))

            durable.attach(control)
        finished: asyncio.Future[Outcome | None] = asyncio.get_running_loop().create_future()
        in_flight = 0
        calls = 0
        start_call = host.start_call
        tools = tuple(job.tools)

        def reply_to(call_id: int) -> Any:
            # Replies are R<call id> <value JSON> or E<call id> <{message, name} JSON>: the
            # runner hands the JSON to the worker without parsing it.
            def reply(outcome: ToolReply) -> None:
                nonlocal in_flight
                in_flight -= 1
                if outcome.ok:
                    try:
                        data = b"R%d %b\n" % (call_id, dumps(outcome.value))
                    except ValueError as exc:  # NaN or Infinity: the runner could not parse it
                        error = {
                            "message": f"The tool returned a value that is not JSON ({exc}).",
                            "name": "ValidationError",
                        }
                        data = b"E%d %b\n" % (call_id, dumps(error))
                else:
                    error = {"message": outcome.error_message, "name": outcome.error_name}
                    data = b"E%d %b\n" % (call_id, dumps(error))
                write(data)

            return reply

        def on_line(line: bytes) -> None:
            nonlocal calls, in_flight
            if line[:1] == b"C":  # a tool call: C<call id> <tool index> <input JSON>
                calls += 1
                in_flight += 1
                if calls > limits.max_tool_calls or in_flight > limits.max_concurrent_tool_calls:
                    raise SandboxError(
                        "ProtocolError", "The sandbox broke the tool-call limits it was given"
                    )
                head, _, rest = line.partition(b" ")
                number, _, data = rest.partition(b" ")
                index = int(number)
                if not 0 <= index < len(tools):  # the host checks names again
                    raise SandboxError(
                        "ProtocolError",
                        f"The sandbox called tool number {index}; the job has {len(tools)} tools",
                    )
                # The input is the program's: text that the bridge parses and validates.
                text = data.decode("utf-8", "replace") if data else None
                start_call(tools[index], text, reply_to(int(head[1:])))
                return
            msg = loads(line)
            kind = msg["t"]
            if kind == "log":
                host.log(str(msg["m"]))
            elif kind == "done":
                channel.stop_listening()  # "ready" comes next, for wait_ready
                finished.set_result(_outcome(msg))
            elif durable is not None:
                if kind == "journal":  # the worker's journal up to the call that follows
                    durable.record(msg["j"])
                elif kind == "idle":
                    durable.idle(msg.get("n"), msg.get("o"), msg.get("j"))

        def on_end(error: BaseException | None) -> None:
            if finished.done():
                return
            if error is None:
                finished.set_result(None)
            else:
                finished.set_exception(error)

        threads = _THREADS_PER_WORKER * (1 + limits.max_workers)
        watchdog = asyncio.create_task(self._watch_memory(memory_mb, threads))
        try:
            channel.write(dumps_line(message))
            channel.listen(on_line, on_end)
            outcome = await finished
        finally:
            ended = True
            channel.stop_listening()
            watchdog.cancel()
        if outcome is not None:
            return outcome
        if self.over_memory:
            raise SandboxError(
                "MemoryLimitError",
                f"The program used more than the memory limit of {memory_mb} MB "
                "(including ArrayBuffers and WebAssembly); use less memory.",
            )
        if self.over_threads is not None:
            raise SandboxError(
                "WorkerLimitError",
                f"The program started more than {self.over_threads} threads (nested "
                "workers, node:worker_threads included; the allowance for max_workers="
                f"{limits.max_workers}); do the work in the program itself.",
            )
        raise await self._crash_error()

    def _psutil(self) -> psutil.Process:
        if self._process is None:
            self._process = psutil.Process(self.runtime_pid)
        return self._process

    async def _watch_memory(self, memory_mb: int, threads: int) -> None:
        """The heap flag does not bound ArrayBuffers or WebAssembly memory: watch the RSS.
        Nested workers (``node:worker_threads`` cannot be taken away) add threads: count them
        against the count when the realm was ready (so a short program costs no system call)."""
        try:
            process = self._psutil()
            thread_limit = (self.ready_threads or process.num_threads()) + threads
        except psutil.Error:
            return
        limit = memory_mb * 1024 * 1024
        while True:
            await asyncio.sleep(0.02)
            try:
                with process.oneshot():
                    rss = process.memory_info().rss
                    over_threads = process.num_threads() > thread_limit
            except psutil.Error:
                return
            if over_threads:
                self.over_threads = threads
                self.kill()
                return
            if rss > limit:
                self.over_memory = True
                self.kill()  # the reader sees the end of the stream and reports the limit
                return

    async def _crash_error(self) -> SandboxError:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.wait_exit(), 1.0)
        await self._stderr_settled()
        tail = self.stderr_tail.decode("utf-8", "replace")
        if "out of memory" in tail or "heap limit" in tail:
            return SandboxError(
                "MemoryLimitError",
                f"The program ran out of JavaScript heap (the V8 heap limit of {self.heap_mb} MB); "
                "use less memory.",
            )
        code = self.returncode
        return SandboxError(
            # An exit code: the runner itself stopped. A signal: something ended it.
            "SandboxExitError" if code is not None and code >= 0 else "SandboxCrashError",
            f"The sandbox process ended during the program: {self.describe_exit()}",
        )


def _close_listener(listener: socket.socket) -> None:
    """Close the socket the runner connects to, its reader removed first. An accept cancelled
    just now (a start cut short as the runner connects) may have its callback queued in this
    loop iteration already; it would accept on the closed descriptor and print an error
    (asyncio's ``InvalidStateError``, CPython 3.11) at the exit of a script."""
    with contextlib.suppress(RuntimeError, ValueError, OSError):
        asyncio.get_running_loop().remove_reader(listener.fileno())
    listener.close()


def _drop_connection(accepted: asyncio.Future[tuple[socket.socket, Any]]) -> None:
    """Stop waiting for the runner's connection; one that came but was not taken is closed,
    not left to the garbage collector."""
    if not accepted.cancel() and not accepted.cancelled() and accepted.exception() is None:
        accepted.result()[0].close()


class _StderrTail(asyncio.Protocol):
    """The last bytes a process wrote to stderr."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.tail = bytearray()
        self.closed: asyncio.Future[None] = loop.create_future()

    def data_received(self, data: bytes) -> None:
        self.tail += data
        del self.tail[:-_STDERR_TAIL]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


def _spawn(
    argv: list[str], *, env: dict[str, str], cwd: str, config: _ProcessConfig
) -> subprocess.Popen[bytes]:
    """Start a runner in its own process group (a plain fork/exec of a few milliseconds), behind
    the OS wall when the config has one: the wall wraps the command, the runner never knows."""
    command = None
    if config.wall is not None:
        assert config.confinement is not None
        command = config.wall.wrap(
            argv,
            scratch=cwd,
            confinement=config.confinement,
            deno_dir=config.deno_dir,
            runner=argv[-1],  # the main module
            env=env,
        )
        argv = command.argv
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own process group, killed as one
            pass_fds=command.pass_fds if command is not None else (),
        )
    finally:
        if command is not None:
            command.close()


def _peer_pid(sock: socket.socket) -> int:
    """The pid, in our namespace, of the process at the other end of a unix socket (the runtime
    itself, whatever started it); 0 if the kernel cannot say."""
    if not hasattr(socket, "SO_PEERCRED"):
        return 0
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return 0
    pid: int = struct.unpack("3i", creds)[0]
    return pid


def _outcome(msg: dict[str, Any]) -> Outcome:
    if msg.get("ok") is True:
        r = msg.get("r")
        return Outcome(ok=True, result_json=r if isinstance(r, str) else None)
    e = msg.get("e") or {}
    line = e.get("line")
    return Outcome(
        ok=False,
        error=CodeModeError(
            message=str(e.get("message", "The program failed")),
            name=str(e.get("name", "Error")),
            line=line if isinstance(line, int) else None,
        ),
    )


def _deno_flags(config: _ProcessConfig, socket_path: str) -> list[str]:
    return [
        "--quiet",
        "--no-prompt",
        "--no-config",
        "--no-lock",
        "--no-remote",
        "--no-npm",
        "--cached-only",
        "--unstable-worker-options",
        f"--v8-flags=--max-old-space-size={config.heap_mb}",
        *(
            ["--allow-all"]
            if config.host_privileges
            else [
                # The runner's only capabilities: its socket, and the variables naming it.
                f"--allow-net=unix:{socket_path}",
                f"--allow-read={socket_path}",
                f"--allow-write={socket_path}",
                "--allow-env=CODEMODE_SOCKET,CODEMODE_WORKER_PERMISSIONS",
            ]
        ),
    ]


def _environment(config: _ProcessConfig, socket_path: str, workdir: str) -> dict[str, str]:
    if config.confinement is not None:
        # Behind the wall: only the variables the confinement names, and temp files in scratch.
        passed = {k: os.environ[k] for k in config.confinement.env if k in os.environ}
        inherited: dict[str, str] = {**passed, "TMPDIR": workdir}
    else:
        inherited = dict(os.environ) if config.host_privileges else {}
    return {
        **inherited,
        "CODEMODE_SOCKET": socket_path,
        "CODEMODE_WORKER_PERMISSIONS": "inherit" if config.host_privileges else "none",
        "DENO_DIR": config.deno_dir,
        # No transpiled program on disk: Deno kept every program's source (and the data in it)
        # under DENO_DIR/gen/blob, without bound; behind the wall, where DENO_DIR is read-only,
        # the first program of each process also waited ~160 ms on Deno's write retries.
        "DENO_EMIT_CACHE_MODE": "disable",
        "NO_COLOR": "1",
        "DENO_NO_UPDATE_CHECK": "1",
    }


def _private_deno_dir() -> str:
    """A DENO_DIR of our own. ``location_data`` is a file, so localStorage and the Cache API
    (which need no permission and persist across runs) cannot be created at all."""
    path = (
        Path(tempfile.gettempdir()) / f"codemode-deno-{os.getuid() if hasattr(os, 'getuid') else 0}"
    )
    path.mkdir(mode=0o700, exist_ok=True)
    blocker = path / "location_data"
    if not blocker.is_file():
        if blocker.is_dir():
            shutil.rmtree(blocker)
        blocker.write_bytes(b"")
    return str(path)


class _Pool:
    """Processes for one event loop. Ready ones wait in ``idle``; at most ``max_processes``
    exist at once; ``prestart`` spares are kept starting in the background. Asyncio
    subprocesses belong to the loop that made them, hence one pool per loop."""

    def __init__(self, sandbox: DenoSandbox) -> None:
        self.sandbox = sandbox
        self.idle: deque[_DenoProcess] = deque()
        self.live: set[_DenoProcess] = set()  # every process of this pool, in any state
        self.starting = 0
        self.recycling = 0  # finished a job; booting the realm for the next one (~10 ms)
        self.changed = asyncio.Event()  # set whenever a process becomes idle or goes away
        self.tasks: set[asyncio.Task[None]] = set()  # starts and recycles, cancelled on close
        self.closing: set[asyncio.Future[int]] = set()  # reaping, awaited on close
        self.closed = False
        self._loop_shutdown: AsyncIterator[None] | None = None

    async def _close_with_loop(self) -> AsyncIterator[None]:
        """An async generator that the loop finalizes when it shuts down (``asyncio.run``
        calls ``shutdown_asyncgens``): a pool nobody closed closes with its loop, so no start
        or recycle task is left pending and every process is reaped."""
        try:
            yield
        finally:
            await self.aclose()

    async def _hook_loop_shutdown(self) -> None:
        if self._loop_shutdown is None:
            self._loop_shutdown = self._close_with_loop()
            await anext(self._loop_shutdown)  # first iteration: the loop now tracks it

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _room(self) -> bool:
        return len(self.live) + self.starting < self.sandbox.max_processes

    async def _start(self) -> _DenoProcess:
        """Start a process; the caller has counted it in ``starting`` already."""
        try:
            config = self.sandbox._process_config()
            process = await _DenoProcess.start(config, self.sandbox._message_limit)
        finally:
            self.starting -= 1
        self.live.add(process)
        try:
            await process.wait_ready()
        except BaseException:
            self._discard(process)
            raise
        return process

    async def _start_spare(self) -> None:
        try:
            process = await self._start()
        except Exception:
            return  # an execution that needs a process starts one itself and reports the error
        self._make_idle(process)

    def _make_idle(self, process: _DenoProcess) -> None:
        if self.closed or len(self.idle) >= self.sandbox.max_idle or not process.alive:
            self._discard(process)
        else:
            self.idle.append(process)
            self._notify()

    def _discard(self, process: _DenoProcess) -> None:
        self.live.discard(process)
        process.kill()
        closing = process.closed()
        self.closing.add(closing)
        closing.add_done_callback(self.closing.discard)
        self._notify()

    def _notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def refill(self) -> None:
        """Start spares until ``prestart`` are idle or on their way, but never past
        ``max_idle`` processes in all: a busy process comes back, and a spare started beside it
        would push one out of ``idle`` (a process started and killed per execution)."""
        while (
            not self.closed
            and len(self.idle) + self.starting + self.recycling < self.sandbox.prestart
            and len(self.live) + self.starting < self.sandbox.max_idle
            and self._room()
        ):
            self.starting += 1
            self._spawn(self._start_spare())

    async def acquire(self) -> _DenoProcess:
        await self._hook_loop_shutdown()
        while True:
            while self.idle:
                process = self.idle.popleft()
                if process.alive:
                    self.refill()
                    return process
                self._discard(process)
            if self._room():
                if self.recycling:
                    # A process booting its next realm (~10 ms) is ready far sooner than a new
                    # one (~40 ms): wait for it, but not for one that is stuck.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.changed.wait(), _RECYCLE_WAIT)
                        continue
                self.starting += 1
                process = await self._start()
                self.refill()
                return process
            await self.changed.wait()  # every process is busy: wait for one to come back

    def release(self, process: _DenoProcess, reusable: bool) -> None:
        if not (reusable and process.alive and process.uses < self.sandbox.max_uses):
            self._discard(process)
        elif process.ready:
            self._make_idle(process)
        else:
            self.recycling += 1
            self._spawn(self._recycle(process))
        self.refill()

    async def _recycle(self, process: _DenoProcess) -> None:
        try:
            await asyncio.wait_for(process.wait_ready(), _START_TIMEOUT)
        except BaseException as exc:
            self._discard(process)
            if not isinstance(exc, Exception):
                raise
            return
        finally:
            self.recycling -= 1
        self._make_idle(process)

    async def aclose(self) -> None:
        self.closed = True
        for task in list(self.tasks):
            task.cancel()
        processes = list(self.live)
        self.live.clear()
        self.idle.clear()
        await asyncio.gather(*(p.aclose() for p in processes), return_exceptions=True)
        await asyncio.gather(*self.tasks, *self.closing, return_exceptions=True)
        self._notify()


class DenoSandbox(Sandbox):
    """The sandbox we recommend: Deno with every permission denied.

    The program runs in a permission-less worker (its own realm) inside a process that may only
    reach one unix socket, with an empty environment, no remote or npm imports, a V8 heap limit,
    an RSS watchdog and its own process group. Processes are started ahead of demand (``prestart``
    idle or starting, but never past ``max_idle`` processes in all) and serve up to ``max_uses``
    executions each, every one in a fresh realm.

    ``confinement`` puts the process behind a second wall, the operating system's (bubblewrap and
    seccomp, or Landlock): ``"auto"`` takes the strongest layer that works here and warns once if
    none does; ``"required"`` refuses to start without one; a ``Confinement`` says what the wall
    lets through (and requires a layer); ``None`` leaves Deno's permission checks alone.
    """

    def __init__(
        self,
        *,
        heap_mb: int = 256,
        memory_mb: int = 512,
        prestart: int = 2,
        max_idle: int = 4,
        max_processes: int = 16,
        max_uses: int = 100,
        confinement: ConfinementSetting = "auto",
    ) -> None:
        choices = ("auto", "required", None)
        if not isinstance(confinement, Confinement) and confinement not in choices:
            raise ValueError(
                "confinement must be 'auto', 'required', None or a Confinement, got "
                f"{confinement!r}"
            )
        if heap_mb < 16:
            raise ValueError(f"heap_mb must be at least 16, got {heap_mb}")
        if memory_mb < heap_mb:
            raise ValueError(f"memory_mb ({memory_mb}) must be at least heap_mb ({heap_mb})")
        if prestart < 0 or max_idle < 0 or max_uses < 1 or max_processes < 1:
            raise ValueError("prestart and max_idle must be >= 0, max_uses and max_processes >= 1")
        if prestart > max_processes:
            raise ValueError(f"prestart ({prestart}) cannot exceed max_processes ({max_processes})")
        self.heap_mb = heap_mb
        self.memory_mb = memory_mb
        self.prestart = prestart
        self.max_idle = max(max_idle, prestart)
        self.max_processes = max_processes
        self.max_uses = max_uses
        self._message_limit = 64 * 1024 * 1024
        self._pools: dict[asyncio.AbstractEventLoop, _Pool] = {}
        self._deno_dir: str | None = None
        self.confinement = confinement
        self._wall: tuple[Wall | None, Confinement | None, str] | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(heap_mb={self.heap_mb}, memory_mb={self.memory_mb}, "
            f"prestart={self.prestart})"
        )

    # Subclasses (LocalSandbox) change what the process and the worker may do.
    _host_privileges = False
    # Tests of the runner's channel set this: each program gets the buffer its calls cross in,
    # as if it had found it (globalThis.__codemodeChannel), to show it gains nothing by it.
    _expose_channel = False

    @property
    def supports_durable(self) -> bool:
        return True  # the runner's worker records and replays (runner.ts, "Durable mode")

    def _process_config(self) -> _ProcessConfig:
        if self._deno_dir is None:
            self._deno_dir = _private_deno_dir()
        wall, confinement, _ = self._resolve_wall()
        return _ProcessConfig(
            heap_mb=self.heap_mb,
            memory_mb=self.memory_mb,
            host_privileges=self._host_privileges,
            deno_dir=self._deno_dir,
            wall=wall,
            confinement=confinement,
        )

    def _resolve_wall(self) -> tuple[Wall | None, Confinement | None, str]:
        """The OS wall for this sandbox's processes (probed once per interpreter)."""
        if self._wall is None:
            try:
                self._wall = resolve_wall(self.confinement, deno_executable())
            except ConfinementError as exc:
                raise SandboxError("ConfinementError", str(exc)) from None
        return self._wall

    def confinement_report(self) -> ConfinementReport:
        """Which walls confine this sandbox's programs: Deno's permission checks (not in a
        ``LocalSandbox``) and the OS wall's layer (``"bubblewrap+seccomp"``, ``"landlock+seccomp"``
        or ``"none"``). Probes the OS wall if no process has started yet."""
        try:
            wall, _, why = self._resolve_wall()
        except SandboxError as exc:
            return ConfinementReport(not self._host_privileges, "none", exc.message)
        if wall is None:
            return ConfinementReport(not self._host_privileges, "none", why)
        return ConfinementReport(not self._host_privileges, wall.name, wall.detail)

    def _pool(self) -> _Pool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            for other in [lp for lp in self._pools if lp.is_closed()]:
                del self._pools[other]
            pool = self._pools[loop] = _Pool(self)
        return pool

    async def start(self) -> None:
        """Start ``prestart`` processes now instead of at the first execution."""
        pool = self._pool()
        await pool._hook_loop_shutdown()
        pool.refill()
        await asyncio.gather(*pool.tasks, return_exceptions=True)

    async def __aenter__(self) -> DenoSandbox:
        await self.start()
        return self

    async def execute(self, job: Job, host: ExecutionHost) -> Outcome:
        pool = self._pool()
        process = await pool.acquire()
        reusable = False
        try:
            outcome = await process.execute(
                job, host, self.memory_mb, expose_channel=self._expose_channel
            )
            reusable = process.clear_scratch()  # nothing a program wrote reaches the next one
            return outcome
        except SandboxError:
            raise
        except (KeyError, TypeError, ValueError) as exc:  # ValueError covers bad JSON
            raise SandboxError(
                "ProtocolError", f"The sandbox sent a malformed message: {exc}"
            ) from None
        finally:
            pool.release(process, reusable)
            if not reusable:
                # Reap it before returning, even when cancelled: nothing of an execution
                # outlives it. (A second cancellation leaves the reaping to the pool's task.)
                await asyncio.shield(process.closed())

    async def aclose(self) -> None:
        """Kill and reap every process this sandbox started, on whichever loop owns it."""
        pools = list(self._pools.items())
        self._pools.clear()
        current = asyncio.get_running_loop()
        for pool_loop, pool in pools:
            if pool_loop is current:
                await pool.aclose()
            elif pool_loop.is_running():  # e.g. the loop behind execute_sync
                future = asyncio.run_coroutine_threadsafe(pool.aclose(), pool_loop)
                await asyncio.wrap_future(future)
            else:
                for process in pool.live:
                    process.kill()

    def close(self) -> None:
        """``aclose`` for callers without an event loop (e.g. after ``execute_sync``)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("close() was called inside an event loop; use `await aclose()`")
        pools = list(self._pools.items())
        self._pools.clear()
        for pool_loop, pool in pools:
            if pool_loop.is_running():
                asyncio.run_coroutine_threadsafe(pool.aclose(), pool_loop).result()
            else:
                for process in pool.live:
                    process.kill()
