"""Python programs, run by Monty: stubs, the usage contract, program preparation and the
type checker Monty bundles."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..._tools import Tool
from .._base import Language, Program
from ._checker import MontyTypeChecker
from ._contract import (
    DESCRIBE_FUNCTION,
    DISCOVERY_DECLARATIONS,
    SEARCH_FUNCTION,
    declaration_set,
    render_discovery_instructions,
    render_instructions,
    render_tool_declarations,
)
from ._declarations import DeclarationSet, ToolDeclaration, render, to_identifier
from ._program import checkable_program, prepare_program

if TYPE_CHECKING:
    from ...discovery import Outline

__all__ = ["LANGUAGE", "Python"]

_NOT_DEFINED = re.compile(r"^name '(\w+)' is not defined$")
_HINT_CHARS = 300


class Python(Language):
    """``execute_python`` programs calling ``async def external_*`` functions."""

    name = "python"
    title = "Python"
    default_tool_id = "execute_python"
    file_extensions = (".py",)
    parallel_calls = "asyncio.gather"
    discovery_functions = (SEARCH_FUNCTION, DESCRIBE_FUNCTION)

    def __init__(self) -> None:
        self._checker: MontyTypeChecker | None = None
        self._lock = threading.Lock()

    def identifier(self, key: str) -> str:
        return to_identifier(key)

    def render_declarations(self, tools: Mapping[str, Tool]) -> str:
        return render_tool_declarations(tools)

    def render_instructions(self, declarations: str, *, id: str, timeout_ms: int) -> str:
        return render_instructions(declarations, id=id, timeout_ms=timeout_ms)

    def declaration_set(self, tools: Mapping[str, Tool]) -> DeclarationSet:
        return declaration_set(tools)

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
        match = _NOT_DEFINED.match(message) if error_name == "NameError" else None
        return match.group(1) if match else None

    def input_hint(self, name: str, tool: Tool) -> str:
        declaration = ToolDeclaration(
            name, tool.id, tool.description, tool.input_schema, tool.output_schema
        )
        text = render([declaration]).text
        start = text.rfind(f"async def external_{name}(")
        signature = text[start : text.index(") -> ", start) + 1]
        signature = " ".join(signature.replace("async def ", "").split())
        signature = signature.replace("( ", "(").replace(", )", ")").replace(",)", ")")
        if len(signature) > _HINT_CHARS:
            signature = signature[: _HINT_CHARS - 1].rstrip() + "…"
        return signature

    def checkable(self, code: str) -> str:
        return checkable_program(code)

    def shared_checker(self) -> MontyTypeChecker:
        with self._lock:
            if self._checker is None:
                self._checker = MontyTypeChecker()
            return self._checker


LANGUAGE = Python()
