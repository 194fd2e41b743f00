"""The text the model reads: how to write a program, and a typed declaration per tool."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..._tools import Tool
from .._text import discovery_contract, format_timeout
from ._declarations import ToolDeclaration, render_declarations

if TYPE_CHECKING:
    from ...discovery import Outline

__all__ = [
    "DESCRIBE_FUNCTION",
    "DISCOVERY_DECLARATIONS",
    "SEARCH_FUNCTION",
    "render_discovery_instructions",
    "render_instructions",
    "render_tool_declarations",
    "tool_declarations",
]

_CONTRACT = """\
You have a tool named `{id}` that runs a TypeScript program in a sandbox and returns what the \
program returns. Use it when a task needs several tool calls, or computation between them: write \
one program instead of calling tools one at a time.

How to write the program:
- Write the body of an async function: use `await` at the top level and `return` the final \
value. Do not use `import` or `export`.
- Call the functions declared below; each returns a Promise. They are the only way to reach \
the outside world: there is no file system, network, or environment.
- Run independent calls in parallel with `Promise.all`, and do arithmetic, filtering and \
aggregation in the program rather than in your head.
- Return a JSON-serialisable value (objects, arrays, strings, numbers, booleans, null). Return \
only what you need: the value goes back into the conversation.
- `console.log` output is captured and returned as `logs`; use it for debugging.
- A failed call throws an `Error` with the tool's message (catch it with try/catch); an \
uncaught error ends the program and is reported with its line.
- The program is stopped after {timeout}.

Available functions:

{declarations}
"""


def render_tool_declarations(tools: Mapping[str, Tool]) -> str:
    """The ``declare function external_<key>`` block for ``tools`` (keyed by the identifier
    each is called by), with the named types they use."""
    return render_declarations(tool_declarations(tools)).rstrip()


def tool_declarations(tools: Mapping[str, Tool]) -> list[ToolDeclaration]:
    """``tools`` (keyed by the identifier each is called by) as the renderer takes them."""
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


def render_instructions(declarations: str, *, id: str, timeout_ms: int) -> str:
    """The usage contract for code tool ``id`` followed by the tools' declarations."""
    return _CONTRACT.format(id=id, timeout=format_timeout(timeout_ms), declarations=declarations)


# Large catalogs (discovery) -------------------------------------------------------------------
# The contract above, up to its list of functions, then how to find functions that are not
# declared: the in-program `codemode` object, the plain tools outside programs, an outline of
# the catalog, and the declarations of the pinned tools.

SEARCH_FUNCTION = "codemode.searchTools"
DESCRIBE_FUNCTION = "codemode.describeTools"

# What the type checker sees for the `codemode` object a program can use.
DISCOVERY_DECLARATIONS = """\
/** Search and describe the external_* functions (exists only inside programs). */
declare const codemode: {
  /** The functions that best fit a task described in words, best first. */
  searchTools(
    query: string,
    options?: { limit?: number },
  ): Promise<{
    results: { name: string; description: string; score: number }[];
    total: number;
    truncated: boolean;
  }>;
  /** The TypeScript declarations of the functions called `names`. */
  describeTools(names: string[]): Promise<string>;
};"""

_DISCOVERY = """\
Finding functions: there are {total} `external_*` functions, too many to declare here. \
{pinned}Find the others by searching from inside a program, with the `codemode` object:
- `await codemode.searchTools(query: string, options?: {{ limit?: number }})` returns \
`{{ results: {{ name: string; description: string; score: number }}[]; total: number; \
truncated: boolean }}`: the functions that best fit a task described in words, best first \
(`limit` defaults to 10, at most 50). Call a result as `external_<name>(input)`. No results \
means that no function fits: do not guess names.
- `await codemode.describeTools(names: string[])` returns the TypeScript declarations of \
those functions (their input and output types) as a string.
`codemode` exists only inside programs: it is not one of your tools. Outside programs, the \
tools `{search_tool}` and `{describe_tool}` do the same, if you have them: call those as tools, \
never from a program.
Every function in the outline below or found by search can be called, declared or not. When \
you are unsure which function to use or what it takes, search and describe first and return \
what you found; then call it in the next program. For example:

const found = await codemode.searchTools("list open pull requests", {{ limit: 3 }});
return await codemode.describeTools(found.results.map((r) => r.name));

Outline of the catalog (group: how many functions, a few of their names):
{outline}
"""

_PINNED_HEADING = "Declared functions:"


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
        pinned_count=pinned.count("declare function "),
        pinned_block=f"\n{_PINNED_HEADING}\n\n{pinned}\n" if pinned else "",
        outline=outline,
        discovery_tools=discovery_tools,
    )
