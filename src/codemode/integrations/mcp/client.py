"""MCP client side: an MCP server's tools as codemode ``Tool``s, and the servers of a
``servers.json`` connected at once.

``await tools_from_mcp(session)`` turns the tools of a connected ``ClientSession`` into ``Tool``s
(their JSON Schemas drive validation and the declarations; calling one calls the server).
``connect_mcp_servers("servers.json")`` starts every server of a config and keeps going when
some fail.

What a program receives from ``external_<server>_<tool>(input)``:

- the result's ``structuredContent`` when the server sent one;
- otherwise the content blocks: each text block parsed as JSON when it is JSON (``"[1, 2]"``
  becomes an array, ``"42"`` a number), else kept as the string; any other block (image,
  audio, resource) as its MCP JSON object. One block gives its value, several give an array of
  values (one per block, in order), none gives ``null``;
- an error result (``isError``) is thrown as an ``Error`` named ``McpToolError`` whose message
  is the server's text, and a server that is not running is thrown as ``McpConnectionError``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx2
import mcp.types as mcp_types
from anyio.streams.memory import MemoryObjectSendStream
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage

from ..._tools import Tool, create_tool
from ._relay import LogRelay, current_request, progress_relay
from .config import (
    HttpServerConfig,
    McpConfigError,
    McpServerConfig,
    StdioServerConfig,
    load_mcp_config,
)

__all__ = [
    "McpConnectionError",
    "McpServerConnection",
    "McpServers",
    "McpToolError",
    "connect_mcp_servers",
    "tools_from_mcp",
    "unwrap_result",
]

DEFAULT_STARTUP_TIMEOUT = 30.0
# Lines of an upstream server's stderr kept to explain why it failed or stopped.
_STDERR_LINES = 20
_STDERR_LINE_CHARS = 500
# How long to wait for a dead server's last stderr output before reporting it.
_STDERR_SETTLE_SECONDS = 2.0


class McpToolError(Exception):
    """An MCP tool answered with an error; the message is the server's own text."""


class McpConnectionError(Exception):
    """The MCP server behind a tool is not running (it failed to start, crashed or exited)."""


# Consume ------------------------------------------------------------------------------------


async def tools_from_mcp(session: ClientSession, *, prefix: str | None = None) -> list[Tool]:
    """The tools of an initialized MCP ``session`` as ``Tool``s that call the server.

    A tool's id is ``<prefix>_<name>`` (just ``<name>`` without a prefix), so tools of several
    servers never collide when each gets its own prefix. Raises ``ValueError`` naming the tool
    when a server declares an invalid JSON Schema.
    """
    server_info = session.server_info
    label = prefix or (server_info.name if server_info is not None else None) or "MCP server"
    return await _list_tools(session, _Upstream(label), prefix)


@dataclass
class _Upstream:
    """What a tool knows about the server behind it: its name and whether it is still up."""

    name: str
    # Why the server is gone, once it is. Programs see it, so it never carries the server's
    # stderr (which may hold anything); operators get that from ``McpServerConnection``.
    failure: str | None = None
    # Where its log messages go while a gateway request has a call to it in flight.
    logs: LogRelay = field(init=False)

    def __post_init__(self) -> None:
        self.logs = LogRelay(self.name)

    async def settle(self) -> str:
        """Why the connection closed under a call."""
        self.failure = self.failure or "it closed the connection"
        return self.failure


async def _list_tools(
    session: ClientSession, upstream: _Upstream, prefix: str | None
) -> list[Tool]:
    listed: list[mcp_types.Tool] = []
    cursor: str | None = None
    while True:
        params = None if cursor is None else mcp_types.PaginatedRequestParams(cursor=cursor)
        page = await session.list_tools(params=params)
        listed.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return [_tool(session, upstream, prefix, item) for item in listed]


