"""Turn the text a model submitted into the module the sandbox imports.

The model is asked for a function body (top-level ``await`` and ``return``), but models also
write whole programs in other shapes: prose around a fenced block, a last expression and no
``return`` (as in a notebook), a function (``async () => ...``, ``export default async function
main() {...}``, a lone ``async function main() {...}``). Each shape is rewritten so that the
program gives the value a reader would expect, and every rewrite keeps each line of the model's
code on the line it was on: a line in a stack frame minus the prelude is the line in the
submitted text, prose included.

The shape is read from a real TypeScript parse (tree-sitter), not from patterns, so strings,
comments, templates and nested functions never confuse it. A program that does not parse is
left as written for Deno to report, with its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import tree_sitter
import tree_sitter_typescript

from .._base import Program

__all__ = ["PRELUDE", "PreparedBody", "extract_code", "prepare_body", "prepare_program"]

PRELUDE = "export default async function __codemode_main__() {\n"
SUFFIX = "\n}\n"
_DEFAULT = "__codemode_default__"  # holds what an `export default` exported
_NOTHING_RUNS = (
    'throw Object.assign(new Error("The program only declares functions and never calls one: '
    'call the one that does the work and return its value, e.g. `return await main()`."), '
    '{ name: "ResultError" });'
)

# A fence line: ``` or ~~~ (three or more), optionally followed by an info string.
_FENCE = re.compile(r"^\s*(?P<mark>`{3,}|~{3,})\s*(?P<info>[\w+#.-]*)[^`]*$")
_CODE_TAGS = ("ts", "typescript", "js", "javascript", "tsx", "jsx", "mts", "mjs")

# Nodes that start a new function scope: a `return` inside one is not the program's.
_FUNCTIONS = frozenset(
    {
        "function_declaration",
        "function_expression",
        "function",
        "generator_function_declaration",
        "generator_function",
        "arrow_function",
        "method_definition",
        "class_body",
    }
)
_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "function"})
_FUNCTION_DECLARATIONS = frozenset({"function_declaration", "generator_function_declaration"})
_HOISTED = frozenset(
    {
        "function_declaration",
        "generator_function_declaration",
        "class_declaration",
        "abstract_class_declaration",
        "interface_declaration",
        "type_alias_declaration",
        "enum_declaration",
        "ambient_declaration",
    }
)


@cache
def _parser() -> tree_sitter.Parser:
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_typescript.language_typescript()))


def _parse(text: str) -> tree_sitter.Tree:
    return _parser().parse(text.encode("utf-8"))


@dataclass(frozen=True)
class PreparedBody:
    """The function body to run, line for line with the submitted text, and the last line of
    the model's code in it (what a syntax error at the end of input reports)."""

    text: str
    last_line: int


@dataclass(frozen=True)
class _Block:
    open: int  # line index of the opening fence
    close: int  # line index of the closing fence
    tag: str


