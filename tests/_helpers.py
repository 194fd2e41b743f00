"""Helpers the sandbox tests share: run a program to the user's view of its result, match
text that differs per run, wait for a process to end, and the languages a shared suite runs
each case in."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psutil

from codemode import CodeModeTool, DenoSandbox, MontySandbox, Sandbox

#: The program languages a shared behaviour suite is parametrised over.
LANGUAGES = ["typescript", "python"]


@dataclass(frozen=True)
class Lang:
    """One language under test: its sandbox, and its program for each case
    (``lang({"typescript": ..., "python": ...})`` picks this language's)."""

    name: str
    sandbox: Sandbox

    def __call__(self, programs: Mapping[str, Any]) -> Any:
        return programs[self.name]


def sandbox_for(language: str, **options: Any) -> Sandbox:
    """The sandbox that runs programs in ``language`` (Deno for TypeScript, Monty for Python)."""
    return DenoSandbox(**options) if language == "typescript" else MontySandbox(**options)


class Matches:
    """Equal to any string that ``pattern`` matches in full (for paths, ids and line numbers
    that differ from run to run)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern, re.DOTALL)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.pattern.fullmatch(other) is not None

    def __hash__(self) -> int:
        return hash(self.pattern.pattern)

    def __repr__(self) -> str:
        return f"Matches({self.pattern.pattern!r})"


async def run(tool: CodeModeTool, code: str) -> dict[str, Any]:
    result = await tool.execute({"code": code})
    return result.model_dump(exclude_none=True)


async def process_gone(pid: int, within: float = 3.0) -> bool:
    """Whether process ``pid`` has ended (reaped or a zombie) within ``within`` seconds."""
    for _ in range(int(within / 0.02)):
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        await asyncio.sleep(0.02)
    return False


def sandbox_pid(cwd: str) -> int:
    """The host pid of the sandbox process working in ``cwd``. A program can say its working
    directory (the same path inside the OS wall and out); ``Deno.pid`` is its own pid
    namespace's behind bubblewrap."""
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() == "deno" and child.cwd() == cwd:
                return child.pid
        except psutil.Error:
            continue
    raise LookupError(f"no sandbox process works in {cwd}")
