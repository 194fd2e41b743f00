"""The text the model reads: how to write a Python program for Monty, then the stubs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..._tools import Tool
from .._text import discovery_contract, format_timeout
from ._declarations import DeclarationSet, ToolDeclaration, render_declarations

if TYPE_CHECKING:
    from ...discovery import Outline

__all__ = [
    "DESCRIBE_FUNCTION",
    "DISCOVERY_DECLARATIONS",
    "IMPORTABLE_MODULES",
    "SEARCH_FUNCTION",
    "declaration_set",
    "render_discovery_instructions",
    "render_instructions",
    "render_tool_declarations",
]

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


def _tool_declarations(tools: Mapping[str, Tool]) -> list[ToolDeclaration]:
    return [
        ToolDeclaration(
            name=name,
            tool_id=tool.id,
            description=tool.description,
            input_schema=tool.input_schema,
            output_schema=tool.output_schema,
        )
        for name, tool in tools.items()
    ]


def render_tool_declarations(tools: Mapping[str, Tool]) -> str:
    """The stubs for ``tools`` (keyed by the identifier each is called by)."""
    return render_declarations(_tool_declarations(tools)).rstrip()


def declaration_set(tools: Mapping[str, Tool]) -> DeclarationSet:
    """The stubs of ``tools`` for ``describe``: any subset, with one name per type."""
    return DeclarationSet(_tool_declarations(tools))


def render_instructions(declarations: str, *, id: str, timeout_ms: int) -> str:
    """The usage contract for code tool ``id`` followed by the tools' stubs."""
    return _CONTRACT.format(
        id=id,
        timeout=format_timeout(timeout_ms),
        modules=", ".join(f"`{m}`" for m in IMPORTABLE_MODULES),
        declarations=declarations,
    )


# Large catalogs (discovery) -------------------------------------------------------------------
# The contract above, up to its list of functions, then how to find functions that are not
# declared: the `codemode` object a program finds (MontySandbox answers the name), the plain
# tools outside programs, an outline of the catalog, and the stubs of the pinned tools.

SEARCH_FUNCTION = "codemode.search_tools"
DESCRIBE_FUNCTION = "codemode.describe_tools"

# What the type checker sees for the `codemode` object (names the stubs renderer never uses).
DISCOVERY_DECLARATIONS = '''\
class CodemodeSearchResult(TypedDict):
    name: str
    description: str
    score: float


class CodemodeSearchResults(TypedDict):
    results: list[CodemodeSearchResult]
    total: int
    truncated: bool


class CodemodeDiscovery:
    """Search and describe the external_* functions (exists only inside programs)."""

    async def search_tools(self, query: str, limit: int = 10) -> CodemodeSearchResults:
        """The functions that best fit a task described in words, best first."""
        ...

    async def describe_tools(self, names: list[str] | str) -> str:
        """The Python stubs of the functions called `names`."""
        ...


codemode: CodemodeDiscovery'''

_DISCOVERY = """\
Finding functions: there are {total} `external_*` functions, too many to declare here. \
{pinned}Find the others by searching from inside a program, with the `codemode` object:
- `await codemode.search_tools(query: str, limit: int = 10)` returns `{{"results": \
[{{"name": str, "description": str, "score": float}}, ...], "total": int, "truncated": bool}}`: \
the functions that best fit a task described in words, best first (`limit` at most 50). Call a \
result as `await external_<name>(...)`. No results means that no function fits: do not guess \
names.
- `await codemode.describe_tools(names: list[str])` returns the Python stubs of those functions \
(their arguments and return types) as a string.
`codemode` exists only inside programs: it is not one of your tools. Outside programs, the \
tools `{search_tool}` and `{describe_tool}` do the same, if you have them: call those as tools, \
never from a program.
Every function in the outline below or found by search can be called, declared or not. When \
you are unsure which function to use or what it takes, search and describe first and return \
what you found; then call it in the next program. For example:

found = await codemode.search_tools("list open pull requests", limit=3)
await codemode.describe_tools([r["name"] for r in found["results"]])

Outline of the catalog (group: how many functions, a few of their names):
{outline}
"""

_PINNED_HEADING = "Declared functions:"
_DEFINED = re.compile(r"^async def external_(\w+)\(", re.MULTILINE)


def render_discovery_instructions(
    *,
    id: str,
    timeout_ms: int,
    outline: Outline,
    pinned_declarations: str,
    discovery_tools: tuple[str, str],
) -> str:
    """The usage contract for a catalog too large to declare (see the comment above)."""
    pinned = pinned_declarations.strip()
    return discovery_contract(
        render_instructions("", id=id, timeout_ms=timeout_ms),
        _DISCOVERY,
        pinned_count=len(set(_DEFINED.findall(pinned))),  # overloads define one function
        pinned_block=f"\n{_PINNED_HEADING}\n\n```python\n{pinned}\n```\n" if pinned else "",
        outline=outline,
        discovery_tools=discovery_tools,
    )
