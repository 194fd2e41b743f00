"""The text the model reads: how to write a program, and a typed declaration per tool."""

from __future__ import annotations

from collections.abc import Mapping

from ..._tools import Tool
from ._declarations import ToolDeclaration, render_declarations

__all__ = ["render_instructions", "render_tool_declarations"]

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


def _format_timeout(timeout_ms: int) -> str:
    if timeout_ms % 1000 == 0:
        seconds = timeout_ms // 1000
        return f"{seconds} second" + ("" if seconds == 1 else "s")
    return f"{timeout_ms} ms"


def render_tool_declarations(tools: Mapping[str, Tool]) -> str:
    """The ``declare function external_<key>`` block for ``tools`` (keyed by the identifier
    each is called by), with the named types they use."""
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
    """The usage contract for code tool ``id`` followed by the tools' declarations."""
    return _CONTRACT.format(id=id, timeout=_format_timeout(timeout_ms), declarations=declarations)
