"""Turn the code a model submitted into the module Monty runs.

Monty already runs what models write: top-level ``await``, the value of the last expression
as the result, and ``return`` at the top level. We add one thing without moving any line: the
value the program ends with passes through ``__codemode_result__`` (defined in a prelude of
``PRELUDE_LINES`` lines), which turns it into JSON text *inside* the sandbox by the documented
rules and refuses a result over the size limit there, so a huge or non-JSON value never
crosses to the host.

Finding "the last expression" and the top-level ``return``s needs a parser for the Python
that Monty accepts (3.14 syntax: PEP 701 f-strings nest quotes), which the host's ``ast``
(3.11 here) cannot parse. `statements` is a small scanner for exactly that: logical lines,
strings (f-strings recursively), brackets, comments, continuations and ``;``-separated
statements. It never needs to understand an expression, only where statements begin and end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from .._base import Program

__all__ = [
    "MAX_RESULT_BYTES_NAME",
    "PRELUDE",
    "RESULT_MARKER",
    "Statement",
    "checkable_program",
    "extract_code",
    "prepare_program",
    "statements",
]

#: The global the sandbox binds to the execution's result limit (``ExecutionLimits``).
MAX_RESULT_BYTES_NAME: Final = "__codemode_max_result_bytes__"
#: The first item of the tuple the prelude returns: ``(RESULT_MARKER, "ok", json_text)`` or
#: ``(RESULT_MARKER, "too_large", size_in_bytes)``.
RESULT_MARKER: Final = "__codemode_result__"

# Runs in Monty before the program (no inheritance, no generators, few modules: see the
# contract). Messages name the path of the value, as the TypeScript runner's do.
PRELUDE: Final = f'''\
import json as __codemode_json
import math as __codemode_math
import datetime as __codemode_datetime
import decimal as __codemode_decimal
def __codemode_jsonable(value, path, what, seen):
    if value is None or value is True or value is False or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        if __codemode_math.isfinite(value):
            return value
        raise TypeError(
            f"{{what}} is not JSON: {{value}} at {{path}} "
            "(NaN and infinity have no JSON form; use None or a string)"
        )
    kind = type(value).__name__
    if kind == "coroutine":
        raise TypeError(
            f"{{what}} is not JSON: an un-awaited coroutine at {{path}}; add `await` before "
            "the external_* call (or await asyncio.gather(...) for several)"
        )
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        for other in seen:
            if other is value:
                raise TypeError(f"{{what}} is not JSON: circular reference at {{path}}")
        seen.append(value)
        if isinstance(value, dict):
            out = {{}}
            for key, item in value.items():
                if isinstance(key, str):
                    name = key
                elif key is None or key is True or key is False:
                    name = __codemode_json.dumps(key)
                elif isinstance(key, (int, float)):
                    name = str(key)
                else:
                    raise TypeError(
                        f"{{what}} is not JSON: a key of type {{type(key).__name__}} "
                        f"at {{path}} (JSON keys are strings)"
                    )
                out[name] = __codemode_jsonable(item, f"{{path}}[{{key!r}}]", what, seen)
        else:
            items = list(value)
            if isinstance(value, (set, frozenset)):
                try:
                    items = sorted(items)
                except TypeError:
                    pass
            out = [
                __codemode_jsonable(item, f"{{path}}[{{i}}]", what, seen)
                for i, item in enumerate(items)
            ]
        seen.pop()
        return out
    if isinstance(value, (__codemode_datetime.date, __codemode_datetime.time)):
        return value.isoformat()
    if isinstance(value, __codemode_datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, __codemode_decimal.Decimal):
        return __codemode_jsonable(float(value), path, what, seen)
    if isinstance(value, bytes):
        raise TypeError(
            f"{{what}} is not JSON: bytes at {{path}} (decode them: .decode() for text, "
            "base64.b64encode(...).decode() for binary)"
        )
    if kind in ("range", "dict_keys", "dict_values", "dict_items") or "iterator" in kind:
        raise TypeError(f"{{what}} is not JSON: {{kind}} at {{path}} (convert it with list())")
    if kind in ("function", "builtin_function_or_method", "type", "module"):
        raise TypeError(f"{{what}} is not JSON: {{kind}} at {{path}}")
    raise TypeError(
        f"{{what}} is not JSON: an instance of {{kind}} at {{path}} (return a dict of its fields)"
    )
def {RESULT_MARKER}(value, returned=True):
    if value is None and not returned:
        return None  # a last expression of None (a print) is no result, as in a REPL
    data = __codemode_jsonable(value, "result", "result", [])
    text = __codemode_json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    size = len(text.encode())
    if size > {MAX_RESULT_BYTES_NAME}:
        return ("{RESULT_MARKER}", "too_large", size)
    return ("{RESULT_MARKER}", "ok", text)
'''
PRELUDE_LINES: Final = PRELUDE.count("\n")


@dataclass
class Statement:
    """One simple statement, or the header of a compound one, as offsets into the source."""

    start: int  # first character of its first token
    end: int  # just after its last token
    indent: int  # column of its logical line (tabs to multiples of 8)
    first: str  # its first token (a keyword, a name, an operator or a string)
    tokens: list[tuple[str, int, int]] = field(default_factory=list)  # depth-0 (text, start, end)
    header: bool = False  # a compound statement's header: `if x:`, `async def f():`, `@deco`
    inline: bool = False  # a simple statement after a header's colon on the same line
    in_def: bool = False  # inside a function body: its `return` is not the program's


_SIMPLE_KEYWORDS: Final = frozenset(
    {"return", "raise", "import", "from", "del", "pass", "break", "continue", "global",
     "nonlocal", "assert"}
)  # fmt: skip
_COMPOUND: Final = frozenset(
    {"if", "elif", "else", "for", "while", "try", "except", "finally", "with", "def", "class",
     "async"}
)  # fmt: skip
_SOFT_COMPOUND: Final = frozenset({"match", "case"})
_OPERATORS: Final = sorted(
    ["**=", "//=", ">>=", "<<=", "...", "->", ":=", "==", "!=", "<=", ">=", "+=", "-=", "*=",
     "/=", "%=", "&=", "|=", "^=", "@=", "**", "//", "<<", ">>"],
    key=len,
    reverse=True,
)  # fmt: skip
_ASSIGNMENTS: Final = frozenset(
    {"=", "+=", "-=", "*=", "/=", "//=", "%=", "**=", ">>=", "<<=", "&=", "|=", "^=", "@="}
)
_STRING_PREFIX: Final = re.compile(r"(?i)(?:[rubft]|br|rb|fr|rf|tr|rt)(?=['\"])")
_NAME: Final = re.compile(r"[^\W\d]\w*")
_NUMBER: Final = re.compile(r"\d[\w.]*|\.\d[\w.]*")


class _Scanner:
    """Walks the source once; `logical_lines` yields each logical line's depth-0 tokens."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def skip_string(self, i: int) -> int:
        """The index just after the string literal whose prefix or quote starts at ``i``."""
        text = self.text
        match = _STRING_PREFIX.match(text, i)
        prefix = match.group().lower() if match else ""
        i += len(prefix)
        quote = text[i] * 3 if text.startswith(text[i] * 3, i) else text[i]
        i += len(quote)
        formatted = "f" in prefix or "t" in prefix
        while i < len(text):
            ch = text[i]
            if ch == "\\":
                i += 2
            elif text.startswith(quote, i):
                return i + len(quote)
            elif ch == "\n" and len(quote) == 1:
                return i  # unterminated: Monty reports it
            elif formatted and ch == "{":
                if text.startswith("{{", i):
                    i += 2
                else:
                    i = self.skip_field(i + 1)
            else:
                i += 1
        return i

    def skip_field(self, i: int) -> int:
        """The index just after the ``}`` closing an f-string replacement field at ``i``."""
        text = self.text
        depth = 0
        while i < len(text):
            ch = text[i]
            if ch in "([{":
                depth += 1
                i += 1
            elif ch in ")]}":
                if depth == 0:
                    return i + 1
                depth -= 1
                i += 1
            elif ch == ":" and depth == 0 and not text.startswith(":=", i):
                return self.skip_format_spec(i + 1)
            elif ch in "'\"" or _STRING_PREFIX.match(text, i):
                i = self.skip_string(i)
            elif (name := _NAME.match(text, i)) is not None:
                i = name.end()
            else:
                i += 1
        return i

    def skip_format_spec(self, i: int) -> int:
        """Literal text up to the field's ``}``; nested ``{...}`` fields are expressions."""
        text = self.text
        while i < len(text):
            ch = text[i]
            if ch == "}":
                return i + 1
            if ch == "{":
                i = self.skip_field(i + 1)
            else:
                i += 1
        return i

    def logical_line(self) -> tuple[int, list[tuple[str, int, int]]] | None:
        """The next logical line's indent and depth-0 tokens, or None at the end."""
        text = self.text
        # Skip blank and comment-only lines; measure the indent of the next one.
        while True:
            if self.i >= len(text):
                return None
            line_start = self.i
            indent = 0
            while self.i < len(text) and text[self.i] in " \t\f":
                indent = indent + 8 - indent % 8 if text[self.i] == "\t" else indent + 1
                self.i += 1
            if self.i >= len(text):
                return None
            ch = text[self.i]
            if ch == "#":
                end = text.find("\n", self.i)
                self.i = len(text) if end < 0 else end + 1
            elif ch in "\r\n":
                self.i += 1
            elif ch == "\\" and text.startswith("\n", self.i + 1):
                self.i += 2
            else:
                break
            del line_start
        tokens: list[tuple[str, int, int]] = []
        depth = 0
        while self.i < len(text):
            i = self.i
            ch = text[i]
            if ch == "\n":
                self.i += 1
                if depth == 0:
                    break
            elif ch in " \t\f\r":
                self.i += 1
            elif ch == "#":
                end = text.find("\n", i)
                self.i = len(text) if end < 0 else end
            elif ch == "\\":
                self.i += 2 if text.startswith("\n", i + 1) else 1
            elif ch in "'\"" or _STRING_PREFIX.match(text, i):
                self.i = self.skip_string(i)
                if depth == 0:
                    tokens.append((text[i : self.i], i, self.i))
            elif (name := _NAME.match(text, i)) is not None:
                self.i = name.end()
                if depth == 0:
                    tokens.append((name.group(), i, self.i))
            elif (number := _NUMBER.match(text, i)) is not None:
                self.i = number.end()
                if depth == 0:
                    tokens.append((number.group(), i, self.i))
            elif ch in "([{":
                if depth == 0:
                    tokens.append((ch, i, i + 1))
                depth += 1
                self.i += 1
            elif ch in ")]}":
                depth = max(depth - 1, 0)
                self.i += 1
                if depth == 0:
                    tokens.append((ch, i, i + 1))
            else:
                op = next((o for o in _OPERATORS if text.startswith(o, i)), ch)
                self.i += len(op)
                if depth == 0:
                    tokens.append((op, i, self.i))
        return (indent, tokens) if tokens else self.logical_line()


