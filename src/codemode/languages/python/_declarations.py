"""JSON Schema -> Python stubs for the program's ``external_*`` functions.

Pure (no I/O). Each tool becomes ``async def external_<name>(*, field: T, ...) -> Out`` with a
docstring; object types become ``TypedDict`` classes. Python has no inline object types, so
every object with properties gets a class: ``$ref`` targets keep the names the TypeScript
renderer gives them (unique and stable across tools, identical definitions shared), and inline
objects are named after where they appear (``GetForecastOutputDaysItem``). What the types cannot
say (descriptions, defaults, formats, constraints) goes into docstrings, line for line as the
TypeScript renderer puts it into JSDoc.

The parts that do not depend on the language (``$ref`` resolution, merging ``allOf``, naming
definitions, which constraints to document) are the TypeScript renderer's, imported from it.
"""

from __future__ import annotations

import json
import keyword
import math
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ..typescript._declarations import (
    _ARRAY_KEYWORDS,
    _COMBINATORS,
    _MAX_DEPTH,
    _MISSING,
    _OBJECT_KEYWORDS,
    ToolDeclaration,
    _assign_names,
    _constrains,
    _constraint_tags,
    _Document,
    _documents,
    _has_ref,
    _json_value,
    _local_pointer,
    _merge,
    _mergeable,
    _pascal,
    _resolve,
    _text_lines,
    _type_list,
    _type_set,
)

__all__ = [
    "DeclarationSet",
    "Function",
    "Rendered",
    "ToolDeclaration",
    "render",
    "render_declarations",
    "to_identifier",
]

_INDENT: Final = "    "
_LINE_WIDTH: Final = 100
_IMPORTS: Final = "from typing import Any, Literal, Never, NotRequired, TypedDict, overload"

# Names the stubs themselves use (the `codemode` object's too: see _contract.py), and
# keywords a PascalCase name could become.
_RESERVED: Final = frozenset(
    {"Any", "Literal", "Never", "NotRequired", "TypedDict", "None", "True", "False", "Required",
     "Optional", "Union", "List", "Dict", "Tuple", "Self", "Awaitable", "Coroutine", "Exception",
     "CodemodeSearchResult", "CodemodeSearchResults", "CodemodeDiscovery", "codemode"}
)  # fmt: skip


def to_identifier(name: str) -> str:
    """Map any tool name or key to a valid Python identifier suffix (total, deterministic):
    identifier characters are kept (Unicode letters included), anything else becomes ``_``."""
    ident = "".join(ch if f"_{ch}".isidentifier() else "_" for ch in name)
    return ident or "_"


def _is_name(key: str) -> bool:
    """Whether ``key`` can be a keyword argument or a class-syntax ``TypedDict`` field."""
    return key.isidentifier() and not keyword.iskeyword(key) and not key.startswith("__")


# --------------------------------------------------------------------------------------------
# Type expressions: a union of atoms, so literals merge into one ``Literal[...]``.


@dataclass(frozen=True)
class _Py:
    """A Python type as a union of atoms: ``("lit", repr)`` literals, ``("t", text)`` types."""

    atoms: tuple[tuple[str, str], ...]

    @property
    def text(self) -> str:
        literals = [a[1] for a in self.atoms if a[0] == "lit"]
        parts: list[str] = []
        placed = False
        for kind, text in self.atoms:
            if kind == "lit":
                if not placed:
                    parts.append(f"Literal[{', '.join(literals)}]")
                    placed = True
            elif text != "None":
                parts.append(text)
        if ("t", "None") in self.atoms:
            parts.append("None")
        return " | ".join(parts) if parts else "Never"

    def admits(self, value: Any) -> bool:
        """Whether a JSON scalar or empty container surely has this type (for defaults)."""
        texts = {a[1] for a in self.atoms if a[0] == "t"}
        if "Any" in texts:
            return True
        if value is None:
            return "None" in texts
        if isinstance(value, bool):
            return "bool" in texts or ("lit", repr(value)) in self.atoms
        if isinstance(value, int):
            return bool(texts & {"int", "float"}) or ("lit", repr(value)) in self.atoms
        if isinstance(value, float):
            return "float" in texts
        if isinstance(value, str):
            return "str" in texts or ("lit", _string_literal(value)) in self.atoms
        if value == []:
            return any(t.startswith("list[") for t in texts)
        return False


