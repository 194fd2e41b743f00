"""The text the model reads: how to write a Python program for Monty, then the stubs."""

from __future__ import annotations

from collections.abc import Mapping

from ..._tools import Tool
from ..typescript._contract import _format_timeout
from ._declarations import ToolDeclaration, render_declarations

__all__ = ["IMPORTABLE_MODULES", "render_instructions", "render_tool_declarations"]

#: What ``import`` finds in the pinned Monty (pydantic-monty 1.4); tests import each one.
IMPORTABLE_MODULES = (
    "asyncio", "base64", "binascii", "bisect", "collections", "copy", "csv", "dataclasses",
    "datetime", "decimal", "functools", "hashlib", "itertools", "json", "math", "pathlib",
    "random", "re", "sys", "time", "tomllib", "typing", "unicodedata",
)  # fmt: skip

_CONTRACT = """\
You have a tool named `{id}` that runs a Python program in a sandbox (Monty, a Python \
interpreter for a subset of the language) and returns what the program returns. Use it when a \
task needs several tool calls, or computation between them: write one program instead of \
calling tools one at a time.

How to write the program:
- Write module-level code: use `await` at the top level. The value of the last expression is \
the result (`return value` at the top level works too; a last expression of `None`, such as \
a trailing `print`, is no result). Do not define `main()` or call `asyncio.run`.
- Call the async functions declared below with keyword arguments (one dict when a function \
takes one positional `input`), and `await` each call: `await external_name(arg=value)`. They \
are the only way to reach the outside world: there is no file system, network, or environment.
- Run independent calls in parallel with `await asyncio.gather(...)` (after `import asyncio`; \
positional arguments only, no `return_exceptions`), and do arithmetic, filtering and \
aggregation in the program rather than in your head.
- The result must be JSON: dicts with string keys, lists, strings, numbers, booleans, None. \
Tuples and sets become lists, dates and times ISO 8601 strings, timedeltas seconds; bytes, NaN \
and other objects are errors. Return only what you need: the value goes back into the \
conversation.
- `print()` output is captured and returned as `logs`; use it for debugging.
- A failed call raises an exception with the tool's message (a built-in type such as \
`ValueError` for invalid arguments, else `Exception`; catch it with try/except); an uncaught \
error ends the program and is reported with its line.
- Available modules: {modules}. Not supported: class inheritance (including custom exception \
classes), generators and `yield`, `asyncio.create_task`/`wait_for`, third-party packages.
- Values returned by the functions are plain dicts and lists: the classes below only describe \
their shape.
- The program is stopped after {timeout}.

Available functions:

```python
{declarations}
```
"""


def render_tool_declarations(tools: Mapping[str, Tool]) -> str:
    """The stubs for ``tools`` (keyed by the identifier each is called by)."""
    return render_declarations(
        [
            ToolDeclaration(
                name=name,
                tool_id=tool.id,
                description=tool.description,
                input_schema=tool.input_schema,
                output_schema=tool.output_schema,
            )
            for name, tool in tools.items()
        ]
    ).rstrip()


def render_instructions(declarations: str, *, id: str, timeout_ms: int) -> str:
    """The usage contract for code tool ``id`` followed by the tools' stubs."""
    return _CONTRACT.format(
        id=id,
        timeout=_format_timeout(timeout_ms),
        modules=", ".join(f"`{m}`" for m in IMPORTABLE_MODULES),
        declarations=declarations,
    )
