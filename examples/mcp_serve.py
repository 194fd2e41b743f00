"""`codemode serve` from Python: one code tool over the shop's Python tools and the tools of the
MCP servers in examples/servers.json, served to an MCP client over stdio.

Run from the repository root: python examples/mcp_serve.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from shop import tools as shop_tools

from codemode import DenoSandbox, create_code_mode
from codemode.integrations.mcp import connect_mcp_servers, serve_code_mode


async def main() -> None:
    async with connect_mcp_servers(Path(__file__).with_name("servers.json")) as servers:
        code_mode = create_code_mode(
            tools=[*shop_tools.values(), *servers.tools], sandbox=DenoSandbox()
        )
        await serve_code_mode(code_mode, transport="stdio")


if __name__ == "__main__":
    asyncio.run(main())