_ANY: Final = _Py((("t", "Any"),))
_NEVER: Final = _Py(())
_NONE: Final = _Py((("t", "None"),))


def _t(text: str) -> _Py:
    return _Py((("t", text),))


def _union(types: Iterable[_Py]) -> _Py:
    atoms: list[tuple[str, str]] = []
    for t in types:
        for atom in t.atoms:
            if atom == ("t", "Any"):
                return _ANY
            if atom not in atoms:
                atoms.append(atom)
    return _Py(tuple(atoms))


_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _string_literal(value: str) -> str:
    """A double-quoted Python string literal that survives any line-splitting reader."""
    text = json.dumps(value, ensure_ascii=False)
    text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    for ch in "\x85\u2028\u2029\x0b\x0c":
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text


def _python_literal(value: Any) -> str | None:
    """Python source for a JSON value, or None when it is not short and plain."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return _string_literal(value) if len(value) <= 40 else None
    if value == []:
        return "[]"
    return None


def _literal(value: Any) -> _Py:
    if value is None:
        return _NONE
    if isinstance(value, bool | int):
        return _Py((("lit", repr(value)),))
    if isinstance(value, float):
        return _t("float")
    if isinstance(value, str):
        return _Py((("lit", _string_literal(value)),))
    if isinstance(value, list):
        return _t(f"list[{_union(_literal(v) for v in value).text if value else 'Never'}]")
    if isinstance(value, Mapping):
        return _t("dict[str, Any]")
    return _ANY


# --------------------------------------------------------------------------------------------
# Docstrings.


def _doc_text(lines: Sequence[str]) -> list[str]:
    """Lines safe inside a docstring: no control characters, no closing quotes."""
    out = []
    for line in lines:
        line = "".join("\ufffd" if ord(ch) < 32 and ch != "\t" else ch for ch in line)
        line = line.replace("\x85", " ").replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
        out.append(line)
    return out


def _docstring(lines: Sequence[str], pad: str) -> list[str]:
    """A docstring at ``pad``: raw when the text has backslashes (a pattern reads as written),
    single-quoted when it ends with a double quote."""
    if not lines:
        return []
    clean = [
        "".join("\ufffd" if ord(ch) < 32 and ch != "\t" else ch for ch in line).replace("\x85", " ")
        for line in lines
    ]
    text = "\n".join(clean)
    quote = '"""'
    if text.endswith('"') or '"""' in text:
        quote = "'''"
    raw = "\\" in text and quote not in text and not text.endswith(("\\", quote[0]))
    if raw:
        safe = clean
    elif quote not in text and not text.endswith(quote[0]):
        safe = [line.replace("\\", "\\\\") for line in clean]
    else:
        quote = '"""'
        safe = _doc_text(lines)
        if safe[-1].endswith('"'):
            safe[-1] = safe[-1][:-1] + '\\"'
    opening = f"r{quote}" if raw else quote
    if len(safe) == 1 and len(pad) + len(safe[0]) + 7 <= _LINE_WIDTH:
        return [f"{pad}{opening}{safe[0]}{quote}"]
    body = [f"{pad}{line}".rstrip() for line in safe]
    return [f"{pad}{opening}{body[0][len(pad) :]}", *body[1:], f"{pad}{quote}"]


def _tag(tag: str) -> str:
    """``@minimum 1`` -> ``minimum: 1``; ``@deprecated`` -> ``deprecated``."""
    name, _, value = tag[1:].partition(" ")
    return f"{name}: {value}" if value else name


