"""Python programs, run by Monty: stubs, the usage contract, program preparation and the
type checker Monty bundles."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from ..._tools import Tool
from .._base import Language, Program
from ._checker import MontyTypeChecker
from ._contract import render_instructions, render_tool_declarations
from ._declarations import to_identifier
from ._program import checkable_program, prepare_program

__all__ = ["LANGUAGE", "Python"]


class Python(Language):
    """``execute_python`` programs calling ``async def external_*`` functions."""

    name = "python"
    title = "Python"
    default_tool_id = "execute_python"
    file_extensions = (".py",)
    parallel_calls = "asyncio.gather"

    def __init__(self) -> None:
        self._checker: MontyTypeChecker | None = None
        self._lock = threading.Lock()

    def identifier(self, key: str) -> str:
        return to_identifier(key)

    def render_declarations(self, tools: Mapping[str, Tool]) -> str:
        return render_tool_declarations(tools)

    def render_instructions(self, declarations: str, *, id: str, timeout_ms: int) -> str:
        return render_instructions(declarations, id=id, timeout_ms=timeout_ms)

    def prepare(self, code: str) -> Program:
        return prepare_program(code)

    def checkable(self, code: str) -> str:
        return checkable_program(code)

    def shared_checker(self) -> MontyTypeChecker:
        with self._lock:
            if self._checker is None:
                self._checker = MontyTypeChecker()
            return self._checker


LANGUAGE = Python()
