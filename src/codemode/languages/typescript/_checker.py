"""Type-check a model's program against the declarations before it runs.

A fresh ``deno check`` costs 0.5-1 s: process start-up plus loading TypeScript's libraries.
``deno lsp`` kept running answers a pull-diagnostics request for a new document in tens of
milliseconds, so `TypeChecker` keeps one language server warm and sends each program as a new
in-memory document (``bench/bench_typecheck.py`` measures both paths).

The checker never runs the program. It cannot read the host's files either: an import map
sends every ``file:``/``http(s):`` import to an empty directory (otherwise
``await import("/etc/app/config.ts")`` would leak the file's types into error messages), its
network goes to a dead proxy, and it starts with a clean environment in a scratch directory.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from .._base import TypeCheckerError, TypeCheckFailure

__all__ = ["TypeCheckFailure", "TypeChecker", "TypeCheckerError"]

_MAX_REPORTED: Final = 5
_DEAD_PROXY: Final = "http://127.0.0.1:9"
_HEAP_MB: Final = 1024
_IMPORT_MAP: Final = {
    "imports": {
        "file:///": "./__no_host_files__/",
        "http://": "./__no_remote__/",
        "https://": "./__no_remote__/",
    }
}


@dataclass(frozen=True)
class _Diagnostic:
    line: int  # 0-based, in the checked file
    character: int
    code: int | None
    message: str


class _Wrapped:
    """The checked file: declarations, then the body inside ``async function main``, as run."""

    def __init__(self, code: str, declarations: str) -> None:
        # Lines are counted at "\n"; CR and CRLF are line breaks to JS as well, so normalising
        # them keeps the program's meaning and the line numbers the model sees.
        code = code.replace("\r\n", "\n").replace("\r", "\n")
        declarations = declarations.replace("\r\n", "\n").replace("\r", "\n")
        prelude = declarations.rstrip("\n") + "\n" if declarations.strip() else ""
        self.prelude_lines = prelude.count("\n") + 1  # + the `async function main() {` line
        self.code_lines = code.count("\n") + 1
        # `export {}` makes it a module, so concurrent documents never share a global scope.
        self.source = f"{prelude}async function main() {{\n{code}\n}}\nexport {{}};\n"

    def program_line(self, line0: int) -> int | None:
        """1-based line in the model's program for a 0-based line of the checked file."""
        line = line0 - self.prelude_lines + 1
        if line < 1:
            return None  # in the declarations: not something the program can fix
        return min(line, self.code_lines)


_BLOCKED = re.compile(r"file:///\S*?/__no_(host_files|remote)__/(\S*?)(?=['\s]|$)")


def _explain(message: str) -> str:
    """Say why an import failed instead of showing where the import map sent it."""
    match = _BLOCKED.search(message)
    if match is None:
        return message
    scheme = "file:///" if match.group(1) == "host_files" else "https://"
    return (
        f"Cannot import {scheme}{match.group(2)}: programs cannot import modules; "
        "call the external_* functions instead."
    )


def _failure(diagnostics: Sequence[_Diagnostic], wrapped: _Wrapped) -> TypeCheckFailure | None:
    if not diagnostics:
        return None
    ordered = sorted(set(diagnostics), key=lambda d: (d.line, d.character, d.message))
    in_program = [d for d in ordered if wrapped.program_line(d.line) is not None]
    ordered = in_program + [d for d in ordered if d not in in_program]
    first = ordered[0]
    parts = [_format(first, None)]
    for d in ordered[1:_MAX_REPORTED]:
        parts.append(_format(d, wrapped.program_line(d.line)))
    if len(ordered) > _MAX_REPORTED:
        parts.append(f"... and {len(ordered) - _MAX_REPORTED} more errors")
    return TypeCheckFailure("\n".join(parts), wrapped.program_line(first.line))


def _format(d: _Diagnostic, line: int | None) -> str:
    code = f" (TS{d.code})" if d.code is not None else ""
    where = "" if line is None else f"line {line}: "
    return f"{where}{_explain(d.message)}{code}"


