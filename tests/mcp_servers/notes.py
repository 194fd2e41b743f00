"""Test MCP server "notes": unstructured results (JSON text, plain text, several parts) and
an environment variable from the config."""

from __future__ import annotations

import json
import os
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import TextContent

server = MCPServer("notes", log_level="WARNING")

NOTES: list[dict[str, Any]] = [
    {"id": 1, "title": "Pack umbrella", "tags": ["travel"]},
    {"id": 2, "title": "Book hotel in Oslo", "tags": ["travel", "todo"]},
    {"id": 3, "title": "Water the plants", "tags": ["home"]},
]


@server.tool(structured_output=False)
def search_notes(tag: str) -> str:
    """Notes with a tag, as JSON text."""
    return json.dumps([n for n in NOTES if tag in n["tags"]])


@server.tool(structured_output=False)
def owner() -> str:
    """Who owns the notes (plain text, from the NOTES_OWNER environment variable)."""
    return f"Notes of {os.environ.get('NOTES_OWNER', 'nobody')}"


@server.tool(name="note-titles", structured_output=False)
def note_titles() -> list[TextContent]:
    """Every title, one text part each."""
    return [TextContent(type="text", text=str(n["title"])) for n in NOTES]


if __name__ == "__main__":
    server.run()
