"""MCP server side: a code tool served over stdio or streamable HTTP."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import mcp.types as mcp_types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from ... import __version__
from ..._code_mode import CodeMode, CodeModeTool
from ..._tools import Tool, ToolValidationError
from ._approvals import (
    RESUME_TOOL,
    approvals_until,
    resume_execution,
    resume_tool,
    with_inline_approvals,
)
from ._events import MemoryEventStore
from ._relay import GatewayRequest, current_request

__all__ = ["SSE_RETRY_MS", "code_mode_server", "serve_code_mode"]

SSE_RETRY_MS = 1000  # how long a client waits before reconnecting to a lost SSE stream


def code_mode_server(code_mode: CodeMode | CodeModeTool, *, name: str = "codemode") -> Server:
    """A low-level MCP ``Server`` with one tool: the code tool, described by its instructions.

    Its result is the ``CodeModeToolResult`` JSON, as structured content and as text, bounded
    for the model (``max_model_output_chars``); a failed program is an error result
    (``isError``), so clients show it to the model as one. When the code tool's discovery is
    on, ``search_tools`` and ``describe_tools`` are served beside it.

    Calls that need approval and that the tool's ``approve`` leaves undecided are asked of the
    client's user inline when the client supports elicitation (``_approvals``). With a store,
    a call nobody decided pauses the program (a paused result is not an error: the program
    waits), and ``resume_execution`` continues it with the user's decisions.
    """
    tool = code_mode.tool if isinstance(code_mode, CodeMode) else code_mode
    if not isinstance(tool, CodeModeTool):
        raise TypeError(
            "serve the CodeMode (or its tool) that create_code_mode() returns, "
            f"got {type(code_mode).__name__}"
        )
    served = with_inline_approvals(tool)
    listed = [
        mcp_types.Tool(
            name=tool.id,
            description=tool.description,
            input_schema=tool.input_schema,
            output_schema=tool.output_schema,
        )
    ]
    if tool.store is not None:
        listed.append(resume_tool(tool))
    # With discovery on, search_tools and describe_tools are served beside the code tool.
    discovery = {t.id: t for t in tool.discovery_tools} if tool.discovery else {}
    listed.extend(_listed(t) for t in discovery.values())
    names = ", ".join(t.name for t in listed)

    async def list_tools(
        ctx: Any, params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListToolsResult:
        return mcp_types.ListToolsResult(tools=listed)

    async def call_tool(
        ctx: Any, params: mcp_types.CallToolRequestParams
    ) -> mcp_types.CallToolResult:
        arguments = params.arguments or {}
        if params.name in discovery:
            return await _call_discovery_tool(discovery[params.name], arguments)
        if params.name == tool.id:
            run = served.execute(arguments)
        elif params.name == RESUME_TOOL and tool.store is not None:
            run = resume_execution(served, arguments)
        else:
            raise MCPError(
                code=mcp_types.INVALID_PARAMS,
                message=f"Unknown tool: {params.name} (this server has {names})",
            )
        progress_token = (params.meta or {}).get("progress_token")
        request = GatewayRequest(ctx.session, ctx.request_id, progress_token)
        token = current_request.set(request)  # the program's upstream calls relay to it
        try:
            with approvals_until(tool.timeout_ms):
                result = await run
        finally:
            current_request.reset(token)
        payload = result.to_json()
        return mcp_types.CallToolResult(
            content=[mcp_types.TextContent(text=json.dumps(payload, ensure_ascii=False))],
            structured_content=payload,
            is_error=not result.success and result.status != "paused",
        )

    return Server(name, version=__version__, on_list_tools=list_tools, on_call_tool=call_tool)


def _listed(tool: Tool) -> mcp_types.Tool:
    output = tool.output_schema
    return mcp_types.Tool(
        name=tool.id,
        description=tool.description,
        input_schema=tool.input_schema,
        # MCP output schemas describe objects; a tool that returns text has none.
        output_schema=output if output is not None and output.get("type") == "object" else None,
    )


async def _call_discovery_tool(tool: Tool, arguments: dict[str, Any]) -> mcp_types.CallToolResult:
    """Run search_tools or describe_tools; bad arguments are an error result the model reads."""
    try:
        value = await tool.execute(arguments)
    except ToolValidationError as exc:
        return mcp_types.CallToolResult(
            content=[mcp_types.TextContent(text=str(exc))], is_error=True
        )
    if isinstance(value, str):
        return mcp_types.CallToolResult(content=[mcp_types.TextContent(text=value)])
    return mcp_types.CallToolResult(
        content=[mcp_types.TextContent(text=json.dumps(value, ensure_ascii=False))],
        structured_content=value,
    )


async def serve_code_mode(
    code_mode: CodeMode | CodeModeTool,
    *,
    transport: Literal["stdio", "streamable-http"] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    name: str = "codemode",
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the code tool over MCP until the client disconnects (stdio) or this coroutine is
    cancelled (Ctrl-C under ``asyncio.run``; ``codemode serve`` cancels it on SIGTERM too).

    Starts the sandbox's warm processes first and closes them on return; ``on_ready`` then
    receives where clients connect (``"stdio"`` or ``http://host:port/mcp``). Raises
    ``OSError`` when the port cannot be listened on. Run it with
    ``asyncio.run(serve_code_mode(create_code_mode(tools=..., sandbox=DenoSandbox())))``.
    """
    if transport not in ("stdio", "streamable-http"):
        raise ValueError(f'transport must be "stdio" or "streamable-http", got {transport!r}')
    server = code_mode_server(code_mode, name=name)
    tool = code_mode.tool if isinstance(code_mode, CodeMode) else code_mode
    async with tool.sandbox:
        if transport == "stdio":
            async with stdio_server() as (read, write):
                if on_ready is not None:
                    on_ready("stdio")
                await server.run(read, write, server.create_initialization_options())
        else:
            await _serve_http(server, host, port, on_ready)


async def _serve_http(
    server: Server, host: str, port: int, on_ready: Callable[[str], None] | None
) -> None:
    import uvicorn

    class Uvicorn(uvicorn.Server):
        # Signals are the caller's: cancelling is how serving stops (see below). uvicorn's own
        # handlers would re-raise SIGTERM once it stopped, killing the process before the sandbox
        # and the upstream servers are closed.
        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    # Bound here, not by uvicorn, whose answer to a port in use is sys.exit().
    try:
        listener = socket.create_server((host, port))
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise OSError(exc.errno, f"cannot listen on {host}:{port} ({reason})") from None
    # Resumable streams (the transport's recommendation): each SSE stream opens with a priming
    # event carrying an id and a `retry:` delay, so a client that loses the stream mid-program
    # reconnects with Last-Event-ID and gets the result it missed.
    app = server.streamable_http_app(
        host=host, event_store=MemoryEventStore(), retry_interval=SSE_RETRY_MS
    )
    http = Uvicorn(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    serving = asyncio.ensure_future(http.serve(sockets=[listener]))
    if on_ready is not None:
        on_ready(f"http://{host}:{port}/mcp")  # connections queue on the listening socket
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        http.should_exit = True  # a graceful shutdown: open requests finish, lifespans end
        await serving
        raise
    finally:
        listener.close()
    if not http.started:
        raise OSError(errno.EIO, f"cannot serve on http://{host}:{port} (see the error above)")