def _fenced_blocks(lines: list[str]) -> list[_Block]:
    blocks: list[_Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        mark = opening.group("mark")
        for j in range(i + 1, len(lines)):
            closing = _FENCE.match(lines[j])
            if (
                closing
                and closing.group("mark")[0] == mark[0]
                and len(closing.group("mark")) >= len(mark)
                and not closing.group("info")
            ):
                blocks.append(_Block(i, j, opening.group("info").lower()))
                i = j
                break
        i += 1
    return blocks


def _inside_template(root: tree_sitter.Node, row: int, column: int) -> bool:
    """Whether the point is inside a template literal that began on an earlier line."""
    node: tree_sitter.Node | None = root.descendant_for_point_range((row, column), (row, column))
    while node is not None:
        if node.type == "template_string" and node.start_point.row < row:
            return True
        node = node.parent
    return False


def extract_code(text: str) -> str:
    """The code in ``text`` with everything else blanked, every line kept where it was.

    With fenced blocks present, the code is the first block tagged ts/typescript/js/javascript,
    else the first block; the fences and the prose around them become empty lines. A fence
    inside a template literal of a program (one building Markdown) is the program's text.
    """
    lines = text.split("\n")
    blocks = _fenced_blocks(lines)
    if not blocks:
        return text
    chosen = next((b for b in blocks if b.tag in _CODE_TAGS), blocks[0])
    opening = lines[chosen.open]
    if _inside_template(_parse(text).root_node, chosen.open, len(opening) - len(opening.lstrip())):
        return text
    return "\n".join(line if chosen.open < i < chosen.close else "" for i, line in enumerate(lines))


def _returns_at_top_level(node: tree_sitter.Node) -> bool:
    """Whether the program body has a ``return`` of its own (not one inside a function)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "return_statement":
            return True
        stack.extend(c for c in current.named_children if c.type not in _FUNCTIONS)
    return False


def _unwrap(node: tree_sitter.Node) -> tree_sitter.Node:
    while node.type == "parenthesized_expression" and node.named_child_count == 1:
        child = node.named_children[0]
        assert child is not None
        node = child
    return node


def _identifiers(node: tree_sitter.Node) -> list[str]:
    found: list[str] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type == "identifier" and current.text is not None:
            found.append(current.text.decode())
        stack.extend(current.children)
    return found


class _Edits:
    """Byte-range replacements that never add or remove a newline."""

    def __init__(self, source: bytes) -> None:
        self.source = source
        self._edits: list[tuple[int, int, bytes]] = []

    def replace(self, start: int, end: int, text: str) -> None:
        assert b"\n" not in self.source[start:end] and "\n" not in text
        self._edits.append((start, end, text.encode()))

    def insert(self, at: int, text: str) -> None:
        self.replace(at, at, text)

    def apply(self) -> str:
        out = self.source
        for start, end, text in sorted(self._edits, reverse=True):
            out = out[:start] + text + out[end:]
        return out.decode("utf-8")


def _rewrite(code: str) -> str:
    """Give the program the value a reader would expect, on the same lines."""
    tree = _parse(code)
    root = tree.root_node
    if root.has_error:
        return code  # Deno reports the syntax error, with its line
    statements = [s for s in root.named_children if s.type != "comment"]
    if not statements:
        return code
    edits = _Edits(code.encode("utf-8"))
    explicit_return = _returns_at_top_level(root)
    default_export = None
    for statement in statements:
        if statement.type != "export_statement":
            continue
        # `export` has no meaning in a function body: drop the keyword, keep the declaration.
        exported = statement.child_by_field_name("value")
        declaration = statement.child_by_field_name("declaration")
        is_default = any(c.type == "default" for c in statement.children)
        if is_default:
            target = exported or declaration
            if target is None:
                continue
            # `export default X` -> `const __codemode_default__ = X`: a function declaration
            # becomes a function expression, so it is called where the program ends.
            edits.replace(statement.start_byte, target.start_byte, f"const {_DEFAULT} = ")
            default_export = target
        elif declaration is not None:
            edits.replace(statement.start_byte, declaration.start_byte, "")
    last = statements[-1]
    # Hoisted declarations after the last expression do not change the program's value
    # (`await main()` above `async function main() {...}`), as in JavaScript's own eval.
    valued = [s for s in statements if s.type not in _HOISTED]
    if explicit_return:
        return edits.apply()
    if default_export is not None:
        called = f'typeof {_DEFAULT} === "function" ? await {_DEFAULT}() : await {_DEFAULT}'
        edits.insert(last.end_byte, f"; return {called};")
        return edits.apply()
    if valued and valued[-1].type == "expression_statement" and valued[-1] != last:
        edits.insert(valued[-1].start_byte, "return ")
        return edits.apply()
    if last.type == "expression_statement":
        expression = last.named_children[0] if last.named_child_count else None
        if expression is not None and _unwrap(expression).type in _FUNCTION_VALUES:
            # The whole program is a function: what calling it gives.
            end = expression.end_byte
            edits.replace(last.start_byte, expression.start_byte, "return await (")
            edits.insert(end, ")()")
        else:
            edits.insert(last.start_byte, "return ")  # a notebook's last expression
        return edits.apply()
    if any(s.type == "expression_statement" for s in statements):
        return edits.apply()
    # Only declarations. One function that takes nothing and that nothing else uses
    # (`async function main() {...}`, helpers beside it): that function is the program.
    functions = [s for s in statements if s.type in _FUNCTION_DECLARATIONS]
    entries = [f for f in functions if _used_nowhere_else(f, statements)]
    if len(entries) == 1 and _takes_nothing(entries[0]):
        edits.insert(last.end_byte, f"; return await {_name(entries[0])}();")
    elif functions and all(s.type in _HOISTED for s in statements):
        # Nothing would run, and the model would read an empty success as its program having
        # worked: say what to change instead.
        edits.insert(last.end_byte, f"; {_NOTHING_RUNS}")
    return edits.apply()


def _name(function: tree_sitter.Node) -> str:
    node = function.child_by_field_name("name")
    return node.text.decode() if node is not None and node.text else ""


def _takes_nothing(function: tree_sitter.Node) -> bool:
    parameters = function.child_by_field_name("parameters")
    return parameters is None or parameters.named_child_count == 0


def _used_nowhere_else(function: tree_sitter.Node, statements: list[tree_sitter.Node]) -> bool:
    name = _name(function)
    return bool(name) and all(name not in _identifiers(s) for s in statements if s != function)


def prepare_body(code: str) -> PreparedBody:
    """The function body for ``code``: its code extracted from any prose and rewritten to give
    its value, line for line with ``code``."""
    text = _rewrite(extract_code(code))
    lines = text.split("\n")
    last = next((i + 1 for i in range(len(lines) - 1, -1, -1) if lines[i].strip()), 1)
    return PreparedBody(text, last)


def prepare_program(code: str) -> Program:
    """The module source for ``code``: the prepared body wrapped in an async function."""
    body = prepare_body(code)
    return Program(
        source=PRELUDE + body.text + SUFFIX,
        line_offset=PRELUDE.count("\n"),
        last_line=body.last_line,
    )
