"""Test MCP server "jobs": a tool that reports progress and sends log messages while it works."""

from __future__ import annotations

import warnings

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("jobs", log_level="WARNING")


@server.tool()
async def count(to: int, ctx: Context) -> int:
    """Count to a number, reporting each step."""
    with warnings.catch_warnings():  # the logging capability is deprecated, still in use
        warnings.simplefilter("ignore")
        await ctx.info(f"counting to {to}")
    for step in range(1, to + 1):
        await ctx.report_progress(step, to, f"step {step}")
    return to


if __name__ == "__main__":
    server.run()
