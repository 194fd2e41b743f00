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


# The runner's channel to a program's worker (runner.ts, "The channel to the worker"): a
# SharedArrayBuffer with four Int32 slots (UP_TAIL, UP_HEAD, DOWN_TAIL, DOWN_HEAD), then the up
# ring (worker -> runner) and the down ring, each holding [u32 length][record] one after another.
# Records: C (call: id, tool index, input JSON), L (log), P (barrier), R and E (replies). Attacks
# on it run in a sandbox that hands each program its buffer (``expose_channel``), as if it had
# found it; CHANNEL_JS gives them the means to forge records.
CHANNEL_JS = """
const ch = globalThis.__codemodeChannel
const i32 = new Int32Array(ch), u8 = new Uint8Array(ch)
const RING = 65536, UP_TAIL = 0, UP_HEAD = 1, DOWN_TAIL = 2, DOWN_HEAD = 3
const UP_DATA = 64, DOWN_DATA = 64 + RING
const u32 = (n) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255]
const getU32 = (b, at) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0
function call(id, index, json) {
  const body = new TextEncoder().encode(json)
  const record = new Uint8Array(9 + body.length)
  record[0] = 67
  record.set(u32(id), 1)
  record.set(u32(index), 5)
  record.set(body, 9)
  return record
}
// Writes raw bytes at the up ring's tail and publishes them, as the worker does.
function writeUp(bytes) {
  const tail = Atomics.load(i32, UP_TAIL) >>> 0
  for (let i = 0; i < bytes.length; i++) u8[UP_DATA + ((tail + i) % RING)] = bytes[i]
  Atomics.store(i32, UP_TAIL, (tail + bytes.length) | 0)
  Atomics.notify(i32, UP_TAIL)
}
const inRing = (record) => writeUp([...u32(record.length), ...record])
// Waits until the runner has read everything published in the up ring (the worker writes at
// its own tail, which does not count what the program wrote: it would write over it).
async function taken() {
  while (Atomics.load(i32, UP_HEAD) !== Atomics.load(i32, UP_TAIL)) {
    await new Promise((r) => setTimeout(r, 1))
  }
}
// The reply to call `id` as the runner wrote it in the down ring: [kind, its JSON], or
// "no reply" after a second. (The worker reads the ring too and drops replies to ids it did
// not make; the bytes stay where they are.)
async function answer(id) {
  for (let tries = 0; tries < 100; tries++) {
    const tail = Atomics.load(i32, DOWN_TAIL) >>> 0
    for (let at = 0; at + 4 <= tail && tail <= RING;) {
      const length = getU32(u8, DOWN_DATA + at)
      const record = u8.slice(DOWN_DATA + at + 4, DOWN_DATA + at + 4 + length)
      if (record[0] !== 80 && getU32(record, 1) === id) {
        const json = new TextDecoder().decode(record.slice(5))
        return [String.fromCharCode(record[0]), JSON.parse(json)]
      }
      at += 4 + length
    }
    await new Promise((r) => setTimeout(r, 10))
  }
  return "no reply"
}
"""


def channel_program(body: str) -> str:
    """A program with CHANNEL_JS's means before ``body``. Its lines are CHANNEL_JS's and
    ``body``'s: an error on body line 1 is on line ``CHANNEL_LINES + 1``."""
    return CHANNEL_JS + body


CHANNEL_LINES = CHANNEL_JS.count("\n")
