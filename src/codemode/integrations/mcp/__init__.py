"""MCP both ways: an MCP server's tools as codemode ``Tool``s (``client``), a code tool served
over MCP (``server``), and the ``servers.json`` format MCP clients share (``config``).

Needs the ``mcp`` extra: ``pip install 'codemode[mcp]'``.
"""

from typing import TYPE_CHECKING, Any

from .config import (
    HttpServerConfig,
    McpConfigError,
    McpServerConfig,
    StdioServerConfig,
    load_mcp_config,
    parse_mcp_config,
)

if TYPE_CHECKING:
    from .client import (
        McpConnectionError,
        McpServerConnection,
        McpServers,
        McpToolError,
        connect_mcp_servers,
        tools_from_mcp,
        unwrap_result,
    )
    from .server import code_mode_server, serve_code_mode

# The SDK is imported on first use, so that ``config`` (what the command line needs to reject a
# bad servers.json) works without the ``mcp`` extra.
_LAZY = {
    "McpConnectionError": "client",
    "McpServerConnection": "client",
    "McpServers": "client",
    "McpToolError": "client",
    "connect_mcp_servers": "client",
    "tools_from_mcp": "client",
    "unwrap_result": "client",
    "code_mode_server": "server",
    "serve_code_mode": "server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "HttpServerConfig",
    "McpConfigError",
    "McpConnectionError",
    "McpServerConfig",
    "McpServerConnection",
    "McpServers",
    "McpToolError",
    "StdioServerConfig",
    "code_mode_server",
    "connect_mcp_servers",
    "load_mcp_config",
    "parse_mcp_config",
    "serve_code_mode",
    "tools_from_mcp",
    "unwrap_result",
]