def _doc_parts(schema: Any, *, with_default: bool = True) -> tuple[list[str], list[str]]:
    """Description lines, then constraint, default, example and deprecation lines."""
    if not isinstance(schema, Mapping):
        return [], []
    lines: list[str] = []
    description = schema.get("description")
    if isinstance(description, str):
        lines.extend(_text_lines(description))
    tags = _constraint_tags(schema)
    for key in ("anyOf", "oneOf"):  # `Optional[X]`: X's constraints describe the value
        members = schema.get(key)
        if isinstance(members, list):
            non_null = [
                m for m in members if not (isinstance(m, Mapping) and m.get("type") == "null")
            ]
            if len(non_null) == 1 and isinstance(non_null[0], Mapping):
                branch = non_null[0]
                if not lines and isinstance(branch.get("description"), str):
                    lines.extend(_text_lines(branch["description"]))
                tags.extend(t for t in _constraint_tags(branch) if t not in tags)
    items = schema.get("items")
    scalar_items = (
        isinstance(items, Mapping)
        and "$ref" not in items
        and not (_type_set(items) or set()) & {"object", "array"}
    )
    if scalar_items and isinstance(items, Mapping):
        if isinstance(items.get("description"), str):
            item_lines = _text_lines(items["description"])
            if item_lines:
                lines.append(f"Each item: {item_lines[0]}")
                lines.extend(item_lines[1:])
        tags.extend(_constraint_tags(items, "items."))
    if with_default and "default" in schema:
        tags.append(f"@default {_json_value(schema['default'])}")
    examples = schema.get("examples")
    if isinstance(examples, list):
        tags.extend(f"@example {_json_value(e)}" for e in examples[:3])
    elif "example" in schema:
        tags.append(f"@example {_json_value(schema['example'])}")
    if schema.get("deprecated") is True:
        tags.append("@deprecated")
    return lines, [_tag(t) for t in tags]


def _doc_lines(schema: Any, *, with_default: bool = True) -> list[str]:
    lines, tags = _doc_parts(schema, with_default=with_default)
    return lines + tags


# --------------------------------------------------------------------------------------------
# Rendering.


@dataclass
class _Field:
    key: str
    type: _Py
    required: bool
    doc: list[str]


@dataclass
class _Object:
    """An object schema flattened to its fields and what other keys may hold."""

    fields: list[_Field]
    extra: _Py | None  # type of keys beyond ``fields`` (None: no others are declared)
    extra_doc: list[str] = field(default_factory=list)