def _tool(
    session: ClientSession, upstream: _Upstream, prefix: str | None, listed: mcp_types.Tool
) -> Tool:
    name = listed.name

    async def call(arguments: Any) -> Any:
        if upstream.failure is not None:
            raise McpConnectionError(
                f"MCP server {upstream.name!r} is not running ({upstream.failure})"
            )
        request = current_request.get()  # set when serving a gateway client's request
        try:
            with upstream.logs.listening(request):
                result = await session.call_tool(
                    name,
                    arguments,
                    progress_callback=progress_relay(request, f"{upstream.name}/{name}"),
                )
        except MCPError as exc:
            if exc.code == mcp_types.CONNECTION_CLOSED:
                reason = await upstream.settle()
                raise McpConnectionError(
                    f"MCP server {upstream.name!r} stopped during the call to {name} ({reason})"
                ) from None
            raise McpToolError(exc.message) from None
        if result.is_error:
            raise McpToolError(_error_text(result) or f"{name} failed without a message")
        return unwrap_result(result)

    try:
        created = create_tool(
            id=name if prefix is None else f"{prefix}_{name}",
            description=listed.description or listed.title or "",
            input_schema=listed.input_schema,
            output_schema=listed.output_schema,
            execute=call,
        )
    except ValueError as exc:
        raise ValueError(f"MCP tool {name!r} of {upstream.name!r}: {exc}") from None
    created.group = prefix  # a server's tools are one group of a large catalog's outline
    return created


def unwrap_result(result: mcp_types.CallToolResult) -> Any:
    """A successful tool result as the program receives it (see the module docstring)."""
    if result.structured_content is not None:
        return result.structured_content
    values = [_block_value(block) for block in result.content]
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def _block_value(block: mcp_types.ContentBlock) -> Any:
    if isinstance(block, mcp_types.TextContent):
        return _json_or_text(block.text)
    return block.model_dump(mode="json", by_alias=True, exclude_none=True)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _json_or_text(text: str) -> Any:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except ValueError:  # not JSON, or NaN/Infinity, which the program could not receive
        return text
    if isinstance(value, float) and not math.isfinite(value):
        return text
    return value


def _error_text(result: mcp_types.CallToolResult) -> str:
    parts = [b.text for b in result.content if isinstance(b, mcp_types.TextContent)]
    return "\n".join(part for part in parts if part)


# Servers from a config ----------------------------------------------------------------------


class _StderrTail:
    """The last lines a server wrote to stderr, to say why it failed."""

    def __init__(self) -> None:
        self._lines: deque[str] = deque(maxlen=_STDERR_LINES)
        self._partial = b""
        self.closed = anyio.Event()

    def feed(self, chunk: bytes) -> None:
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        for line in complete:
            self._add(line)
        if len(self._partial) > _STDERR_LINE_CHARS * 4:
            self._add(self._partial)
            self._partial = b""

    def _add(self, raw: bytes) -> None:
        line = raw.decode("utf-8", errors="replace").rstrip()
        if line:
            self._lines.append(line[:_STDERR_LINE_CHARS])

    def close(self) -> None:
        if self._partial:
            self._add(self._partial)
            self._partial = b""
        self.closed.set()

    def text(self) -> str:
        return "\n".join(self._lines)


