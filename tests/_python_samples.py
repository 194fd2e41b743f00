"""Python source for JSON samples, and calls of the stubs with them (for the type-check corpus
tests): arrays become tuples where the schema declares a tuple, as the stubs type them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jsonschema

from codemode.languages.python._declarations import Function


def _resolve(schema: Any, root: Any) -> Any:
    seen = 0
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and seen < 20:
        ref = schema["$ref"]
        if not ref.startswith("#"):
            return {}
        node = root
        for token in [t for t in ref[1:].split("/") if t]:
            token = token.replace("~1", "/").replace("~0", "~")
            node = node[int(token)] if isinstance(node, list) else node.get(token, {})
        schema = node
        seen += 1
    return schema


def _branch(value: Any, schema: Mapping[str, Any], root: Any) -> Any:
    for key in ("anyOf", "oneOf"):
        for member in schema.get(key) or []:
            candidate = (
                {**root, **member}
                if isinstance(root, dict) and isinstance(member, dict)
                else member
            )
            try:
                ok = jsonschema.Draft202012Validator(candidate).is_valid(value)
            except Exception:
                ok = False
            if ok:
                return member
    return None


def literal(value: Any, schema: Any, root: Any) -> str:
    """Python source for ``value`` where ``schema`` (in document ``root``) describes it."""
    schema = _resolve(schema, root)
    if isinstance(schema, Mapping):
        chosen = _branch(value, schema, root)
        if chosen is not None:
            return literal(value, chosen, root)
        for member in schema.get("allOf") or []:
            member = _resolve(member, root)
            if isinstance(member, Mapping) and (
                "prefixItems" in member or isinstance(member.get("items"), list)
            ):
                return literal(value, member, root)
    else:
        schema = {}
    if isinstance(value, list):
        prefix = schema.get("prefixItems")
        items = schema.get("items")
        if isinstance(prefix, list) or isinstance(items, list):
            fixed = prefix if isinstance(prefix, list) else items
            rest = items if isinstance(prefix, list) else schema.get("additionalItems")
            parts = [
                literal(
                    v,
                    fixed[i] if i < len(fixed) else (rest if isinstance(rest, Mapping) else {}),
                    root,
                )
                for i, v in enumerate(value)
            ]
            return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"
        return (
            "["
            + ", ".join(
                literal(v, items if isinstance(items, Mapping) else {}, root) for v in value
            )
            + "]"
        )
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        out = []
        for k, v in value.items():
            sub = props.get(k, extra if isinstance(extra, Mapping) else {})
            out.append(f"{json.dumps(k, ensure_ascii=False)}: {literal(v, sub, root)}")
        return "{" + ", ".join(out) + "}"
    if value is None or isinstance(value, bool):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def call(fn: Function, sample: Any, schema: Any) -> str:
    """``await external_x(...)`` with ``sample`` as its input, in the function's call style."""
    if fn.style == "none":
        return f"await {fn.name}()"
    if fn.style == "input" or not isinstance(sample, dict):
        return f"await {fn.name}({literal(sample, schema, schema)})"
    resolved = _resolve(schema, schema)
    if isinstance(resolved, Mapping) and (chosen := _branch(sample, resolved, schema)) is not None:
        resolved = {
            **resolved,
            **chosen,
            "properties": {
                **(resolved.get("properties") or {}),
                **(chosen.get("properties") or {}),
            },
        }
    props = (resolved.get("properties") or {}) if isinstance(resolved, Mapping) else {}
    extra = resolved.get("additionalProperties") if isinstance(resolved, Mapping) else None
    args = []
    for key, value in sample.items():
        sub = props.get(key, extra if isinstance(extra, Mapping) else {})
        if key.isidentifier():
            args.append(f"{key}={literal(value, sub, schema)}")
        else:
            args.append(f"**{{{json.dumps(key)}: {literal(value, sub, schema)}}}")
    return f"await {fn.name}({', '.join(args)})"