class _Renderer:
    """Renders schemas of known documents; classes it needs are collected in ``blocks``."""

    def __init__(self, names: Mapping[tuple[int, str], str], taken: set[str]) -> None:
        self.names = names
        self.taken = taken
        self.blocks: list[str] = []
        self.block_names: list[str] = []  # the type each block defines, in ``blocks`` order
        self.rendered_refs: set[str] = set()
        self.pending_refs: list[tuple[str, _Document, str]] = []

    def unique(self, hint: str) -> str:
        name = hint or "Type"
        if name in self.taken or keyword.iskeyword(name):
            n = 2
            while f"{name}{n}" in self.taken:
                n += 1
            name = f"{name}{n}"
        self.taken.add(name)
        return name

    # -- schemas ---------------------------------------------------------------------------
    def render(self, schema: Any, doc: _Document, hint: str, depth: int = 0) -> _Py:
        if schema is True:
            return _ANY
        if schema is False:
            return _NEVER
        if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
            return _ANY
        t = self._core(schema, doc, hint, depth)
        if schema.get("nullable") is True:  # OpenAPI 3.0
            t = _union([t, _NONE])
        return t

    def _ref(self, doc: _Document, ref: str) -> _Py:
        pointer = _local_pointer(doc, ref)
        name = self.names.get((doc.index, pointer)) if pointer is not None else None
        if name is None:
            return _ANY
        if name not in self.rendered_refs:
            self.rendered_refs.add(name)
            assert pointer is not None
            self.pending_refs.append((name, doc, pointer))
        return _t(name)

    def _core(self, schema: Mapping[str, Any], doc: _Document, hint: str, depth: int) -> _Py:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            if not _constrains(rest):
                return self._ref(doc, ref)
            # No intersection types in Python: a ref to an object merges with the rest into
            # one object; otherwise the ref alone (wider than the intersection, never narrower).
            target = self._target(doc, ref)
            if isinstance(target, Mapping) and _mergeable(target, rest) and "$ref" not in target:
                return self._core(_merge(target, rest), doc, hint, depth + 1)
            return self._ref(doc, ref)

        all_of = schema.get("allOf")
        if isinstance(all_of, list):
            base: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            rest_members: list[Any] = []
            for member in all_of:
                resolved = member
                if isinstance(member, Mapping) and isinstance(member.get("$ref"), str):
                    target = self._target(doc, member["$ref"])
                    siblings = {k: v for k, v in member.items() if k != "$ref"}
                    if isinstance(target, Mapping) and "$ref" not in target:
                        resolved = _merge(target, siblings) if siblings else target
                if _mergeable(base, resolved):
                    base = _merge(base, resolved)
                else:
                    rest_members.append(member)
            if rest_members and not _constrains(base):
                return self.render(rest_members[0], doc, hint, depth + 1)
            return self._core(base, doc, hint, depth + 1)

        for key in ("anyOf", "oneOf"):
            members = schema.get(key)
            if not isinstance(members, list):
                continue
            base = {k: v for k, v in schema.items() if k != key}
            branches = (
                [_merge(base, m) for m in members]
                if _constrains(base) and all(_mergeable(base, m) for m in members)
                else members
            )
            objects = sum(1 for m in branches if _is_object(m))
            return _union(
                self.render(m, doc, f"{hint}{i + 1}" if objects > 1 else hint, depth + 1)
                for i, m in enumerate(branches)
            )

        return self._plain(schema, doc, hint, depth)

    def _target(self, doc: _Document, ref: str) -> Any:
        pointer = _local_pointer(doc, ref)
        if pointer is None:
            return None
        ok, target = _resolve(doc.root, pointer)
        return target if ok else None

    def _value(self, value: Any, hint: str) -> _Py:
        """The type of exactly this JSON value: objects become ``TypedDict``s of literals."""
        if isinstance(value, Mapping) and value:
            fields = [
                _Field(str(k), self._value(v, hint + (_pascal(str(k)) or "Field")), True, [])
                for k, v in value.items()
            ]
            name = self.unique(hint)
            self.add_block(name, self.typed_dict(name, _Object(fields, None), []))
            return _t(name)
        if isinstance(value, list):
            items = _union(self._value(v, f"{hint}Item") for v in value)
            return _t(f"list[{items.text}]")
        return _literal(value)

    def _plain(self, schema: Mapping[str, Any], doc: _Document, hint: str, depth: int) -> _Py:
        if "const" in schema:
            return self._value(schema["const"], hint)
        enum = schema.get("enum")
        if isinstance(enum, list):
            objects = sum(1 for v in enum if isinstance(v, Mapping) and v)
            return _union(
                self._value(v, f"{hint}{i + 1}" if objects > 1 else hint)
                for i, v in enumerate(enum)
            )
        types = _type_list(schema)
        if types is None:
            types = []
            if any(k in schema for k in _OBJECT_KEYWORDS):
                types.append("object")
            if any(k in schema for k in _ARRAY_KEYWORDS):
                types.append("array")
            if not types:
                return _ANY
        return _union(self._of_type(t, schema, doc, hint, depth) for t in types)

    def _of_type(
        self, name: str, schema: Mapping[str, Any], doc: _Document, hint: str, depth: int
    ) -> _Py:
        simple = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}
        if name in simple:
            return _t(simple[name])
        if name == "null":
            return _NONE
        if name == "array":
            return self._array(schema, doc, hint, depth)
        if name == "object":
            return self._object_type(schema, doc, hint, depth)
        return _ANY

    def _array(self, schema: Mapping[str, Any], doc: _Document, hint: str, depth: int) -> _Py:
        items = schema.get("items", _MISSING)
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            rest = items
        elif isinstance(items, list):  # draft 4-7 tuple form
            prefix, rest = items, schema.get("additionalItems", _MISSING)
        else:
            if schema.get("maxItems") == 0:
                return _t("list[Never]")
            item = _ANY if items is _MISSING else self.render(items, doc, f"{hint}Item", depth + 1)
            return _t(f"list[{item.text}]")
        # A tuple: every length from minItems to the fixed elements, then any rest.
        min_items = schema.get("minItems", 0)
        max_items = schema.get("maxItems")
        min_items = min_items if isinstance(min_items, int) else 0
        max_items = max_items if isinstance(max_items, int) else None
        elements = [
            self.render(sub, doc, f"{hint}Item{i + 1}", depth + 1).text
            for i, sub in enumerate(prefix)
            if max_items is None or i < max_items
        ]
        closed = rest is False or (max_items is not None and max_items <= len(prefix))
        rest_text = None
        if not closed:
            rest_type = (
                _ANY if rest is _MISSING else self.render(rest, doc, f"{hint}Item", depth + 1)
            )
            if rest_type.atoms:
                rest_text = f"*tuple[{rest_type.text}, ...]"
        variants = []
        for n in range(min(min_items, len(elements)), len(elements) + 1):
            parts = elements[:n] + ([rest_text] if rest_text and n == len(elements) else [])
            variants.append(_t(f"tuple[{', '.join(parts)}]" if parts else "tuple[()]"))
        return _union(variants)

    # -- objects ---------------------------------------------------------------------------
    def flatten(self, schema: Mapping[str, Any], doc: _Document, hint: str, depth: int) -> _Object:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required_raw = schema.get("required")
        required = (
            [r for r in required_raw if isinstance(r, str)]
            if isinstance(required_raw, list)
            else []
        )
        fields: list[_Field] = []
        for key, sub in properties.items():
            key = str(key)
            present = key in required or (
                doc.defaults_present and isinstance(sub, Mapping) and "default" in sub
            )
            t = self.render(sub, doc, hint + (_pascal(key) or "Field"), depth + 1)
            fields.append(_Field(key, t, present, _doc_lines(sub)))
        for key in dict.fromkeys(required):
            if key not in properties:
                fields.append(_Field(key, _ANY, True, []))

        extra_types: list[_Py] = []
        extra_doc: list[str] = []
        patterns = schema.get("patternProperties")
        patterns = patterns if isinstance(patterns, Mapping) else {}
        for pattern, sub in patterns.items():
            value = self.render(sub, doc, f"{hint}Value", depth + 1)
            extra_types.append(value)
            extra_doc.append(f"Keys matching /{pattern}/: {value.text}.")
            extra_doc.extend(_doc_lines(sub))
        extra = schema.get("additionalProperties", _MISSING)
        if extra is True or (extra is _MISSING and not properties and not patterns):
            extra_types.append(_ANY)
        elif isinstance(extra, Mapping):
            value = self.render(extra, doc, f"{hint}Value", depth + 1)
            extra_types.append(value)
            lines = _doc_lines(extra)
            if patterns:
                lines = [f"Other keys: {value.text}.", *lines]
            extra_doc.extend(lines)
        return _Object(fields, _union(extra_types) if extra_types else None, extra_doc)

    def _object_type(self, schema: Mapping[str, Any], doc: _Document, hint: str, depth: int) -> _Py:
        obj = self.flatten(schema, doc, hint, depth)
        if not obj.fields:
            value = obj.extra if obj.extra is not None else _NEVER
            return _t(f"dict[str, {value.text}]")
        name = self.unique(hint)
        self.add_block(name, self.typed_dict(name, obj, _doc_lines(schema, with_default=False)))
        return _t(name)

    def typed_dict(self, name: str, obj: _Object, doc: list[str]) -> str:
        """A ``TypedDict`` class (or the call form when a key is not a Python name)."""
        extra = "" if obj.extra is None else f", extra_items={obj.extra.text}"
        if all(_is_name(f.key) for f in obj.fields):
            lines = [f"class {name}(TypedDict{extra}):"]
            body: list[str] = []
            if doc or obj.extra_doc:
                body.extend(_docstring(doc + obj.extra_doc, _INDENT))
                body.append("")
            for f in obj.fields:
                annotation = f.type.text if f.required else f"NotRequired[{f.type.text}]"
                body.append(f"{_INDENT}{f.key}: {annotation}")
                body.extend(_docstring(f.doc, _INDENT))
            return "\n".join(lines + body)
        lines = [*[f"# {line}" for line in _doc_text(doc + obj.extra_doc)]]
        lines.append(f'{name} = TypedDict(\n{_INDENT}"{name}",\n{_INDENT}{{')
        for f in obj.fields:
            lines.extend(f"{_INDENT * 2}# {line}" for line in _doc_text(f.doc))
            annotation = f.type.text if f.required else f"NotRequired[{f.type.text}]"
            lines.append(f"{_INDENT * 2}{_string_literal(f.key)}: {annotation},")
        lines.append(f"{_INDENT}}},")
        if extra:
            lines.append(f"{_INDENT}{extra[2:]},")
        lines.append(")")
        return "\n".join(lines)

    def drain_refs(self) -> None:
        """Render every ``$ref`` target met so far (and those they refer to)."""
        while self.pending_refs:
            name, doc, pointer = self.pending_refs.pop(0)
            _, target = _resolve(doc.root, pointer)
            self.add_block(name, self.named(name, target, doc))

    def add_block(self, name: str, text: str) -> None:
        self.blocks.append(text)
        self.block_names.append(name)

    def named(self, name: str, schema: Any, doc: _Document) -> str:
        """A ``$ref`` target: a ``TypedDict`` for an object with fields, else a type alias."""
        if isinstance(schema, Mapping) and _is_object(schema) and not _combines(schema):
            obj = self.flatten(schema, doc, name, 0)
            if obj.fields:
                return self.typed_dict(name, obj, _doc_lines(schema, with_default=False))
        t = self.render(schema, doc, name, 0)
        lines = [f"# {line}" for line in _doc_text(_doc_lines(schema, with_default=False))]
        return "\n".join([*lines, f"type {name} = {t.text}"])


