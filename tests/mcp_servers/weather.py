"""Test MCP server "weather": structured results, a tool error and a crash on demand.

Run as ``python weather.py`` (stdio) or ``python weather.py --http PORT`` (streamable HTTP).
"""

from __future__ import annotations

import os
import sys

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

server = MCPServer("weather", log_level="WARNING")

FORECASTS = {"Paris": (21, "sunny"), "Oslo": (9, "rain"), "Lima": (18, "cloudy")}


class Forecast(BaseModel):
    city: str
    high_c: int
    conditions: str


@server.tool()
def get_forecast(city: str) -> Forecast:
    """Tomorrow's forecast for a city."""
    if city not in FORECASTS:
        raise ToolError(f"unknown city: {city}")
    high, conditions = FORECASTS[city]
    return Forecast(city=city, high_c=high, conditions=conditions)


@server.tool()
def crash() -> str:
    """Exit the server process in the middle of the call."""
    sys.stderr.write("weather: crashing on purpose\n")
    sys.stderr.flush()
    os._exit(3)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", port=int(sys.argv[2]))
    else:
        server.run()
