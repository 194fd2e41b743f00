"""Real MCP tool catalogs for the discovery tests (bench/data/catalogs, recorded from published
servers), as codemode tools grouped by server."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from codemode import Tool, create_tool
from codemode.languages import get_language

CATALOGS = Path(__file__).resolve().parent.parent / "bench" / "data" / "catalogs"


def echo(arguments: Any) -> Any:
    return {"echo": arguments}


def server_tools(server: str, *, group: str | None = None) -> dict[str, Tool]:
    """One recorded server's tools, keyed ``<server>_<tool>`` (as the MCP gateway names them)."""
    record = json.loads((CATALOGS / f"{server}.json").read_text(encoding="utf-8"))
    identifier = get_language("typescript").identifier
    tools: dict[str, Tool] = {}
    for item in record["tools"]:
        tool = create_tool(
            id=f"{group or server}_{item['name']}",
            description=item.get("description") or "",
            input_schema=item["inputSchema"],
            output_schema=item.get("outputSchema"),
            execute=echo,
        )
        tool.group = group or server
        tools[identifier(tool.id)] = tool
    return tools


@cache
def _all_servers() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in CATALOGS.glob("*.json")))


def real_catalog() -> dict[str, Tool]:
    """Every recorded server's tools (565 tools of 25 servers)."""
    tools: dict[str, Tool] = {}
    for server in _all_servers():
        tools.update(server_tools(server))
    return tools
