"""What an execution was written against: its prepared program and its tools. A resume runs
the stored program again, so it is refused when either changed since the pause."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .._tools import Tool
from ..languages import Program

__all__ = ["FORMAT", "fingerprint", "fingerprint_changes"]

FORMAT = 1  # the journal's format: a runner that records differently must not replay old tapes


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(code_mode_id: str, program: Program, tools: Mapping[str, Tool]) -> str:
    """JSON text naming the code tool, the journal format, and hashes of the program (as it
    runs) and of each tool (its id and schemas) by the name the program calls it."""
    return json.dumps(
        {
            "format": FORMAT,
            "code_mode": code_mode_id,
            "program": _digest([program.source, program.line_offset]),
            "tools": {
                name: _digest([tool.id, tool.input_schema, tool.output_schema])
                for name, tool in sorted(tools.items())
            },
        },
        sort_keys=True,
    )


def fingerprint_changes(recorded: str, current: str) -> list[str]:
    """What differs between two fingerprints, as phrases ("tool external_x was removed"); empty
    when they match."""
    try:
        old = json.loads(recorded)
    except ValueError:
        return ["the stored fingerprint is unreadable"]
    new = json.loads(current)
    changes: list[str] = []
    if old.get("format") != new["format"]:
        changes.append(
            f"it was recorded in journal format {old.get('format')}, and this codemode "
            f"replays format {new['format']}"
        )
    if old.get("code_mode") != new["code_mode"]:
        changes.append(
            f"it belongs to code tool {old.get('code_mode')!r}, not {new['code_mode']!r}"
        )
    if old.get("program") != new["program"]:
        changes.append("its program is not the one that ran (the code, or how it is prepared)")
    old_tools: dict[str, str] = old.get("tools") or {}
    new_tools: dict[str, str] = new["tools"]
    for name in sorted(set(old_tools) | set(new_tools)):
        if name not in new_tools:
            changes.append(f"tool external_{name} was removed")
        elif name not in old_tools:
            changes.append(f"tool external_{name} was added")
        elif old_tools[name] != new_tools[name]:
            changes.append(f"tool external_{name} changed (its id or schemas)")
    return changes
