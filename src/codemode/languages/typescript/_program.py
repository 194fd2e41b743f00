"""Turn the code a model submitted into the module the sandbox imports.

The model writes a function body (top-level ``await`` and ``return`` allowed). We wrap it in an
async function without moving any of its lines, so a line in a stack frame minus the prelude is
the line in the submitted string.
"""

from __future__ import annotations

import re

from .._base import Program

__all__ = ["prepare_program"]

PRELUDE = "export default async function __codemode_main__() {\n"
SUFFIX = "\n}\n"

_FENCE_OPEN = re.compile(r"^\s*```[\w+-]*[ \t]*$")
_FENCE_CLOSE = re.compile(r"^\s*```\s*$")
# `async () => { ... }`, optionally parenthesised and invoked: `(async () => { ... })()`.
_ARROW = re.compile(
    r"^(?P<lead>\s*)\(?\s*async\s*(?:\(\s*\)|_)\s*(?::\s*[\w<>\[\], ]+)?\s*=>\s*\{",
)
_ARROW_TAIL = re.compile(r"\}\s*\)?\s*(?:\(\s*\))?\s*;?\s*$")


def strip_fences(code: str) -> str:
    """Blank out a Markdown fence around the code, keeping every other line where it was."""
    lines = code.split("\n")
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    last = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].strip()), None)
    if first is None or last is None or first == last:
        return code
    if _FENCE_OPEN.match(lines[first]) and _FENCE_CLOSE.match(lines[last]):
        lines[first] = ""
        lines[last] = ""
    return "\n".join(lines)


def _balanced_block(text: str, start: int) -> int | None:
    """Index of the brace closing the one at ``start``, skipping strings and comments."""
    depth = 0
    i = start
    quote: str | None = None
    while i < len(text):
        ch = text[i]
        if quote is not None:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "'\"`":
            quote = ch
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = len(text) if end < 0 else end + 2
            continue
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def call_lone_arrow(code: str) -> str:
    """A program written as one ``async () => { ... }`` is called, and its value returned.

    The rewrite stays on the same lines, so line numbers still match the submitted code.
    """
    match = _ARROW.match(code)
    if match is None:
        return code
    close = _balanced_block(code, match.end() - 1)
    if close is None or not _ARROW_TAIL.fullmatch(code, close):
        return code
    body = code[match.end() : close]
    return f"{match.group('lead')}return await (async () => {{{body}}})();"


def prepare_program(code: str) -> Program:
    """The module source for ``code``: fences stripped, a lone async arrow called, wrapped."""
    body = call_lone_arrow(strip_fences(code))
    return Program(source=PRELUDE + body + SUFFIX, line_offset=PRELUDE.count("\n"))