class McpServerConnection(_Upstream):
    """One server of a config: its tools while it runs, and ``failure`` (with ``stderr``, the
    last lines it wrote there) once it does not."""

    def __init__(self, config: McpServerConfig, startup_timeout: float) -> None:
        super().__init__(config.name)
        self.config = config
        self.tools: list[Tool] = []
        self._startup_timeout = startup_timeout
        self._stderr = _StderrTail() if isinstance(config, StdioServerConfig) else None
        self._ready = anyio.Event()
        self._stop = anyio.Event()
        self._stopping = False
        self._on_stopped: Callable[[McpServerConnection], None] | None = None

    @property
    def running(self) -> bool:
        """Whether the server started and has not stopped since."""
        return self._ready.is_set() and self.failure is None and not self._stopping

    @property
    def stderr(self) -> str:
        """The last lines the server wrote to stderr (empty for HTTP servers)."""
        return self._stderr.text() if self._stderr is not None else ""

    def describe(self) -> str:
        """Why the server is not running, with what it last said, for whoever runs codemode."""
        reason = self.failure or "it is running"
        return f"{reason}; its last stderr output:\n{self.stderr}" if self.stderr else reason

    async def settle(self) -> str:
        # The connection closes a moment before the process's last stderr lines arrive; stderr
        # at its end also tells an exit from a server that merely closed its output.
        exited = await self._stderr_closed()
        if self.failure is None:
            self.failure = "its process exited" if exited else "it closed the connection"
        return self.failure

    async def _stderr_closed(self) -> bool:
        if self._stderr is None:
            return False
        with anyio.move_on_after(_STDERR_SETTLE_SECONDS):
            await self._stderr.closed.wait()
        return self._stderr.closed.is_set()

    async def _run(self) -> None:
        """Connect, list tools, report ready, then hold the connection until asked to stop.

        Every failure ends here, never in the caller's task group: one server going wrong must
        not take the others down.
        """
        try:
            async with AsyncExitStack() as stack:
                session = await self._connect(stack)
                with anyio.fail_after(self._startup_timeout):
                    await session.initialize()
                    self.tools = await _list_tools(session, self, self.name)
                self._ready.set()
                await self._stop.wait()
        except Exception as exc:
            if not self._ready.is_set():
                self.failure = await self._startup_failure(exc)
            elif not self._stopping and self.failure is None:
                self.failure = f"its connection failed ({_describe(exc)})"
        finally:
            self._ready.set()

    async def _connect(self, stack: AsyncExitStack) -> ClientSession:
        if isinstance(self.config, HttpServerConfig):
            return await self._open_http(stack, self.config)
        return await self._start_process(stack, self.config)

    async def _start_process(
        self, stack: AsyncExitStack, config: StdioServerConfig
    ) -> ClientSession:
        assert self._stderr is not None
        read_fd, write_fd = os.pipe()
        errlog = os.fdopen(write_fd, "w")
        try:
            params = StdioServerParameters(
                command=config.command, args=list(config.args), env=dict(config.env), cwd=config.cwd
            )
            try:
                read, write = await stack.enter_async_context(stdio_client(params, errlog=errlog))
            except BaseException as exc:
                os.close(read_fd)
                if isinstance(exc, OSError | ValueError):  # what spawning raises
                    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                    raise _SpawnError(f"cannot run {config.command!r} ({reason})") from exc
                raise
        finally:
            errlog.close()  # the child holds its own copy; EOF then means the child is gone
        tasks = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(tasks.cancel_scope.cancel)  # runs before the group waits for its tasks
        tasks.start_soon(self._read_stderr, read_fd)
        # Relay the server's messages so that the end of its output is noticed at once, even
        # when no call is in flight.
        send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        tasks.start_soon(self._relay, read, send)
        return await stack.enter_async_context(
            ClientSession(receive, write, logging_callback=self.logs)
        )

    async def _open_http(self, stack: AsyncExitStack, config: HttpServerConfig) -> ClientSession:
        client = None
        if config.headers:
            client = await stack.enter_async_context(
                httpx2.AsyncClient(
                    headers=dict(config.headers), timeout=httpx2.Timeout(30.0, read=300.0)
                )
            )
        read, write = await stack.enter_async_context(
            streamable_http_client(config.url, http_client=client)
        )
        return await stack.enter_async_context(
            ClientSession(read, write, logging_callback=self.logs)
        )

    async def _read_stderr(self, fd: int) -> None:
        assert self._stderr is not None
        os.set_blocking(fd, False)
        try:
            while True:
                await anyio.wait_readable(fd)
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    return
                self._stderr.feed(chunk)
        finally:
            self._stderr.close()
            os.close(fd)

    async def _relay(
        self,
        upstream: AsyncIterable[SessionMessage | Exception],
        downstream: MemoryObjectSendStream[SessionMessage | Exception],
    ) -> None:
        async with downstream:
            try:
                async for message in upstream:
                    await downstream.send(message)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
        if self._ready.is_set() and not self._stopping and self.failure is None:
            await self.settle()
            if self._on_stopped is not None:
                self._on_stopped(self)

    async def _startup_failure(self, exc: Exception) -> str:
        leaf = _leaf(exc)
        if isinstance(leaf, _SpawnError):
            return str(leaf)
        await self._stderr_closed()
        if isinstance(leaf, TimeoutError):
            reason = f"it did not answer the MCP handshake within {self._startup_timeout:g} s"
        elif isinstance(leaf, MCPError) and leaf.code == mcp_types.CONNECTION_CLOSED:
            reason = "it exited before completing the MCP handshake"
        elif isinstance(self.config, HttpServerConfig):
            reason = f"cannot connect to {self.config.url} ({_describe(leaf)})"
        else:
            reason = _describe(leaf)
        return reason


