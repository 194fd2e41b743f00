"""What every escape attempt shares: how to run one, what a denial looks like, and the check
that the host is still fine afterwards."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import psutil
import pytest

from _helpers import Matches, run
from codemode import CodeModeTool, LocalSandbox

Walls = Literal["deno", "wall", "deno+wall"]

# In the host's environment while the attacks run (conftest's ``walls``): no program may see it.
HOST_SECRET = "hunter2-codemode-host-secret"

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
    """One program and the exact result it must produce: ``expected`` behind Deno's permission
    checks alone, ``walled`` behind the OS wall alone (Deno granting everything) and ``both``
    behind both. Unset, ``walled`` and ``both`` are ``expected``: the attack never reaches the
    operating system (realms, the protocol, limits), or Deno refuses it first."""

    id: str
    code: str
    expected: dict[str, Any]
    walled: dict[str, Any] | None = None
    both: dict[str, Any] | None = None

    def result(self, walls: Walls) -> dict[str, Any]:
        if walls == "wall" and self.walled is not None:
            return self.walled
        if walls == "deno+wall" and self.both is not None:
            return self.both
        return self.expected


def walls_of(tool: CodeModeTool) -> Walls:
    """Which walls stand around ``tool``'s programs."""
    if isinstance(tool.sandbox, LocalSandbox):
        return "wall"
    report = tool.sandbox.confinement_report()  # type: ignore[attr-defined]
    return "deno" if report.os_wall == "none" else "deno+wall"


def sandbox_process(process: psutil.Process) -> bool:
    """Whether ``process`` is one that sandboxes start: Deno, or a wall around it."""
    try:
        return process.name() in ("deno", "bwrap") or any(
            arg.endswith("_landlock_exec.py") for arg in process.cmdline()
        )
    except psutil.NoSuchProcess:
        return True  # gone already: a pool start that failed or was cancelled


def host_pid() -> int:
    return os.getpid()


def params(attacks: Iterable[Attack]) -> list[Any]:
    return [pytest.param(attack, id=attack.id) for attack in attacks]


def with_walls(
    attacks: Iterable[Attack],
    walled: dict[str, dict[str, Any]],
    both: dict[str, dict[str, Any]] | None = None,
) -> list[Attack]:
    """``attacks`` with their results behind the OS wall alone (``walled``, by attack id) and
    behind both walls (``both``), where those differ from Deno's alone."""
    both = both or {}
    known = {attack.id for attack in attacks}
    assert set(walled) | set(both) <= known, set(walled) | set(both) - known
    return [
        replace(attack, walled=walled.get(attack.id), both=both.get(attack.id))
        for attack in attacks
    ]


class Anything:
    """Equal to any value: for facts the kernel tells every process (its load, its memory, the
    kernel's version), which are not what a wall is for."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "Anything()"


class Unordered:
    """Equal to a list holding the same items in any order (keys of an object whose order
    follows a hash)."""

    def __init__(self, items: list[Any]) -> None:
        self.items = sorted(items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, list) and sorted(other) == self.items

    def __hash__(self) -> int:
        return hash(tuple(self.items))

    def __repr__(self) -> str:
        return f"Unordered({self.items!r})"


class Lacks:
    """Equal to any value whose text does not contain ``secret``."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def __eq__(self, other: object) -> bool:
        return self.secret not in repr(other)

    def __hash__(self) -> int:
        return hash(self.secret)

    def __repr__(self) -> str:
        return f"Lacks({self.secret!r})"


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


def os_refused(message: str, name: str, line: int | None = 1) -> dict[str, Any]:
    """The operating system's refusal, as Deno reports it to the program: ``message`` is the
    error's text before Deno's ``(os error N)`` and what follows it."""
    return failed(Matches(rf"{re.escape(message)} \(os error \d+\).*"), name, line)


NOT_FOUND = os_refused("No such file or directory", "NotFound")  # not in the wall's filesystem
READ_ONLY = os_refused("Read-only file system", "Error")
NOT_PERMITTED = os_refused("Operation not permitted", "PermissionDenied")  # seccomp


async def check_attack(tool: CodeModeTool, attack: Attack) -> None:
    """The attack produced exactly its expected result, and the next execution is healthy."""
    outcome = await run(tool, attack.code)
    if os.environ.get("CODEMODE_SHOW_OUTCOMES"):  # to write down a new attack's results
        print(f"\n{walls_of(tool)} {attack.id}: {outcome!r}")
    assert outcome == attack.result(walls_of(tool))
    assert await run(tool, HEALTHY_CODE) == HEALTHY
