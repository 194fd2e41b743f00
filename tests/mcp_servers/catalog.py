"""Test MCP server "catalog": serves a recorded catalog of a published MCP server (the JSON file
named by the CATALOG environment variable, from bench/data/catalogs) with the tools' real names,
descriptions and input schemas; each call answers with the tool's name and its arguments."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import mcp.types as mcp_types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

RECORD = json.loads(Path(os.environ["CATALOG"]).read_text(encoding="utf-8"))
TOOLS = [
    mcp_types.Tool(
        name=item["name"],
        description=item.get("description") or "",
        input_schema=item["inputSchema"],
    )
    for item in RECORD["tools"]
]


async def list_tools(
    ctx: Any, params: mcp_types.PaginatedRequestParams | None
) -> mcp_types.ListToolsResult:
    return mcp_types.ListToolsResult(tools=TOOLS)


async def call_tool(ctx: Any, params: mcp_types.CallToolRequestParams) -> mcp_types.CallToolResult:
    answer = {"tool": params.name, "arguments": params.arguments or {}}
    return mcp_types.CallToolResult(
        content=[mcp_types.TextContent(text=json.dumps(answer))], structured_content=answer
    )


async def main() -> None:
    server = Server(RECORD["server"], on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
