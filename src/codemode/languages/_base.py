"""What differs between program languages, behind one small protocol.

A sandbox names the language its programs are written in; ``create_code_mode`` asks that
language for everything textual (the declarations, the usage contract, how to turn the model's
text into a runnable module, the type checker) and never branches on which language it is.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .._tools import Tool
    from ..discovery import Outline

__all__ = [
    "DeclarationSet",
    "Language",
    "Program",
    "ProgramChecker",
    "TypeCheckFailure",
    "TypeCheckerError",
]


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


class DeclarationSet(Protocol):
    """The declarations of a catalog, of which any subset can be rendered (``describe``)."""

    def render(self, names: Iterable[str] | None = None) -> str:
        """The declarations of the tools called ``names`` (every tool when None) and of the
        types they use. Raises ``KeyError`` for a name that is not in the set."""
        ...


class _EachSubsetAlone:
    """A ``DeclarationSet`` that renders every subset on its own (a language's fallback)."""

    def __init__(self, language: Language, tools: Mapping[str, Tool]) -> None:
        self._language = language
        self._tools = tools

    def render(self, names: Iterable[str] | None = None) -> str:
        chosen = self._tools if names is None else {n: self._tools[n] for n in names}
        return self._language.render_declarations(chosen)


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

    # Large catalogs (discovery) ---------------------------------------------------------------
    #: How a program calls search and describe in this language (shown in messages), e.g.
    #: ``("codemode.searchTools", "codemode.describeTools")``; None: no discovery in programs.
    discovery_functions: tuple[str, str] | None = None

    def declaration_set(self, tools: Mapping[str, Tool]) -> DeclarationSet:
        """The declarations of ``tools`` for ``describe``. A language should give each type name
        one meaning across every subset; this fallback renders each subset on its own."""
        return _EachSubsetAlone(self, tools)

    def render_discovery_instructions(
        self,
        *,
        id: str,
        timeout_ms: int,
        outline: Outline,
        pinned_declarations: str,
        discovery_tools: tuple[str, str],
    ) -> str:
        """The usage contract for code tool ``id`` when the catalog is too large to declare:
        how to search and describe from a program (and, outside programs, with the tools
        named ``discovery_tools``), the catalog's ``outline``, then ``pinned_declarations``."""
        raise NotImplementedError(f"{self.title} programs cannot search the catalog yet")

    def discovery_declarations(self) -> str:
        """Declarations of the in-program search and describe functions, for the type checker."""
        return ""

    def __repr__(self) -> str:
        return f"<Language {self.name}>"