def _is_object(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    types = _type_list(schema)
    if types is not None:
        return "object" in types
    return any(k in schema for k in _OBJECT_KEYWORDS)


def _combines(schema: Mapping[str, Any]) -> bool:
    return any(k in schema for k in (*_COMBINATORS, "$ref", "enum", "const", "nullable")) or (
        len(_type_list(schema) or []) > 1
    )


# --------------------------------------------------------------------------------------------
# Functions.

CallStyle = Literal["keywords", "input", "none"]


@dataclass(frozen=True)
class Function:
    """How a program calls one tool: with keyword arguments, one positional ``input`` (a dict
    or any JSON value, when the input is not an object of Python names), or nothing."""

    name: str
    style: CallStyle
    returns: str  # the return annotation (without the coroutine)


@dataclass(frozen=True)
class Rendered:
    text: str
    functions: Mapping[str, Function]


def _root_object(
    renderer: _Renderer, doc: _Document
) -> list[tuple[_Object, Mapping[str, Any]]] | None:
    """The input as keyword-argument signatures (one per ``anyOf`` branch), or None when it
    is not an object whose keys are all Python names."""
    schema = doc.root
    seen: set[str] = set()
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
        rest = {k: v for k, v in schema.items() if k not in ("$ref", "description", "title")}
        if rest or schema["$ref"] in seen:
            return None
        seen.add(schema["$ref"])
        schema = renderer._target(doc, schema["$ref"])
    if schema is True or (isinstance(schema, Mapping) and not schema):
        schema = {"type": "object"}
    if not isinstance(schema, Mapping) or not _is_object(schema) or "nullable" in schema:
        return None
    if len(_type_list(schema) or ["object"]) != 1 or "enum" in schema or "const" in schema:
        return None
    if isinstance(schema.get("allOf"), list):
        flattened: Any = {k: v for k, v in schema.items() if k != "allOf"}
        for member in schema["allOf"]:
            if isinstance(member, Mapping) and isinstance(member.get("$ref"), str):
                member = renderer._target(doc, member["$ref"])
            if not _mergeable(flattened, member) or (
                isinstance(member, Mapping) and "$ref" in member
            ):
                return None
            flattened = _merge(flattened, member)
        schema = flattened
    branches: list[Mapping[str, Any]] = [schema]
    for key in ("anyOf", "oneOf"):
        members = schema.get(key)
        if isinstance(members, list):
            base = {k: v for k, v in schema.items() if k != key}
            if not all(_mergeable(base, m) and not _combines_any(m) for m in members):
                return None
            branches = [_merge(base, m) for m in members]
    for branch in branches:
        if any(k in branch for k in ("$ref", "allOf", "anyOf", "oneOf")):
            return None
        properties = branch.get("properties")
        required = branch.get("required")
        if not isinstance(properties, Mapping | None) or not isinstance(required, list | None):
            return None
        keys = [*(properties or {}), *(required or [])]
        if not all(isinstance(k, str) and _is_name(k) for k in keys):
            return None
    # Checked before any field is rendered: rendering registers the classes fields need.
    return [(renderer.flatten(branch, doc, doc.tool, 0), branch) for branch in branches]


def _combines_any(schema: Any) -> bool:
    return isinstance(schema, Mapping) and any(k in schema for k in (*_COMBINATORS, "$ref"))


def _arg_doc(name: str, lines: list[str], tags: list[str]) -> list[str]:
    """An ``Args:`` entry: the description after the name, constraints below it."""
    if not lines and not tags:
        return []
    head = f"{name}: {lines[0]}" if lines else f"{name}:"
    return [head, *(f"{_INDENT}{line}" for line in [*lines[1:], *tags])]


def _parameters(obj: _Object, schema: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``name: T[ = default]`` per field (required first), and the docstring's Args lines."""
    props = schema.get("properties") or {}
    params: list[str] = []
    optional: list[str] = []
    docs: list[str] = []
    optional_docs: list[str] = []
    for f in obj.fields:
        sub = props.get(f.key)
        lines, tags = _doc_parts(sub)
        if f.required:
            params.append(f"{f.key}: {f.type.text}")
            docs.extend(_arg_doc(f.key, lines, tags))
        else:
            default = sub.get("default", _MISSING) if isinstance(sub, Mapping) else _MISSING
            literal = None if default is _MISSING else _python_literal(default)
            if literal is not None and f.type.admits(default):
                optional.append(f"{f.key}: {f.type.text} = {literal}")
                lines, tags = _doc_parts(sub, with_default=False)
            else:
                optional.append(f"{f.key}: {f.type.text} = ...")
            optional_docs.extend(_arg_doc(f.key, lines, tags))
    docs.extend(optional_docs)
    names = {f.key for f in obj.fields}
    if obj.extra is not None and obj.extra.atoms:
        candidates = ("extra", "other", "more_fields") if names else ("input",)
        rest = next(n for n in candidates if n not in names)
        optional.append(f"**{rest}: {obj.extra.text}")
        docs.extend(_arg_doc(f"**{rest}", obj.extra_doc, []))
    return params + optional, docs


def _signature(name: str, params: list[str], returns: str, *, positional: bool = False) -> str:
    head = f"async def {name}("
    tail = f") -> {returns}:"
    if not params:
        return f"{head}{tail}"
    items = params if positional or params[0].startswith("**") else ["*", *params]
    if positional:
        items = [*params, "/"]
    one_line = f"{head}{', '.join(items)}{tail}"
    if len(one_line) <= _LINE_WIDTH and "\n" not in one_line:
        return one_line
    return "\n".join([head, *[f"{_INDENT}{item}," for item in items], tail])


def _function_doc(tool: ToolDeclaration, about_input: list[str], args: list[str]) -> list[str]:
    """The tool's description, what its input is (when it says more), Args and Returns."""
    lines = _text_lines(tool.description or "")
    if about_input:
        lines += ["", *about_input]
    if args:
        lines += ["", "Args:", *[f"{_INDENT}{line}" for line in args]]
    out = tool.output_schema
    root_out = out.get("description") if isinstance(out, Mapping) else None
    if isinstance(root_out, str) and root_out.strip():
        lines += ["", "Returns:", *[f"{_INDENT}{line}" for line in _text_lines(root_out)]]
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def render(tools: Sequence[ToolDeclaration]) -> Rendered:
    """The stubs for ``tools``: imports, the types they use (unique, stable names across tools),
    then one ``async def external_<name>`` per tool."""
    docs, pairs = _documents(tools, str.isidentifier)
    renderer = _Renderer(*_type_names(docs))
    functions: list[str] = []
    info: dict[str, Function] = {}
    for tool, (inp, out) in zip(tools, pairs, strict=True):
        text, info[tool.name] = _render_function(renderer, tool, inp, out)
        functions.append(text)
    blocks = [_IMPORTS, *renderer.blocks, *functions]
    return Rendered("\n\n\n".join(blocks) + "\n", info)


def _type_names(docs: Sequence[_Document]) -> tuple[dict[tuple[int, str], str], set[str]]:
    """The names of the ``$ref`` targets of ``docs`` (as the TypeScript renderer names them,
    except names the stubs use or Python reserves), and every name so taken."""
    names = dict(_assign_names([d for d in docs if _has_ref(d.root)]))
    taken = set(_RESERVED) | set(names.values())
    for key, name in list(names.items()):  # names the TypeScript renderer allows but we use
        if name in _RESERVED or keyword.iskeyword(name):
            renamed = name + "Type"
            while renamed in taken:
                renamed += "_"
            taken.add(renamed)
            for other, value in names.items():
                if value == name:
                    names[other] = renamed
            names[key] = renamed
    return names, taken


def _render_function(
    renderer: _Renderer, tool: ToolDeclaration, inp: _Document, out: _Document | None
) -> tuple[str, Function]:
    """One tool's ``async def`` (its overloads, when its input is a union of objects); the
    types it needs are added to ``renderer.blocks``."""
    fn = f"external_{tool.name}"
    root = inp.root if isinstance(inp.root, Mapping) else {}
    about_input: list[str] = []
    root_description = root.get("description")
    if (
        isinstance(root_description, str)
        and root_description.strip() != (tool.description or "").strip()
    ):
        about_input = _text_lines(root_description)
    signatures = _root_object(renderer, inp)
    in_type = None if signatures is not None else _root_type(renderer, inp)
    returns = _ANY.text if out is None else _root_type(renderer, out)
    style: CallStyle
    if signatures is not None and all(not o.fields and o.extra is None for o, _ in signatures):
        style = "none"
        doc = _function_doc(tool, about_input, [])
        text = _function(_signature(fn, [], returns), doc)
    elif signatures is not None:
        style = "keywords"
        blocks = []
        for i, (obj, schema) in enumerate(signatures):
            params, args = _parameters(obj, schema)
            doc = _function_doc(tool, about_input, args) if i == 0 else []
            one = _function(_signature(fn, params, returns), doc)
            blocks.append(f"@overload\n{one}" if len(signatures) > 1 else one)
        text = "\n\n".join(blocks)
    else:
        style = "input"
        args = _arg_doc("input", about_input, [])
        doc = _function_doc(tool, [], args)
        text = _function(_signature(fn, [f"input: {in_type}"], returns, positional=True), doc)
    renderer.drain_refs()
    return text, Function(fn, style, returns)


_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class DeclarationSet:
    """Every tool's stubs with one naming context for the whole catalog: any subset renders
    with the types it uses, and a type name keeps one meaning across every subset (the types a
    tool needs are named when the tool is first rendered, and never renamed)."""

    def __init__(self, tools: Sequence[ToolDeclaration]) -> None:
        docs, pairs = _documents(tools, str.isidentifier)
        self._tools = {t.name: (t, pair) for t, pair in zip(tools, pairs, strict=True)}
        self._renderer = _Renderer(*_type_names(docs))
        self._functions: dict[str, tuple[str, frozenset[str]]] = {}
        self._block_index: dict[str, int] = {}  # type name -> its block in the renderer's
        self._uses: list[frozenset[str]] = []  # per block of the renderer: the types it names
        self._lock = threading.Lock()

    def _names_in(self, text: str) -> frozenset[str]:
        return frozenset(w for w in _WORD.findall(text) if w in self._block_index)

    def _function(self, name: str) -> tuple[str, frozenset[str]]:
        if name not in self._functions:
            tool, (inp, out) = self._tools[name]
            renderer = self._renderer
            first_new = len(renderer.blocks)
            text, _ = _render_function(renderer, tool, inp, out)
            for i in range(first_new, len(renderer.blocks)):
                self._block_index[renderer.block_names[i]] = i
            # Read once every new block is indexed: a type may use one drained after it.
            self._uses.extend(self._names_in(block) for block in renderer.blocks[first_new:])
            self._functions[name] = (text, self._names_in(text))
        return self._functions[name]

    def render(self, names: Iterable[str] | None = None) -> str:
        """The stubs of the tools called ``names`` (all, in order, when None): the imports, the
        types they use, then the functions. Raises ``KeyError`` for a name that is not a tool."""
        with self._lock:
            chosen = list(self._tools) if names is None else list(dict.fromkeys(names))
            for name in chosen:
                if name not in self._tools:
                    raise KeyError(name)
            functions = [self._function(name) for name in chosen]
            needed: set[int] = set()
            stack = [self._block_index[t] for _, uses in functions for t in uses]
            while stack:
                i = stack.pop()
                if i not in needed:
                    needed.add(i)
                    stack.extend(self._block_index[t] for t in self._uses[i])
            blocks = [self._renderer.blocks[i] for i in sorted(needed)]
            return "\n\n\n".join([_IMPORTS, *blocks, *(text for text, _ in functions)]) + "\n"


def _root_type(renderer: _Renderer, doc: _Document) -> str:
    name = renderer.names.get((doc.index, ""))
    if name:
        return renderer._ref(doc, "#").text
    return renderer.render(doc.root, doc, doc.tool + doc.side).text


def _function(signature: str, doc: list[str]) -> str:
    lines = _docstring(doc, _INDENT)
    if not lines:
        return f"{signature} ..."
    return "\n".join([signature, *lines])


def render_declarations(tools: Sequence[ToolDeclaration]) -> str:
    """The stubs for ``tools`` (see `render`)."""
    return render(tools).text
