"""What every escape attempt shares: how to run one, what a denial looks like, and the check
that the host is still fine afterwards."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from _helpers import Matches, run
from codemode import CodeModeTool

# Run after every attack on the same code tool: the sandbox still computes, still has its
# built-ins, and still reaches the host's tools.
HEALTHY_CODE = "return [6 * 7, JSON.stringify({ a: [1] }), await external_echo({ ok: true })]"
HEALTHY = {"success": True, "result": [42, '{"a":[1]}', {"ok": True}], "logs": []}

UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@dataclass
class Recorder:
    """Every host tool call the attacks caused, as (tool, input)."""

    calls: list[tuple[str, Any]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


@dataclass(frozen=True)
class Attack:
    """One program and the exact result it must produce."""

    id: str
    code: str
    expected: dict[str, Any]


def params(attacks: Iterable[Attack]) -> list[Any]:
    return [pytest.param(attack, id=attack.id) for attack in attacks]


def failed(message: str | Matches, name: str, line: int | None = 1) -> dict[str, Any]:
    """The result of a program that ended with an error."""
    error: dict[str, Any] = {"message": message, "name": name}
    if line is not None:
        error["line"] = line
    return {"success": False, "logs": [], "error": error}


def succeeded(result: Any, logs: list[str] | None = None) -> dict[str, Any]:
    outcome: dict[str, Any] = {"success": True, "logs": logs or []}
    if result is not None:
        outcome["result"] = result
    return outcome


def not_capable(
    what: str | Matches, flag: str, line: int | None = 1, name: str = "NotCapable"
) -> dict[str, Any]:
    """Deno's permission denial, as the program sees it."""
    tail = f", run again with the --allow-{flag} flag"
    if isinstance(what, Matches):
        return failed(Matches(f"Requires {what.pattern.pattern}{re.escape(tail)}"), name, line)
    return failed(f"Requires {what}{tail}", name, line)


async def check_attack(tool: CodeModeTool, attack: Attack) -> None:
    """The attack produced exactly its expected result, and the next execution is healthy."""
    assert await run(tool, attack.code) == attack.expected
    assert await run(tool, HEALTHY_CODE) == HEALTHY
