"""JSON Schema -> TypeScript declarations for the program's ``external_*`` functions.

Pure (no I/O). The model writes its program against this text, so every construct real tools
use is rendered to a type that says what the schema says; what TypeScript cannot express
(descriptions, defaults, formats, numeric and length constraints) goes into JSDoc.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote

__all__ = [
    "DeclarationSet",
    "ToolDeclaration",
    "render_declaration_set",
    "render_declarations",
    "schema_to_typescript",
    "to_identifier",
]


@dataclass(frozen=True)
class ToolDeclaration:
    """One tool as the model sees it: ``external_<name>(input: In): Promise<Out>``."""

    name: str
    tool_id: str
    description: str
    input_schema: Mapping[str, Any]
    output_schema: Mapping[str, Any] | None


def to_identifier(name: str) -> str:
    """Map any tool name or key to a readable, valid JS identifier suffix (total, deterministic).

    Identifier characters are kept (Unicode letters included), anything else becomes ``_``;
    a leading digit gets a ``_`` prefix; the empty string becomes ``_``.
    """
    chars = [ch if ch == "$" or f"_{ch}".isidentifier() else "_" for ch in name]
    ident = "".join(chars)
    if not ident:
        return "_"
    if not (ident[0] == "$" or ident[0].isidentifier()):
        ident = f"_{ident}"
    return ident


def schema_to_typescript(schema: Mapping[str, Any] | bool, *, indent: int = 0) -> str:
    """Render one schema as a TypeScript type expression placed at ``indent`` levels.

    ``$ref`` targets are referred to by the alias names `render_declarations` would give them
    for a single schema; their ``type`` aliases are not part of the returned expression.
    """
    docs = [_Document(0, schema, "", "Root")]
    names = _assign_names(docs)
    renderer = _Renderer(lambda doc, pointer: names.get((doc.index, pointer)))
    return renderer.render(schema, docs[0], indent).text


def render_declarations(tools: Sequence[ToolDeclaration]) -> str:
    """Render the named types (unique, stable names across tools) then one function per tool."""
    return render_declaration_set(tools).render()


class DeclarationSet:
    """Every tool's declaration and every named type, with type names assigned once across all
    the tools: any subset renders with the same names, so the declarations of tools described
    separately never give one name two meanings. Blocks are rendered when first asked for."""

    def __init__(
        self,
        tools: Sequence[ToolDeclaration],
        docs: Sequence[_Document],
        pairs: Sequence[tuple[_Document, _Document | None]],
        names: Mapping[tuple[int, str], str],
        targets: Mapping[tuple[int, str], str],
    ) -> None:
        self._tools = {t.name: (t, pair) for t, pair in zip(tools, pairs, strict=True)}
        self._docs = docs
        self._names = names
        self._target_of: dict[str, tuple[int, str]] = {}
        for key, name in targets.items():  # identical definitions shared by several tools
            self._target_of.setdefault(name, key)
        self._used: set[str] = set()  # the type names the block being rendered refers to
        self._renderer = _Renderer(self._lookup)
        self._types: dict[str, tuple[str, frozenset[str]]] = {}
        self._functions: dict[str, tuple[str, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def _lookup(self, doc: _Document, pointer: str) -> str | None:
        name = self._names.get((doc.index, pointer))
        if name:
            self._used.add(name)
        return name

    def _type(self, name: str) -> tuple[str, frozenset[str]]:
        if name not in self._types:
            doc_index, pointer = self._target_of[name]
            doc = self._docs[doc_index]
            _, target = _resolve(doc.root, pointer)
            self._used.clear()
            alias = self._renderer.render(target, doc, 0)
            lines = _doc_comment(_doc_lines(target), "")
            lines.append(f"type {name} = {alias.text};")
            self._types[name] = ("\n".join(lines), frozenset(self._used))
        return self._types[name]

    def _function(self, tool_name: str) -> tuple[str, frozenset[str]]:
        if tool_name not in self._functions:
            tool, (inp, out) = self._tools[tool_name]
            self._used.clear()
            in_type = _root_type(self._renderer, self._names, inp, self._used)
            out_type = (
                _root_type(self._renderer, self._names, out, self._used)
                if out is not None
                else "unknown"
            )
            lines = _doc_comment(_function_doc(tool), "")
            lines.append(
                f"declare function external_{tool.name}(input: {in_type}): Promise<{out_type}>;"
            )
            self._functions[tool_name] = ("\n".join(lines), frozenset(self._used))
        return self._functions[tool_name]

    def render(self, names: Iterable[str] | None = None) -> str:
        """The declarations of the tools called ``names`` (all, in order, when None), preceded
        by the named types they use. Raises ``KeyError`` for a name that is not a tool."""
        with self._lock:
            if names is None:
                chosen = list(self._tools)
                needed = set(self._target_of)
            else:
                chosen = list(dict.fromkeys(names))
                for name in chosen:
                    if name not in self._tools:
                        raise KeyError(name)
                needed = set()
                stack = [t for name in chosen for t in self._function(name)[1]]
                while stack:
                    type_name = stack.pop()
                    if type_name not in needed:
                        needed.add(type_name)
                        stack.extend(self._type(type_name)[1])
            blocks = [self._type(name)[0] for name in self._target_of if name in needed]
            blocks.extend(self._function(name)[0] for name in chosen)
            return "\n\n".join(blocks) + "\n" if blocks else ""


def render_declaration_set(tools: Sequence[ToolDeclaration]) -> DeclarationSet:
    """Assign the type names of every tool at once (see ``DeclarationSet``); only schemas that
    use ``$ref`` have named types, so only those are walked now."""
    docs, pairs = _documents(tools, _is_identifier)
    targets: dict[tuple[int, str], str] = {}
    names = _assign_names([d for d in docs if _has_ref(d.root)], targets)
    return DeclarationSet(tools, docs, pairs, names, targets)


def _documents(
    tools: Sequence[ToolDeclaration], is_identifier: Callable[[str], bool]
) -> tuple[list[_Document], list[tuple[_Document, _Document | None]]]:
    """Every tool's input and output schema as a document (the unit ``$ref``s resolve in), in
    order, after refusing names that are not identifiers or that two tools share. Shared by
    the renderers of every language (``is_identifier`` is the language's rule)."""
    seen: dict[str, str] = {}
    for tool in tools:
        if not is_identifier(f"external_{tool.name}"):
            raise ValueError(
                f"tool {tool.tool_id!r}: name {tool.name!r} is not a valid identifier suffix; "
                "map it with to_identifier() first"
            )
        if tool.name in seen:
            raise ValueError(
                f"tools {seen[tool.name]!r} and {tool.tool_id!r} both map to "
                f"external_{tool.name}; rename one of them"
            )
        seen[tool.name] = tool.tool_id
    docs: list[_Document] = []
    pairs: list[tuple[_Document, _Document | None]] = []
    for tool, prefix in zip(tools, _tool_prefixes([t.name for t in tools]), strict=True):
        inp = _Document(len(docs), tool.input_schema, prefix, "Input")
        docs.append(inp)
        out: _Document | None = None
        if tool.output_schema is not None:
            out = _Document(len(docs), tool.output_schema, prefix, "Output", True)
            docs.append(out)
        pairs.append((inp, out))
    return docs, pairs


def _has_ref(node: Any) -> bool:
    """Whether a schema uses ``$ref`` anywhere (only then can it have named types)."""
    if isinstance(node, Mapping):
        return "$ref" in node or any(_has_ref(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_ref(v) for v in node)
    return False


# --------------------------------------------------------------------------------------------
# Type expressions with just enough structure to parenthesise correctly.

_UNION, _INTERSECTION, _PREFIX, _PRIMARY = 0, 1, 2, 3
_INDENT: Final = "  "
_MAX_DEPTH: Final = 64


@dataclass(frozen=True)
class _Type:
    text: str
    prec: int = _PRIMARY
    members: tuple[_Type, ...] = ()


_UNKNOWN: Final = _Type("unknown")
_NEVER: Final = _Type("never")
_NULL: Final = _Type("null")
_STRING: Final = _Type("string")
_NUMBER: Final = _Type("number")
_BOOLEAN: Final = _Type("boolean")


def _wrap(t: _Type, min_prec: int) -> str:
    return f"({t.text})" if t.prec < min_prec else t.text


def _union(types: Iterable[_Type]) -> _Type:
    out: list[_Type] = []
    seen: set[str] = set()
    for t in types:
        for m in t.members if t.prec == _UNION else (t,):
            if m.text == "unknown":
                return _UNKNOWN
            if m.text == "never" or m.text in seen:
                continue
            seen.add(m.text)
            out.append(m)
    if not out:
        return _NEVER
    out.sort(key=lambda m: m.text == "null")  # stable: `T | null` reads best
    if len(out) == 1:
        return out[0]
    return _Type(" | ".join(_wrap(m, _INTERSECTION) for m in out), _UNION, tuple(out))


def _intersection(types: Iterable[_Type]) -> _Type:
    out: list[_Type] = []
    seen: set[str] = set()
    for t in types:
        for m in t.members if t.prec == _INTERSECTION else (t,):
            if m.text == "never":
                return _NEVER
            if m.text == "unknown" or m.text in seen:
                continue
            seen.add(m.text)
            out.append(m)
    if not out:
        return _UNKNOWN
    if len(out) == 1:
        return out[0]
    return _Type(" & ".join(_wrap(m, _PREFIX) for m in out), _INTERSECTION, tuple(out))


def _array(item: _Type) -> _Type:
    return _Type(f"{_wrap(item, _PRIMARY)}[]")


# --------------------------------------------------------------------------------------------
# Literals, keys, names.

_ASCII_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _is_identifier(text: str) -> bool:
    return bool(text) and to_identifier(text) == text and not text[0].isdigit()


def _string_literal(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    # Lone surrogates cannot be encoded as UTF-8; JS line separators are fine but confusing.
    text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _property_key(key: str) -> str:
    return key if _ASCII_IDENT.fullmatch(key) else _string_literal(key)


def _literal(value: Any) -> _Type:
    """A JSON value as a TypeScript literal type (objects and arrays become structural types)."""
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return _Type("true" if value else "false")
    if isinstance(value, int):
        return _Type(str(value), _PREFIX if value < 0 else _PRIMARY)
    if isinstance(value, float):
        if not math.isfinite(value):
            return _NUMBER
        text = repr(value)
        return _Type(text, _PREFIX if value < 0 else _PRIMARY)
    if isinstance(value, str):
        return _Type(_string_literal(value))
    if isinstance(value, list):
        return _Type("[" + ", ".join(_literal(v).text for v in value) + "]")
    if isinstance(value, Mapping):
        if not value:
            return _Type("{ [key: string]: never }")
        members = "; ".join(
            f"{_property_key(str(k))}: {_literal(v).text}" for k, v in value.items()
        )
        return _Type("{ " + members + " }")
    return _UNKNOWN


def _pascal(text: str) -> str:
    """Type-name PascalCase: ``get_weather`` -> ``GetWeather`` (``Page_Item_`` -> ``PageItem``)."""
    parts = [p for p in re.split(r"[\W_]+", text) if p]
    name = "".join(p[0].upper() + p[1:] for p in parts)
    if name and not name[0].isidentifier():
        name = f"_{name}"
    return to_identifier(name) if name else ""


def _tool_prefixes(names: Sequence[str]) -> list[str]:
    """Type-name prefix per tool: PascalCase, unless that merges two tools; then the name
    itself, capitalised (``get_weather`` -> ``Get_weather`` beside ``GetWeather``)."""
    pascal = [_pascal(n) for n in names]
    counts = Counter(pascal)
    prefixes = [
        p if counts[p] == 1 else n[:1].upper() + n[1:] for p, n in zip(pascal, names, strict=True)
    ]
    seen: Counter[str] = Counter()
    out: list[str] = []
    for p in prefixes:
        seen[p] += 1
        out.append(p if seen[p] == 1 else f"{p}{seen[p]}")
    return out


# Names our own output relies on or that would shadow well-known globals confusingly.
_RESERVED_NAMES: Final = frozenset(
    {
        "Array", "ArrayBuffer", "Awaited", "BigInt", "Boolean", "Date", "Error", "Exclude",
        "Extract", "Function", "JSON", "Map", "Math", "NonNullable", "Number", "Object", "Omit",
        "Parameters", "Partial", "Pick", "Promise", "PromiseLike", "Readonly", "Record",
        "RegExp", "Required", "ReturnType", "Set", "String", "Symbol", "Uint8Array",
    }
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# JSON pointers and documents.


@dataclass(frozen=True)
class _Document:
    """One root schema (a tool's input or output): ``$ref``s resolve against it."""

    index: int
    root: Any
    tool: str  # type-name prefix for this tool, unique among the tools rendered together
    side: str  # "Input", "Output" or "Root"
    # Output schemas describe serialised values, where a field with a default is always present
    # (pydantic's serialisation schema still lists such fields as optional).
    defaults_present: bool = False


def _split_pointer(pointer: str) -> list[str]:
    return [unquote(t).replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _local_pointer(doc: _Document, ref: str) -> str | None:
    """The canonical JSON pointer a ``$ref`` names inside its document, or None if external."""
    base, hash_, fragment = ref.partition("#")
    if base:
        root_id = doc.root.get("$id") if isinstance(doc.root, Mapping) else None
        if base != root_id:
            return None
    if not hash_ or fragment == "":
        return ""
    if not fragment.startswith("/"):
        return None  # plain-name anchors are not supported
    tokens = _split_pointer(fragment)
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


def _resolve(root: Any, pointer: str) -> tuple[bool, Any]:
    if pointer == "":
        return True, root
    node = root
    for token in _split_pointer(pointer):
        if isinstance(node, Mapping) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False, None
    return True, node


# --------------------------------------------------------------------------------------------
# Rendering.

_COMBINATORS: Final = ("allOf", "anyOf", "oneOf")
# Keywords that narrow the type; everything else is documentation or unsupported validation.
_TYPE_KEYWORDS: Final = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "patternProperties",
        "items", "prefixItems", "additionalItems", "enum", "const", "$ref",
        "allOf", "anyOf", "oneOf",
    }
)  # fmt: skip
_OBJECT_KEYWORDS: Final = frozenset(
    {"properties", "required", "additionalProperties", "patternProperties"}
)
_ARRAY_KEYWORDS: Final = frozenset({"items", "prefixItems", "additionalItems"})
_MISSING: Final[Any] = object()

_NameLookup = Callable[[_Document, str], "str | None"]


def _constrains(schema: Mapping[str, Any]) -> bool:
    return any(k in schema for k in _TYPE_KEYWORDS)


def _type_list(schema: Mapping[str, Any]) -> list[str] | None:
    """The schema's ``type`` keyword as a list, None when absent (any type)."""
    t = schema.get("type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return [x for x in t if isinstance(x, str)]
    return None


class _Renderer:
    """Renders schemas of known documents; ``$ref``s become the names ``lookup`` gives."""

    def __init__(self, lookup: _NameLookup) -> None:
        self._lookup = lookup

    def render(self, schema: Any, doc: _Document, indent: int, depth: int = 0) -> _Type:
        if schema is True:
            return _UNKNOWN
        if schema is False:
            return _NEVER
        if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
            return _UNKNOWN
        t = self._core(schema, doc, indent, depth)
        if schema.get("nullable") is True:  # OpenAPI 3.0
            t = _union([t, _NULL])
        return t

    def _core(self, schema: Mapping[str, Any], doc: _Document, indent: int, depth: int) -> _Type:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            pointer = _local_pointer(doc, ref)
            name = self._lookup(doc, pointer) if pointer is not None else None
            ref_type = _Type(name) if name else _UNKNOWN
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            if not _constrains(rest):
                return ref_type
            return _intersection([ref_type, self._core(rest, doc, indent, depth)])

        all_of = schema.get("allOf")
        if isinstance(all_of, list):
            base: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            # Members that only refine `base` merge into it (one object type); the rest
            # intersect, in the order written (`Base & { ... }`).
            base_at = 0 if _constrains(base) else None
            extra: list[Any] = []
            for member in all_of:
                if _mergeable(base, member):
                    base = _merge(base, member)
                    base_at = len(extra) if base_at is None else base_at
                else:
                    extra.append(member)
            parts = [self.render(m, doc, indent, depth + 1) for m in extra]
            if base_at is not None or not parts:
                parts.insert(base_at or 0, self._core(base, doc, indent, depth))
            return _intersection(parts)

        for key in ("anyOf", "oneOf"):
            members = schema.get(key)
            if not isinstance(members, list):
                continue
            base = {k: v for k, v in schema.items() if k != key}
            if not _constrains(base):
                return _union(self.render(m, doc, indent, depth + 1) for m in members)
            if all(_mergeable(base, m) for m in members):
                # "properties + one of these is required": each branch keeps every property.
                return _union(self.render(_merge(base, m), doc, indent, depth + 1) for m in members)
            branches = _union(self.render(m, doc, indent, depth + 1) for m in members)
            return _intersection([self._core(base, doc, indent, depth), branches])

        return self._plain(schema, doc, indent, depth)

    def _plain(self, schema: Mapping[str, Any], doc: _Document, indent: int, depth: int) -> _Type:
        if "const" in schema:
            return _literal(schema["const"])
        enum = schema.get("enum")
        if isinstance(enum, list):
            return _union(_literal(v) for v in enum)
        types = _type_list(schema)
        if types is None:
            types = []
            if any(k in schema for k in _OBJECT_KEYWORDS):
                types.append("object")
            if any(k in schema for k in _ARRAY_KEYWORDS):
                types.append("array")
            if not types:
                return _UNKNOWN
        return _union(self._of_type(t, schema, doc, indent, depth) for t in types)

    def _of_type(
        self, name: str, schema: Mapping[str, Any], doc: _Document, indent: int, depth: int
    ) -> _Type:
        if name == "string":
            return _STRING
        if name in ("number", "integer"):
            return _NUMBER
        if name == "boolean":
            return _BOOLEAN
        if name == "null":
            return _NULL
        if name == "array":
            return self._array(schema, doc, indent, depth)
        if name == "object":
            return self._object(schema, doc, indent, depth)
        return _UNKNOWN

    def _array(self, schema: Mapping[str, Any], doc: _Document, indent: int, depth: int) -> _Type:
        items = schema.get("items", _MISSING)
        prefix = schema.get("prefixItems")
        if isinstance(prefix, list):
            rest = items
        elif isinstance(items, list):  # draft 4-7 tuple form
            prefix, rest = items, schema.get("additionalItems", _MISSING)
        else:
            if schema.get("maxItems") == 0:
                return _Type("[]")
            item = _UNKNOWN if items is _MISSING else self.render(items, doc, indent, depth + 1)
            return _array(item)

        min_items = schema.get("minItems", 0)
        max_items = schema.get("maxItems")
        min_items = min_items if isinstance(min_items, int) else 0
        max_items = max_items if isinstance(max_items, int) else None
        elements: list[str] = []
        for i, sub in enumerate(prefix):
            if max_items is not None and i >= max_items:
                break
            t = self.render(sub, doc, indent, depth + 1)
            elements.append(t.text if i < min_items else f"{_wrap(t, _PRIMARY)}?")
        closed = rest is False or (max_items is not None and max_items <= len(prefix))
        if not closed:
            rest_type = _UNKNOWN if rest is _MISSING else self.render(rest, doc, indent, depth + 1)
            if rest_type.text != "never":
                elements.append(f"...{_array(rest_type).text}")
        return _Type("[" + ", ".join(elements) + "]")

    def _object(self, schema: Mapping[str, Any], doc: _Document, indent: int, depth: int) -> _Type:
        pad = _INDENT * (indent + 1)
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required_raw = schema.get("required")
        required = (
            [r for r in required_raw if isinstance(r, str)]
            if isinstance(required_raw, list)
            else []
        )

        lines: list[str] = []
        declared: list[tuple[str, _Type, bool]] = []  # (key, type, optional)
        for key, sub in properties.items():
            key = str(key)
            optional = key not in required and not (
                doc.defaults_present and isinstance(sub, Mapping) and "default" in sub
            )
            t = self.render(sub, doc, indent + 1, depth + 1)
            declared.append((key, t, optional))
            lines.extend(_doc_comment(_doc_lines(sub), pad))
            lines.append(f"{pad}{_property_key(key)}{'?' if optional else ''}: {t.text};")
        for key in dict.fromkeys(required):
            if key not in properties:
                declared.append((key, _UNKNOWN, False))
                lines.append(f"{pad}{_property_key(key)}: unknown;")

        signatures = self._index_signatures(schema, doc, indent, depth, bool(properties))
        # TypeScript requires every declared property (and every template-keyed signature) to
        # fit each index signature whose key it matches, so widen the value types accordingly.
        for key_type, sig in signatures.items():
            matches: list[_Type] = []
            optional = False
            for key, t, opt in declared:
                if sig.prefix is None or key.startswith(sig.prefix):
                    matches.append(t)
                    optional = optional or opt
            if key_type == "string":
                matches.extend(s.value for k, s in signatures.items() if k != "string")
            if optional:
                matches.append(_Type("undefined"))
            if sig.value.text != "unknown" and matches:
                widened = _union([sig.value, *matches])
                if widened.text != sig.value.text and sig.note:
                    sig.doc.append(sig.note)
                sig.value = widened

        for key_type, sig in signatures.items():
            lines.extend(_doc_comment(sig.doc, pad))
            lines.append(f"{pad}[key: {key_type}]: {sig.value.text};")

        if not lines:
            return _Type("{ [key: string]: never }")
        only = lines[0].strip()
        if len(lines) == 1 and only.startswith("[key: string]") and "\n" not in only:
            return _Type("{ " + only[:-1] + " }")
        return _Type("{\n" + "\n".join(lines) + "\n" + _INDENT * indent + "}")

    def _index_signatures(
        self,
        schema: Mapping[str, Any],
        doc: _Document,
        indent: int,
        depth: int,
        has_properties: bool,
    ) -> dict[str, _Signature]:
        signatures: dict[str, _Signature] = {}

        def add(
            key_type: str, prefix: str | None, value: _Type, doc_lines: list[str]
        ) -> _Signature:
            sig = signatures.get(key_type)
            if sig is None:
                sig = signatures[key_type] = _Signature(prefix, value, list(doc_lines))
            else:
                sig.value = _union([sig.value, value])
                sig.doc.extend(doc_lines)
            return sig

        patterns = schema.get("patternProperties")
        patterns = patterns if isinstance(patterns, Mapping) else {}
        for pattern, sub in patterns.items():
            prefix = _literal_prefix(str(pattern))
            key_type = "string" if prefix is None else f"`{prefix}${{string}}`"
            value = self.render(sub, doc, indent + 1, depth + 1)
            holds = f": {value.text}." if "\n" not in value.text else "."
            add(key_type, prefix, value, [f"Keys matching /{pattern}/{holds}", *_doc_lines(sub)])

        extra = schema.get("additionalProperties", _MISSING)
        if extra is True or (extra is _MISSING and not has_properties and not patterns):
            add("string", None, _UNKNOWN, [])
        elif isinstance(extra, Mapping):
            value = self.render(extra, doc, indent + 1, depth + 1)
            sig = add("string", None, value, _doc_lines(extra))
            if "\n" not in value.text and not patterns:
                sig.note = f"Other keys: {value.text}."
        return signatures


@dataclass
class _Signature:
    prefix: str | None  # literal key prefix for template-keyed signatures, None for `string`
    value: _Type
    doc: list[str] = field(default_factory=list)
    # Said in the JSDoc once widening has hidden what other keys really hold.
    note: str | None = None


_PREFIX_CHARS: Final = re.compile(r"[A-Za-z0-9_\-:@/ ]")


def _literal_prefix(pattern: str) -> str | None:
    """``^S_`` -> ``S_``: a regex that only fixes a literal key prefix (else None)."""
    if not pattern.startswith("^") or "|" in pattern:
        return None
    out: list[str] = []
    i = 1
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in ".-/:@_":
            out.append(pattern[i + 1])
            i += 2
            continue
        if not _PREFIX_CHARS.fullmatch(ch):
            if ch in "*?{" and out:
                out.pop()  # the last literal character is optional or repeated
            break
        out.append(ch)
        i += 1
    prefix = "".join(out)
    return prefix or None


def _type_set(schema: Mapping[str, Any]) -> set[str] | None:
    types = _type_list(schema)
    return None if types is None else set(types)


def _mergeable(base: Mapping[str, Any], member: Any) -> bool:
    """Whether ``member`` only refines ``base`` (so both can render as one object type)."""
    if member is True:
        return True
    if not isinstance(member, Mapping) or "$ref" in member:
        return False
    if any(k in member for k in _COMBINATORS):
        return False
    if any(k in member for k in ("enum", "const")) and any(k in base for k in ("enum", "const")):
        return False
    for key in ("items", "prefixItems", "additionalItems"):
        if key in member and key in base and member[key] != base[key]:
            return False
    a, b = _type_set(base), _type_set(member)
    return a is None or b is None or bool(_common_types(a, b))


def _common_types(a: set[str], b: set[str]) -> set[str]:
    common = a & b
    if ("integer" in a and "number" in b) or ("number" in a and "integer" in b):
        common.add("integer")
    return common


def _merge(base: Mapping[str, Any], member: Any) -> dict[str, Any]:
    """One schema equivalent to ``allOf: [base, member]`` for a member that `_mergeable` allows."""
    merged = dict(base)
    if member is True:
        return merged
    for key, value in member.items():
        if key == "type":
            a, b = _type_set(base), _type_set(member)
            if a is not None and b is not None:
                common = _common_types(a, b)
                ordered = [t for t in _type_list(base) or [] if t in common]
                ordered += [t for t in sorted(common) if t not in ordered]
                merged["type"] = ordered[0] if len(ordered) == 1 else ordered
            else:
                merged["type"] = value
        elif key == "properties" and isinstance(value, Mapping):
            props = dict(base.get("properties") or {})
            for name, sub in value.items():
                if name not in props or props[name] == sub or sub is True or sub == {}:
                    props.setdefault(name, sub)
                elif isinstance(props[name], Mapping) and _mergeable(props[name], sub):
                    props[name] = _merge(props[name], sub)
                else:
                    props[name] = {"allOf": [props[name], sub]}
            merged["properties"] = props
        elif key == "required" and isinstance(value, list):
            before = base.get("required")
            merged["required"] = list(dict.fromkeys([*(before or []), *value]))
        elif key == "patternProperties" and isinstance(value, Mapping):
            merged["patternProperties"] = {**(base.get("patternProperties") or {}), **value}
        elif key in ("description", "title") and key in base:
            continue
        else:
            merged[key] = value
    return merged


# --------------------------------------------------------------------------------------------
# Naming ``$ref`` targets: collected by a dry-run render, then made unique across tools.


def _assign_names(
    docs: Sequence[_Document], targets_out: dict[tuple[int, str], str] | None = None
) -> dict[tuple[int, str], str]:
    """Give every ``$ref`` target a type name; identical definitions across tools share one.

    A target keeps its definition's own name while that is unique. Names that collide across
    tools get the tool's prefix (distinct even for ``get_weather`` vs ``getWeather``); an input
    and output variant of one tool's definition get an ``Input``/``Output`` suffix; anything
    still equal gets a number. Fills ``targets_out`` with the targets in discovery order.
    """
    found: dict[tuple[int, str], None] = {}  # discovery order
    edges: dict[tuple[int, str], set[str]] = {}
    current: list[tuple[int, str]] = []
    by_index = {d.index: d for d in docs}

    def collect(doc: _Document, pointer: str) -> str | None:
        ok, target = _resolve(doc.root, pointer)
        if not ok:
            return None
        key = (doc.index, pointer)
        if current:
            edges.setdefault(current[-1], set()).add(pointer)
        if key not in found:
            found[key] = None
            current.append(key)
            dry.render(target, doc, 0)
            current.pop()
        return "T"

    dry = _Renderer(collect)
    for doc in docs:
        dry.render(doc.root, doc, 0)

    def signature(key: tuple[int, str]) -> str:
        doc_index, start = key
        closure, stack = {start}, [start]
        while stack:
            for nxt in edges.get((doc_index, stack.pop()), ()):
                if nxt not in closure:
                    closure.add(nxt)
                    stack.append(nxt)
        doc = by_index[doc_index]
        content = {p: _resolve(doc.root, p)[1] for p in sorted(closure)}
        # Input and output render defaulted fields differently; only then do they differ.
        mode = doc.defaults_present and _has_property_default(content)
        return json.dumps([mode, content], sort_keys=True, default=str)

    groups: dict[tuple[str, ...], list[tuple[int, str]]] = {}
    for key in found:
        doc_index, pointer = key
        if pointer == "":
            group_key: tuple[str, ...] = ("#", str(doc_index))
        else:
            group_key = ("def", _pascal(_split_pointer(pointer)[-1]), signature(key))
        groups.setdefault(group_key, []).append(key)

    firsts = [by_index[g[0][0]] for g in groups.values()]
    pointers = [g[0][1] for g in groups.values()]
    chosen: list[str] = []
    prefixed: list[bool] = []
    suffixed: list[bool] = []
    for doc, pointer in zip(firsts, pointers, strict=True):
        if pointer == "":
            chosen.append(doc.tool + doc.side)
            prefixed.append(True)
            suffixed.append(True)
        else:
            chosen.append(_pascal(_split_pointer(pointer)[-1]) or "Type")
            prefixed.append(False)
            suffixed.append(False)

    for _ in range(4):
        clusters: dict[str, list[int]] = {}
        for i, name in enumerate(chosen):
            clusters.setdefault(name, []).append(i)
        changed = False
        for name, members in clusters.items():
            if len(members) == 1 and name not in _RESERVED_NAMES:
                continue
            same_tool = len({firsts[i].tool for i in members}) == 1 and len(members) > 1
            for i in members:
                if not same_tool and not prefixed[i] and firsts[i].tool:
                    chosen[i] = firsts[i].tool + chosen[i]
                    prefixed[i] = changed = True
                elif not suffixed[i]:
                    chosen[i] = chosen[i] + firsts[i].side
                    suffixed[i] = changed = True
        if not changed:
            break

    taken = set(_RESERVED_NAMES)
    names: dict[tuple[int, str], str] = {}
    for group, name in zip(groups.values(), chosen, strict=True):
        if name in taken:
            n = 2
            while f"{name}{n}" in taken:
                n += 1
            name = f"{name}{n}"
        taken.add(name)
        for key in group:
            names[key] = name
    if targets_out is not None:
        for key in found:
            targets_out[key] = names[key]
    return names


def _has_property_default(value: Any) -> bool:
    if isinstance(value, Mapping):
        props = value.get("properties")
        if isinstance(props, Mapping) and any(
            isinstance(p, Mapping) and "default" in p for p in props.values()
        ):
            return True
        return any(_has_property_default(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_property_default(v) for v in value)
    return False


def _root_type(
    renderer: _Renderer, names: Mapping[tuple[int, str], str], doc: _Document, used: set[str]
) -> str:
    name = names.get((doc.index, ""))
    if name:
        used.add(name)
        return name
    return renderer.render(doc.root, doc, 0).text


# --------------------------------------------------------------------------------------------
# JSDoc.

_LINE_BREAK = re.compile(r"\r\n|[\r\n\u2028\u2029]")
_MAX_VALUE_CHARS: Final = 200
_CONSTRAINT_TAGS: Final = (
    "format", "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf",
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems",
    "minProperties", "maxProperties", "contentEncoding", "contentMediaType",
)  # fmt: skip


def _text_lines(text: str) -> list[str]:
    text = _SURROGATE.sub("\ufffd", text)
    lines = [line.rstrip() for line in _LINE_BREAK.split(text)]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _json_value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    text = _SURROGATE.sub("\ufffd", text)
    return text if len(text) <= _MAX_VALUE_CHARS else text[: _MAX_VALUE_CHARS - 1] + "…"


def _constraint_tags(schema: Mapping[str, Any], prefix: str = "") -> list[str]:
    tags: list[str] = []
    # A tuple type already says how many items it takes, up to its fixed elements.
    fixed = schema.get("prefixItems", schema.get("items"))
    tuple_length = len(fixed) if isinstance(fixed, list) else -1
    for key in _CONSTRAINT_TAGS:
        if key not in schema:
            continue
        value = schema[key]
        if key in ("minItems", "maxItems") and isinstance(value, int) and value <= tuple_length:
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and isinstance(value, bool):
            bound = schema.get("minimum" if key == "exclusiveMinimum" else "maximum")
            if value and isinstance(bound, int | float):  # draft 4 boolean form
                tags.append(f"@{prefix}{key} {_json_value(bound)}")
            continue
        if key in ("minimum", "maximum"):
            exclusive = schema.get("exclusiveMinimum" if key == "minimum" else "exclusiveMaximum")
            if exclusive is True:
                continue  # rendered as the exclusive bound
        if key == "uniqueItems":
            if value is True:
                tags.append(f"@{prefix}uniqueItems")
            continue
        shown = _LINE_BREAK.sub(" ", value) if isinstance(value, str) else _json_value(value)
        tags.append(f"@{prefix}{key} {_SURROGATE.sub(chr(0xFFFD), shown)}")
    return tags


def _doc_lines(schema: Any) -> list[str]:
    """Description, constraints, default, examples and deprecation of a schema, as JSDoc lines."""
    if not isinstance(schema, Mapping):
        return []
    lines: list[str] = []
    description = schema.get("description")
    if isinstance(description, str):
        lines.extend(_text_lines(description))
    tags = _constraint_tags(schema)

    # `Optional[X]` is `anyOf: [X, null]`: X's constraints describe the value.
    for key in ("anyOf", "oneOf"):
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
    if isinstance(items, Mapping) and "$ref" not in items:
        item_types = _type_set(items) or set()
        if not item_types & {"object", "array"}:
            if isinstance(items.get("description"), str):
                item_lines = _text_lines(items["description"])
                if item_lines:
                    lines.append(f"Each item: {item_lines[0]}")
                    lines.extend(item_lines[1:])
            tags.extend(_constraint_tags(items, "items."))

    if "default" in schema:
        tags.append(f"@default {_json_value(schema['default'])}")
    examples = schema.get("examples")
    if isinstance(examples, list):
        tags.extend(f"@example {_json_value(e)}" for e in examples[:3])
    elif "example" in schema:
        tags.append(f"@example {_json_value(schema['example'])}")
    if schema.get("deprecated") is True:
        tags.append("@deprecated")
    return lines + tags


def _function_doc(tool: ToolDeclaration) -> list[str]:
    lines = _text_lines(tool.description or "")
    root_in = (
        tool.input_schema.get("description") if isinstance(tool.input_schema, Mapping) else None
    )
    if (
        isinstance(root_in, str)
        and root_in.strip()
        and root_in.strip() != (tool.description or "").strip()
    ):
        text = _text_lines(root_in)
        lines.append(f"@param input {text[0]}")
        lines.extend(text[1:])
    out = tool.output_schema
    root_out = out.get("description") if isinstance(out, Mapping) else None
    if isinstance(root_out, str) and root_out.strip():
        text = _text_lines(root_out)
        lines.append(f"@returns {text[0]}")
        lines.extend(text[1:])
    return lines


def _doc_comment(lines: Sequence[str], pad: str) -> list[str]:
    """A JSDoc block; ``*/`` in the text is escaped so it cannot end the comment early."""
    if not lines:
        return []
    safe = [line.replace("*/", "*\\/") for line in lines]
    if len(safe) == 1 and len(safe[0]) <= 80:
        return [f"{pad}/** {safe[0]} */"]
    body = [f"{pad} * {line}".rstrip() if line else f"{pad} *" for line in safe]
    return [f"{pad}/**", *body, f"{pad} */"]