def _header_colon(tokens: list[tuple[str, int, int]]) -> int | None:
    """Index of the depth-0 colon that ends a header or an annotation (lambdas skipped)."""
    lambdas = 0
    for index, (text, _, _) in enumerate(tokens):
        if text == "lambda":
            lambdas += 1
        elif text == ":":
            if lambdas:
                lambdas -= 1
            else:
                return index
    return None


def _split(
    tokens: list[tuple[str, int, int]], indent: int, *, inline: bool, in_def: bool
) -> list[Statement]:
    out: list[Statement] = []
    current: list[tuple[str, int, int]] = []
    for token in [*tokens, (";", -1, -1)]:
        if token[0] == ";":
            if current:
                out.append(
                    Statement(
                        current[0][1], current[-1][2], indent, current[0][0], current,
                        inline=inline, in_def=in_def,
                    )
                )  # fmt: skip
            current = []
        else:
            current.append(token)
    return out


def statements(code: str) -> list[Statement]:
    """The statements of ``code`` in order: simple ones, and compound headers (whose inline
    bodies follow them). Tolerant: a program that does not parse still gets an answer, and
    Monty reports its syntax error."""
    scanner = _Scanner(code)
    out: list[Statement] = []
    defs: list[int] = []  # indents of the function definitions we are inside
    while (line := scanner.logical_line()) is not None:
        indent, tokens = line
        while defs and indent <= defs[-1]:
            defs.pop()
        in_def = bool(defs)
        first = tokens[0][0]
        colon = _header_colon(tokens)
        is_header = first in _COMPOUND or first == "@"
        if first in _SOFT_COMPOUND and colon is not None and colon > 1:
            is_header = tokens[1][0] not in ("=", ".", "(", "[") or colon == len(tokens) - 1
        if not is_header:
            out.extend(_split(tokens, indent, inline=False, in_def=in_def))
            continue
        head = tokens if colon is None else tokens[: colon + 1]
        is_def = first == "def" or (first == "async" and len(tokens) > 1 and tokens[1][0] == "def")
        out.append(
            Statement(head[0][1], head[-1][2], indent, first, head, header=True, in_def=in_def)
        )
        body = [] if colon is None else tokens[colon + 1 :]
        if body:  # `if x: return 1`: the body is on the header's line
            out.extend(_split(body, indent + 1, inline=True, in_def=in_def or is_def))
        elif is_def:
            defs.append(indent)
    return out