def _deno_bin() -> str:
    # The Deno from our `deno` dependency, never one from PATH. (importlib: the package is untyped.)
    deno = importlib.import_module("deno")
    return str(deno.find_deno_bin())


def _clean_env(deno_dir: Path, home: Path) -> dict[str, str]:
    env = {
        "DENO_DIR": str(deno_dir),
        "HOME": str(home),
        "NO_COLOR": "1",
        "DENO_NO_UPDATE_CHECK": "1",
        "DENO_NO_PACKAGE_JSON": "1",
        # A type-level memory bomb ends the checker (restarted next call), not the host.
        "DENO_V8_FLAGS": f"--max-old-space-size={_HEAP_MB}",
    }
    for key in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env[key] = _DEAD_PROXY
    if sys.platform == "win32":  # pragma: no cover - Deno needs these to start on Windows
        for key in ("SYSTEMROOT", "TEMP", "TMP"):
            if key in os.environ:
                env[key] = os.environ[key]
    return env


class _Workspace:
    """A scratch directory: the import map, the Deno cache, and the documents' home."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="codemode-typecheck-")).resolve()
        self.deno_dir = self.root / ".deno"
        self.import_map = self.root / "import_map.json"
        self.import_map.write_text(json.dumps(_IMPORT_MAP))
        config = {"imports": _IMPORT_MAP["imports"], "lock": False, "nodeModulesDir": "none"}
        (self.root / "deno.json").write_text(json.dumps(config))
        self.env = _clean_env(self.deno_dir, self.root)
        # Removed by `remove`, or when garbage-collected / at exit if a checker is never closed.
        self._finalizer = weakref.finalize(self, shutil.rmtree, self.root, ignore_errors=True)

    def remove(self) -> None:
        self._finalizer()


class TypeChecker:
    """Checks a program body against declarations. Reusable, async, safe to call concurrently.

    ``warm=True`` (default) keeps one ``deno lsp`` process for all checks, driven from its own
    I/O thread so any event loop (or several, one after another) can use the checker;
    ``warm=False`` runs a fresh ``deno check`` per call. `aclose` ends the process, the thread
    and the scratch directory.
    """

    def __init__(self, *, warm: bool = True, timeout: float = 30.0) -> None:
        self._warm = warm
        self._timeout = timeout
        self._workspace: _Workspace | None = None
        self._lsp: _LanguageServer | None = None
        self._io: _IoThread | None = None
        self._start_lock: asyncio.Lock | None = None  # lives on the I/O thread's loop
        self._guard = threading.Lock()
        self._closed = False

    async def check(self, code: str, declarations: str) -> TypeCheckFailure | None:
        """None if the program type-checks; else the errors and the program line of the first.

        Raises `TypeCheckerError` if the checker itself fails (it is then restarted next time).
        """
        if self._closed:
            raise TypeCheckerError("TypeChecker is closed")
        wrapped = _Wrapped(code, declarations)
        if self._warm:
            diagnostics = await self._io_thread().run(self._check_warm(wrapped.source))
        else:
            diagnostics = await self._check_cold(wrapped.source)
        return _failure(diagnostics, wrapped)

    async def start(self) -> None:
        """Start the warm checker now, so the first `check` does not pay for start-up."""
        if self._warm and not self._closed:
            await self._io_thread().run(self._server())

    async def aclose(self) -> None:
        """End the checker process and its thread, remove its scratch directory. Idempotent."""
        with self._guard:
            self._closed = True
            io, self._io = self._io, None
        if io is not None:
            await io.run(self._stop_server())
            await asyncio.to_thread(io.stop)
        if self._workspace is not None:
            self._workspace.remove()
            self._workspace = None

    async def __aenter__(self) -> TypeChecker:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- internals -----------------------------------------------------------------------------

    def _io_thread(self) -> _IoThread:
        with self._guard:
            if self._closed:
                raise TypeCheckerError("TypeChecker is closed")
            if self._io is None:
                self._io = _IoThread()
                # A checker nobody closed (the shared one) ends its server with the interpreter.
                close = weakref.WeakMethod(self._close_at_exit)
                atexit.register(lambda: (method := close()) is not None and method())
            return self._io

    def _close_at_exit(self) -> None:
        with self._guard:
            io, self._io = self._io, None
        if io is None or not io.loop.is_running():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop_server(), io.loop).result(timeout=5)
        io.stop()

    def _ensure_workspace(self) -> _Workspace:
        with self._guard:
            if self._workspace is None:
                self._workspace = _Workspace()
            return self._workspace

    # These run on the I/O thread's loop.

    async def _check_warm(self, source: str) -> list[_Diagnostic]:
        lsp = await self._server()
        try:
            return await asyncio.wait_for(lsp.diagnostics(source), self._timeout)
        except (TimeoutError, _ServerGone) as exc:
            if self._lsp is lsp:
                self._lsp = None
            await lsp.close()
            reason = str(exc) or f"no answer within {self._timeout} s"
            raise TypeCheckerError(f"type checker failed: {reason}") from exc

    async def _server(self) -> _LanguageServer:
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._lsp is not None and self._lsp.alive:
                return self._lsp
            if self._lsp is not None:
                await self._lsp.close()
            lsp = _LanguageServer(self._ensure_workspace())
            try:
                await asyncio.wait_for(lsp.start(), self._timeout)
            except (TimeoutError, OSError, _ServerGone) as exc:
                await lsp.close()
                raise TypeCheckerError(f"could not start deno lsp: {exc!r}") from exc
            self._lsp = lsp
            return lsp

    async def _stop_server(self) -> None:
        lsp, self._lsp = self._lsp, None
        if lsp is not None:
            await lsp.close()

    async def _check_cold(self, source: str) -> list[_Diagnostic]:
        workspace = self._ensure_workspace()
        path = workspace.root / f"program-{next(_counter)}.ts"
        path.write_text(source, encoding="utf-8")
        try:
            rc, output = await _run_deno_check(workspace, [path], self._timeout)
        finally:
            path.unlink(missing_ok=True)
        diagnostics = parse_check_output(output, path)
        if rc != 0 and not diagnostics:
            raise TypeCheckerError(f"deno check failed without diagnostics:\n{output.strip()}")
        return diagnostics


_T = TypeVar("_T")


class _IoThread:
    """An event loop on a daemon thread: the language server's pipes live here, so callers
    on any loop reach it through `run`."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="codemode-typecheck", daemon=True
        )
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return await asyncio.wrap_future(future)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


