"""TypeScript programs, run by Deno: declarations, the usage contract, program preparation
and the warm type checker."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..._tools import Tool
from .._base import Language, Program
from ._checker import TypeChecker
from ._contract import (
    DESCRIBE_FUNCTION,
    DISCOVERY_DECLARATIONS,
    SEARCH_FUNCTION,
    render_discovery_instructions,
    render_instructions,
    render_tool_declarations,
    tool_declarations,
)
from ._declarations import (
    DeclarationSet,
    render_declaration_set,
    schema_to_typescript,
    to_identifier,
)
from ._program import prepare_body, prepare_program

if TYPE_CHECKING:
    from ...discovery import Outline

__all__ = ["LANGUAGE", "TypeScript"]

_NOT_DEFINED = re.compile(r"^([\w$]+) is not defined$")
_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
_HINT_CHARS = 300


class TypeScript(Language):
    """The spec's language: ``execute_typescript`` programs calling ``external_*`` functions."""

    name = "typescript"
    title = "TypeScript"
    default_tool_id = "execute_typescript"
    file_extensions = (".ts", ".mts", ".js", ".mjs")
    discovery_functions = (SEARCH_FUNCTION, DESCRIBE_FUNCTION)

    def __init__(self) -> None:
        self._checker: TypeChecker | None = None
        self._lock = threading.Lock()

    def identifier(self, key: str) -> str:
        return to_identifier(key)

    def render_declarations(self, tools: Mapping[str, Tool]) -> str:
        return render_tool_declarations(tools)

    def render_instructions(self, declarations: str, *, id: str, timeout_ms: int) -> str:
        return render_instructions(declarations, id=id, timeout_ms=timeout_ms)

    def declaration_set(self, tools: Mapping[str, Tool]) -> DeclarationSet:
        return render_declaration_set(tool_declarations(tools))

    def render_discovery_instructions(
        self,
        *,
        id: str,
        timeout_ms: int,
        outline: Outline,
        pinned_declarations: str,
        discovery_tools: tuple[str, str],
    ) -> str:
        return render_discovery_instructions(
            id=id,
            timeout_ms=timeout_ms,
            outline=outline,
            pinned_declarations=pinned_declarations,
            discovery_tools=discovery_tools,
        )

    def discovery_declarations(self) -> str:
        return DISCOVERY_DECLARATIONS

    def prepare(self, code: str) -> Program:
        return prepare_program(code)

    def undefined_name(self, error_name: str, message: str) -> str | None:
        match = _NOT_DEFINED.match(message) if error_name == "ReferenceError" else None
        return match.group(1) if match else None

    def input_hint(self, name: str, tool: Tool) -> str:
        text = " ".join(_COMMENT.sub("", schema_to_typescript(tool.input_schema)).split())
        if len(text) > _HINT_CHARS:
            text = text[: _HINT_CHARS - 1].rstrip() + "…"
        return f"external_{name}(input: {text})"

    def checkable(self, code: str) -> str:
        return prepare_body(code).text

    def shared_checker(self) -> TypeChecker:
        with self._lock:
            if self._checker is None:
                self._checker = TypeChecker()
            return self._checker


LANGUAGE = TypeScript()