def _is_expression(statement: Statement) -> bool:
    """Whether a simple statement is an expression (its value is the module's value)."""
    if statement.header or statement.first in _SIMPLE_KEYWORDS:
        return False
    if any(text in _ASSIGNMENTS for text, _, _ in statement.tokens):
        return False
    return _header_colon(statement.tokens) is None  # `x: int` is an annotation


_LONE_ASYNC_DEF: Final = re.compile(r"async\s+def\s+([^\W\d]\w*)\s*\(\s*\)")


@dataclass(frozen=True)
class _Plan:
    returns: list[tuple[int, int]]  # (start, end) of each top-level `return` value
    last: tuple[int, int] | None  # the last expression statement, if the program ends with one
    call: str | None  # the lone `async def NAME():` to call at the end, if that is the program


def _plan(code: str) -> _Plan:
    found = statements(code)
    top = [s for s in found if not s.in_def]
    returns = [(s.tokens[1][1], s.end) for s in top if s.first == "return" and len(s.tokens) > 1]
    base = min((s.indent for s in found), default=0)
    last = next((s for s in reversed(found) if s.indent == base and not s.inline), None)
    call = None
    expression = None
    if last is not None and not last.header and _is_expression(last):
        expression = (last.start, last.end)
    elif last is not None and last.header:
        # The last top-level statement is compound: is it `async def NAME():` alone?
        header = next(s for s in reversed(found) if s.indent == base and s.header)
        text = code[header.start : header.end]
        match = _LONE_ASYNC_DEF.match(text)
        defs_at_base = [s for s in found if s.indent == base and s.header]
        if (
            match
            and header is defs_at_base[-1]
            and all(
                s.first in ("import", "from") or s.header or s.in_def
                for s in found
                if s.indent == base and not s.inline and s is not header
            )
        ):
            call = match.group(1)
    return _Plan(returns, expression, call)