class _SpawnError(Exception):
    """A stdio server's command could not be started at all."""


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    leaf = _leaf(exc)
    text = str(leaf)
    return f"{type(leaf).__name__}: {text}" if text else type(leaf).__name__


@dataclass
class McpServers:
    """The servers of a config, connected: the tools of those that started, and why the others
    did not."""

    connections: dict[str, McpServerConnection] = field(default_factory=dict)

    @property
    def tools(self) -> list[Tool]:
        """Every tool of every server that started, ids prefixed ``<server>_``. A server that
        stopped since keeps its tools, so that a program calling one learns why it failed."""
        return [t for c in self.connections.values() for t in c.tools]

    @property
    def failures(self) -> dict[str, str]:
        """Server name -> why it is not running (failed to start, or stopped since), with its
        last stderr output."""
        return {n: c.describe() for n, c in self.connections.items() if c.failure is not None}


def _report_to_stderr(message: str) -> None:
    print(f"codemode: {message}", file=sys.stderr, flush=True)


@asynccontextmanager
async def connect_mcp_servers(
    servers: str | os.PathLike[str] | Sequence[McpServerConfig],
    *,
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
    report: Callable[[str], None] | None = _report_to_stderr,
) -> AsyncIterator[McpServers]:
    """Start every server of a ``servers.json`` (or of a list of configs) at once and hold the
    connections open for the ``async with`` block.

    A server that fails to start, or stops later, is passed to ``report`` (which server, what it
    said on stderr) and left out; the others keep working, and a call to a tool of a stopped
    server throws ``McpConnectionError`` in the program. Raises ``McpConfigError`` for a bad
    config file.
    """
    configs = load_mcp_config(servers) if isinstance(servers, str | os.PathLike) else list(servers)
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise McpConfigError(f"server names must be unique, got {names}")

    def stopped(connection: McpServerConnection) -> None:
        if report is not None:
            report(f"MCP server {connection.name!r} stopped: {connection.describe()}")

    connected = McpServers({c.name: McpServerConnection(c, startup_timeout) for c in configs})
    raised: BaseException | None = None
    async with anyio.create_task_group() as tasks:
        for connection in connected.connections.values():
            connection._on_stopped = stopped
            tasks.start_soon(connection._run)
        try:
            for connection in connected.connections.values():
                await connection._ready.wait()
                if connection.failure is not None and report is not None:
                    report(
                        f"MCP server {connection.name!r} failed to start: {connection.describe()}"
                    )
            yield connected
        except BaseException as exc:
            # Re-raised below, once the connections are closed, so that the caller sees its own
            # exception rather than the task group's ExceptionGroup around it.
            raised = exc
        finally:
            for connection in connected.connections.values():
                connection._stopping = True
                connection._stop.set()
    if raised is not None:
        raise raised