_counter = itertools.count(1)
_CHECK_FLAGS: Final = ("check", "--quiet", "--no-config", "--no-lock", "--no-remote", "--no-npm")


async def _run_deno_check(
    workspace: _Workspace, files: Sequence[Path], timeout: float
) -> tuple[int, str]:
    """Run one ``deno check`` over ``files``; returns its exit code and combined output."""
    proc = await asyncio.create_subprocess_exec(
        _deno_bin(),
        *_CHECK_FLAGS,
        "--import-map",
        str(workspace.import_map),
        *(str(f) for f in files),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=workspace.root,
        env=workspace.env,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except BaseException:
        _kill_group(proc.pid)
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode("utf-8", "replace")


def check_sources_sync(
    sources: Sequence[str], timeout: float = 120.0
) -> tuple[int, str, list[Path]]:
    """Run one sandboxed ``deno check`` over files holding ``sources`` (tests and benches batch
    many cases per process); returns the exit code, the output and the files' paths (gone by
    then, but diagnostics name them)."""
    workspace = _Workspace()
    try:
        paths = [workspace.root / f"batch-{i}.ts" for i in range(len(sources))]
        for path, source in zip(paths, sources, strict=True):
            path.write_text(source, encoding="utf-8")
        proc = subprocess.run(
            [_deno_bin(), *_CHECK_FLAGS, "--import-map", str(workspace.import_map)]
            + [str(p) for p in paths],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=workspace.root,
            env=workspace.env,
            timeout=timeout,
            check=False,
        )
        output = (proc.stdout + proc.stderr).decode("utf-8", "replace")
        return proc.returncode, output, paths
    finally:
        workspace.remove()


_TS_ERROR = re.compile(r"^TS(\d+) \[ERROR\]: (.*)$")
_MODULE_ERROR = re.compile(r"^error: (.*)$")  # e.g. a syntax error: the module did not parse
_LOCATION = re.compile(r"^\s+at (file:///\S+?):(\d+):(\d+)\s*$")


def parse_check_output(output: str, path: Path | None = None) -> list[_Diagnostic]:
    """Diagnostics from ``deno check`` text (for ``path`` only, if given).

    A type error is a ``TSnnnn [ERROR]: message`` line, more message lines, a two-line source
    snippet and ``at file:///...:line:col``; related information follows, indented, and is
    skipped. A module that does not parse is ``error: message``, a snippet, then the location.
    """
    diagnostics: list[_Diagnostic] = []
    lines = output.splitlines()
    uri = path.as_uri() if path is not None else None
    i = 0
    while i < len(lines):
        ts_error = _TS_ERROR.match(lines[i])
        module_error = None if ts_error else _MODULE_ERROR.match(lines[i])
        if module_error and module_error.group(1).startswith("Type checking failed"):
            module_error = None
        head = ts_error or module_error
        if head is None:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and not _LOCATION.match(lines[j]) and lines[j].strip():
            j += 1
        location = _LOCATION.match(lines[j]) if j < len(lines) else None
        code = int(ts_error.group(1)) if ts_error else None
        message = ts_error.group(2) if ts_error else head.group(1)
        if ts_error and location is not None:  # drop the source line and the caret line
            message = "\n".join([message, *(b.rstrip() for b in lines[i + 1 : max(i + 1, j - 2)])])
        if location is None:
            diagnostics.append(_Diagnostic(0, 0, code, message))
        elif uri is None or location.group(1) == uri:
            line, column = int(location.group(2)) - 1, int(location.group(3)) - 1
            diagnostics.append(_Diagnostic(line, column, code, message))
        i = j + 1
    return diagnostics


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


# --------------------------------------------------------------------------------------------
# A minimal LSP client for `deno lsp`: pull diagnostics (`textDocument/diagnostic`) on
# documents that exist only in memory.


class _ServerGone(Exception):
    pass


def _message(method: str, params: Any, request_id: int | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        message["id"] = request_id
    if params is not None:  # the server rejects `"params": null`
        message["params"] = params
    return message


class _LanguageServer:
    def __init__(self, workspace: _Workspace) -> None:
        self._workspace = workspace
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._documents = itertools.count(1)
        self._write_lock = asyncio.Lock()
        self._stderr: list[str] = []
        self._stderr_task: asyncio.Task[None] | None = None
        self._gone = False

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and not self._gone

    async def start(self) -> None:
        ws = self._workspace
        self._proc = await asyncio.create_subprocess_exec(
            _deno_bin(),
            "lsp",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ws.root,
            env=ws.env,
            start_new_session=True,
        )
        self._reader = asyncio.create_task(self._read_loop())
        self._stderr_task = asyncio.create_task(self._drain_stderr())
        settings = {
            "enable": True,
            "lint": False,
            "config": str(ws.root / "deno.json"),
            "cacheOnSave": False,
            "codeLens": {"implementations": False, "references": False, "test": False},
            "suggest": {"imports": {"autoDiscover": False}},
        }
        root_uri = ws.root.as_uri()
        await self._request(
            "initialize",
            {
                "processId": os.getpid(),  # the server exits if we die
                "rootUri": root_uri,
                "workspaceFolders": [{"uri": root_uri, "name": "codemode"}],
                "capabilities": {"textDocument": {"diagnostic": {"dynamicRegistration": False}}},
                "initializationOptions": settings,
            },
        )
        await self._notify("initialized", {})
        # Load TypeScript's libraries now rather than on the first real program.
        await self.diagnostics("export {};\n")

    async def diagnostics(self, source: str) -> list[_Diagnostic]:
        uri = (self._workspace.root / f"program-{next(self._documents)}.ts").as_uri()
        document = {"uri": uri, "languageId": "typescript", "version": 1, "text": source}
        await self._notify("textDocument/didOpen", {"textDocument": document})
        try:
            report = await self._request("textDocument/diagnostic", {"textDocument": {"uri": uri}})
        finally:
            if self.alive:
                await self._notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        items = report.get("items", []) if isinstance(report, Mapping) else []
        return [
            _Diagnostic(
                int(d["range"]["start"]["line"]),
                int(d["range"]["start"]["character"]),
                d["code"] if isinstance(d.get("code"), int) else None,
                str(d.get("message", "")),
            )
            for d in items
            if d.get("severity", 1) == 1 and d.get("source") != "deno-lint"
        ]

    async def close(self) -> None:
        """Ask the server to shut down; kill its process group if it does not within a second."""
        proc = self._proc
        if proc is None:
            return
        if self.alive:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._request("shutdown", None), 1.0)
                await self._notify("exit", None)
        if proc.stdin is not None:
            proc.stdin.close()  # the server acts on `exit` once its input ends
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 1.0)
        self.kill()
        await proc.wait()
        for task in (self._reader, self._stderr_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    def kill(self) -> None:
        """End the process group now (usable without awaiting, e.g. from another loop)."""
        self._gone = True
        if self._proc is not None and self._proc.returncode is None:
            _kill_group(self._proc.pid)
        self._fail_pending(_ServerGone("deno lsp was stopped"))

    # -- JSON-RPC ------------------------------------------------------------------------------

    async def _request(self, method: str, params: Any) -> Any:
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._send(_message(method, params, request_id))
            return await future
        finally:
            self._pending.pop(request_id, None)

    async def _notify(self, method: str, params: Any) -> None:
        await self._send(_message(method, params))

    async def _send(self, message: Mapping[str, Any]) -> None:
        if not self.alive or self._proc is None or self._proc.stdin is None:
            raise _ServerGone(self._exit_reason())
        body = json.dumps(message).encode()
        async with self._write_lock:
            try:
                self._proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
                await self._proc.stdin.drain()
            except (ConnectionError, BrokenPipeError) as exc:
                raise _ServerGone(self._exit_reason()) from exc

    async def _read_loop(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        stdout = self._proc.stdout
        try:
            while True:
                length = None
                while True:
                    header = await stdout.readline()
                    if not header:
                        raise _ServerGone(self._exit_reason())
                    if header in (b"\r\n", b"\n"):
                        break
                    name, _, value = header.decode("ascii", "replace").partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                if length is None:
                    continue
                message = json.loads(await stdout.readexactly(length))
                await self._dispatch(message)
        except (_ServerGone, asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            self._gone = True
            reason = exc if isinstance(exc, _ServerGone) else _ServerGone(self._exit_reason())
            self._fail_pending(reason)

    async def _dispatch(self, message: Mapping[str, Any]) -> None:
        if "method" in message and "id" in message:  # a request from the server
            method = message["method"]
            result: Any = None
            if method == "workspace/configuration":
                items = (message.get("params") or {}).get("items") or []
                result = [None for _ in items]
            await self._send({"jsonrpc": "2.0", "id": message["id"], "result": result})
            return
        if "id" in message:
            future = self._pending.get(message["id"])
            if future is not None and not future.done():
                if "error" in message:
                    future.set_exception(_ServerGone(f"deno lsp error: {message['error']}"))
                else:
                    future.set_result(message.get("result"))
        # Notifications (publishDiagnostics, progress, logs) are not needed: we pull.

    async def _drain_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        while line := await self._proc.stderr.readline():
            self._stderr.append(line.decode("utf-8", "replace").rstrip())
            del self._stderr[:-20]

    def _fail_pending(self, exc: Exception) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(exc)

    def _exit_reason(self) -> str:
        code = self._proc.returncode if self._proc is not None else None
        tail = "\n".join(self._stderr[-5:])
        return f"deno lsp exited (code {code}){': ' + tail if tail else ''}"