def prepare_program(code: str) -> Program:
    """The module Monty runs for ``code``: fences stripped, the result wrapped, the prelude
    first (``line_offset`` lines)."""
    body = extract_code(code)
    plan = _plan(body)
    spans = [(start, end, "") for start, end in plan.returns]
    if plan.last is not None:
        spans.append((*plan.last, ", False"))  # a last expression of None is no result
    parts: list[str] = []
    at = 0
    for start, end, flag in sorted(spans):
        parts += [body[at:start], f"{RESULT_MARKER}(", body[start:end], f"{flag})"]
        at = end
    parts.append(body[at:])
    rewritten = "".join(parts)
    if plan.call is not None:
        rewritten = f"{rewritten.rstrip()}\n{RESULT_MARKER}(await {plan.call}())\n"
    return Program(source=PRELUDE + rewritten, line_offset=PRELUDE_LINES)


def checkable_program(code: str) -> str:
    """What the type checker sees: the model's program (fences stripped, a lone ``async def``
    called), without the prelude or the result wrapping."""
    body = extract_code(code)
    plan = _plan(body)
    if plan.call is not None:
        body = f"{body.rstrip()}\nawait {plan.call}()\n"
    return body


_FENCE: Final = re.compile(r"^\s*(?P<mark>`{3,}|~{3,})\s*(?P<info>[\w+-]*)[^\n`]*$")
_CODE_TAGS: Final = frozenset({"python", "py", "python3", "py3"})


def _string_spans(text: str) -> list[tuple[int, int]]:
    """Where the string literals of ``text`` are (comments skipped)."""
    scanner = _Scanner(text)
    spans = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif ch in "'\"" or (
            _STRING_PREFIX.match(text, i) and (i == 0 or not text[i - 1].isalnum())
        ):
            end = scanner.skip_string(i)
            spans.append((i, end))
            i = max(end, i + 1)
        else:
            i += 1
    return spans


def extract_code(text: str) -> str:
    """The code in ``text`` with everything else blanked, every line kept where it was.

    With fenced blocks present, the code is the first block tagged python/py, else the first
    block; the fences and the prose around them become empty lines. A fence inside a string of
    a program (one building Markdown) is the program's own text.
    """
    lines = text.split("\n")
    blocks: list[tuple[int, int, str]] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        mark = opening.group("mark")
        for j in range(i + 1, len(lines)):
            closing = _FENCE.match(lines[j])
            closes = (
                closing is not None
                and closing.group("mark")[0] == mark[0]
                and len(closing.group("mark")) >= len(mark)
                and not closing.group("info")
            )
            if closes:
                blocks.append((i, j, opening.group("info").lower()))
                i = j
                break
        i += 1
    if not blocks:
        return text
    open_line, close_line, _ = next((b for b in blocks if b[2] in _CODE_TAGS), blocks[0])
    offset = sum(len(line) + 1 for line in lines[:open_line])
    if any(start < offset < end for start, end in _string_spans(text)):
        return text
    return "\n".join(line if open_line < n < close_line else "" for n, line in enumerate(lines))
