"""Type-check a model's program against the stubs with the checker Monty bundles (ty).

The checker runs in a warm Monty worker. It never runs the program: the program becomes the
body of an ``async def`` that is defined but not called (which also lets ``await`` and
``return`` stand at its top level, as Monty allows when it runs the program), and each check
gets a fresh session so no program sees another's names.
"""

from __future__ import annotations

import asyncio
import atexit
import re
import threading
from typing import Final

import pydantic_monty

from .._base import TypeCheckerError, TypeCheckFailure

__all__ = ["MontyTypeChecker"]

_MAX_REPORTED: Final = 5
_WRAPPER: Final = "async def __codemode_program__():\n"
_DIAGNOSTIC: Final = re.compile(
    r"^[^:\n]*:(?P<line>\d+):(?P<column>\d+): (?P<level>error|warning)\[(?P<rule>[\w-]+)\] "
    r"(?P<message>.*)$",
    re.MULTILINE,
)


def wrap(code: str) -> str:
    """The checked snippet: ``code`` as the body of an uncalled ``async def`` (line L of the
    snippet is line L - 1 of the program)."""
    lines = code.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    body = "\n".join(f"    {line}" if line.strip() else "" for line in lines)
    return f"{_WRAPPER}{body}\n    pass\n"


def failure(display: str, code_lines: int) -> TypeCheckFailure:
    """The model-facing failure for ty's concise diagnostics of a wrapped program."""
    found: list[tuple[int | None, int, str]] = []
    for match in _DIAGNOSTIC.finditer(display):
        line = int(match.group("line")) - 1
        found.append(
            (
                line if 1 <= line <= code_lines else None,
                int(match.group("column")),
                f"{match.group('message').strip()} ({match.group('rule')})",
            )
        )
    if not found:
        return TypeCheckFailure(display.strip() or "The program does not type-check.", None)
    found.sort(key=lambda d: (d[0] is None, d[0] or 0, d[1]))
    first_line = found[0][0]
    parts = [found[0][2]]
    for where, _, message in found[1:_MAX_REPORTED]:
        parts.append(message if where is None else f"line {where}: {message}")
    if len(found) > _MAX_REPORTED:
        parts.append(f"... and {len(found) - _MAX_REPORTED} more errors")
    return TypeCheckFailure("\n".join(parts), first_line)


class MontyTypeChecker:
    """A ``ProgramChecker`` for Python programs: one warm Monty worker running ty."""

    def __init__(self, *, timeout: float = 30.0) -> None:
        self._timeout = timeout
        self._pool: pydantic_monty.Monty | None = None
        self._lock = threading.Lock()

    def _monty(self) -> pydantic_monty.Monty:
        with self._lock:
            if self._pool is None:
                pool = pydantic_monty.Monty(
                    min_processes=1, max_processes=2, request_timeout=self._timeout
                )
                pool.__enter__()
                self._pool = pool
                atexit.register(self.close)
            return self._pool

    def check_sync(self, code: str, declarations: str) -> TypeCheckFailure | None:
        """None when ``code`` type-checks against ``declarations``, else the errors."""
        code_lines = code.count("\n") + 1
        try:
            with self._monty().checkout(
                type_check=True,
                type_check_stubs=declarations,
                type_check_format="concise",
                limits={"max_feed_duration_secs": 1.0},
            ) as session:
                session.feed_run(wrap(code), print_callback=lambda stream, text: None)
        except pydantic_monty.MontyTypingError as exc:
            return failure(exc.display(), code_lines)
        except pydantic_monty.MontySyntaxError:
            return None  # not the checker's to report: running it gives the line and message
        except pydantic_monty.MontyRuntimeError:
            return None  # defining the function failed, e.g. a name Monty lacks: not a type error
        except (pydantic_monty.MontyError, OSError) as exc:
            raise TypeCheckerError(f"the Monty type checker failed: {exc}") from exc
        return None

    async def check(self, code: str, declarations: str) -> TypeCheckFailure | None:
        return await asyncio.to_thread(self.check_sync, code, declarations)

    def close(self) -> None:
        """Stop the checker's worker."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.__exit__(None, None, None)
