"""What differs between program languages, behind one small protocol.

A sandbox names the language its programs are written in; ``create_code_mode`` asks that
language for everything textual (the declarations, the usage contract, how to turn the model's
text into a runnable module, the type checker) and never branches on which language it is.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .._tools import Tool

__all__ = ["Language", "Program", "ProgramChecker", "TypeCheckFailure", "TypeCheckerError"]


@dataclass(frozen=True)
class Program:
    """A module ready to run, and how its lines map back to the submitted code: the line in
    the model's text is the line in ``source`` minus ``line_offset``. ``last_line`` is the last
    line of the model's code (an error past it, such as a syntax error at the end of input, is
    reported there); None when unknown."""

    source: str
    line_offset: int
    last_line: int | None = None


@dataclass(frozen=True)
class TypeCheckFailure:
    """What the checker rejected: its messages (first error first) and the program line."""

    message: str
    line: int | None  # 1 = first line of the program as the model wrote it


class TypeCheckerError(RuntimeError):
    """The checker itself failed (could not start, crashed, timed out): not the program's fault."""


class ProgramChecker(Protocol):
    """Checks a program against the tools' declarations without running it."""

    async def check(self, code: str, declarations: str) -> TypeCheckFailure | None:
        """None when the program type-checks, else the errors and the program line."""
        ...


class Language(abc.ABC):
    """One program language: its declarations, contract, program preparation and checker."""

    #: Short name, e.g. ``"typescript"``; ``create_code_mode_instructions(language=...)`` takes it.
    name: str
    #: How people write the name, e.g. ``"TypeScript"``.
    title: str
    #: The code tool's id when ``create_code_mode`` is given none, e.g. ``"execute_typescript"``.
    default_tool_id: str
    #: File extensions of programs in this language, for the command line.
    file_extensions: tuple[str, ...]
    #: How a program runs independent calls in parallel, named in error messages.
    parallel_calls: str = "Promise.all"

    @abc.abstractmethod
    def identifier(self, key: str) -> str:
        """The suffix of ``external_<suffix>`` for a tool key: a valid identifier, total and
        deterministic."""

    @abc.abstractmethod
    def render_declarations(self, tools: Mapping[str, Tool]) -> str:
        """The typed ``external_*`` declarations of ``tools`` (keyed by identifier suffix)."""

    @abc.abstractmethod
    def render_instructions(self, declarations: str, *, id: str, timeout_ms: int) -> str:
        """The usage contract for code tool ``id``, followed by ``declarations``."""

    @abc.abstractmethod
    def prepare(self, code: str) -> Program:
        """The runnable module for the model's text (fences, wrappers, result handling)."""

    @abc.abstractmethod
    def undefined_name(self, error_name: str, message: str) -> str | None:
        """The name in an "is not defined" error of this language's runtime, else None."""

    @abc.abstractmethod
    def input_hint(self, name: str, tool: Tool) -> str:
        """One line saying how to call ``external_<name>``: the input it expects."""

    @abc.abstractmethod
    def checkable(self, code: str) -> str:
        """The program text the type checker sees (the model's text minus its wrapping)."""

    @abc.abstractmethod
    def shared_checker(self) -> ProgramChecker:
        """One warm checker shared by every code mode of this language with ``typecheck=True``."""

    def __repr__(self) -> str:
        return f"<Language {self.name}>"
