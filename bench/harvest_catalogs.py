"""Record the tool catalogs of published MCP servers as JSON data files (bench/data/catalogs/).

Each server in a servers.json is started, asked for ``tools/list`` over a real MCP session, and
its tools (name, title, description, input and output schema) are written to
``<out>/<server>.json``. Only the tool definitions are kept: they are data, not the servers'
code. The servers need not be configured with real credentials to list their tools; give
dummy values in ``env`` where a server refuses to start without one.

    python bench/harvest_catalogs.py servers.json --out bench/data/catalogs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.types import PaginatedRequestParams


async def harvest(name: str, spec: dict[str, Any], out: Path) -> None:
    params = StdioServerParameters(
        command=spec["command"], args=spec.get("args", []), env=spec.get("env") or None
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        init = await asyncio.wait_for(session.initialize(), 60)
        tools: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = None if cursor is None else PaginatedRequestParams(cursor=cursor)
            page = await session.list_tools(params=params)
            for tool in page.tools:
                item: dict[str, Any] = {"name": tool.name}
                if tool.title:
                    item["title"] = tool.title
                item["description"] = tool.description or ""
                item["inputSchema"] = tool.input_schema
                if tool.output_schema:
                    item["outputSchema"] = tool.output_schema
                tools.append(item)
            cursor = page.next_cursor
            if not cursor:
                break
    record = {
        "server": name,
        "package": spec.get("package", ""),
        "serverInfo": {"name": init.server_info.name, "version": init.server_info.version},
        "tools": tools,
    }
    path = out / f"{name}.json"
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{name}: {len(tools)} tools -> {path}", file=sys.stderr)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data" / "catalogs")
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    servers = json.loads(args.config.read_text(encoding="utf-8"))["mcpServers"]
    args.out.mkdir(parents=True, exist_ok=True)
    for name, spec in servers.items():
        if args.only and name not in args.only:
            continue
        try:
            await asyncio.wait_for(harvest(name, spec, args.out), 120)
        except Exception as exc:  # one server failing does not stop the others
            print(f"{name}: FAILED {type(exc).__name__}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
