"""The catalog: what search and the outline know about each tool a program may call.

An entry keeps the text that search reads (name, group, description, parameter names and
descriptions) already split into terms, so that an index is a cheap pass over entries. A
catalog is a snapshot: ``CatalogSnapshot.signature`` tells whether the live tools still match
it, so that a search never answers from a stale one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final

from .._tools import Tool
from ._tokenize import STOP_WORDS, split_words, stem, text_terms

__all__ = ["CatalogEntry", "CatalogSnapshot", "catalog_signature", "summary"]

# How deep parameter names and descriptions are collected from an input schema.
_MAX_PARAM_DEPTH: Final = 3
_MAX_PARAMS: Final = 60
_MAX_ENUM_VALUES: Final = 12
_SUMMARY_CHARS: Final = 240
# Leading words that name an action rather than a domain: ``get_`` is not a group.
_ACTION_WORDS: Final = frozenset(
    """add append apply approve archive assign attach batch browser cancel check clear click
    clone close commit compare complete convert copy count create delete describe detect diff
    disable dismiss download drag edit enable evaluate execute export fetch fill find fork
    generate get go hover import insert install invite list load lock login logout make manage
    mark merge move navigate new open patch ping post press print publish pull push put query
    read record refresh reject remove rename reopen reply request reset resize resolve restart
    restore retrieve revert review run save scan schedule search select send set share show
    sign snapshot sort start stop submit subscribe sync tag take test toggle track transfer
    trigger unarchive unassign unlock unsubscribe update upload upsert validate verify view
    wait watch write""".split()  # noqa: SIM905 - a list of words reads best as text
)
# A leading word shared by at least this many tools is a group (when nothing names one).
_MIN_GROUP_SIZE: Final = 3
_SEPARATOR: Final = re.compile(r"[_\-.:/$]")
# The keys of a schema node that lead to more parameters.
_NESTING: Final = frozenset(("$ref", "anyOf", "oneOf", "allOf", "items", "properties"))


@dataclass(frozen=True)
class CatalogEntry:
    """One tool as search sees it; ``name`` is what the program calls (``external_<name>``)."""

    name: str
    tool_id: str
    description: str
    group: str | None
    name_terms: tuple[str, ...]
    group_terms: tuple[str, ...]
    description_terms: tuple[str, ...]
    param_name_terms: tuple[str, ...]
    param_text_terms: tuple[str, ...]

    @property
    def summary(self) -> str:
        """The description's first paragraph, at most a few sentences long."""
        return summary(self.description)


def summary(description: str, limit: int = _SUMMARY_CHARS) -> str:
    """The first paragraph of ``description``, cut at a sentence or word near ``limit``."""
    text = description.strip().split("\n\n", 1)[0]
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("; "))
    if end >= limit // 2:
        return cut[: end + 1]
    return cut[: cut.rfind(" ")].rstrip(",;:") + " …" if " " in cut else cut + "…"


def catalog_signature(tools: Mapping[str, Tool]) -> tuple[object, ...]:
    """What identifies the catalog's content cheaply: each name with its tool object, its
    description and its schema objects. A tool replaced, added, removed, re-described or given
    a new schema changes it (schemas are compared by identity: replace a schema, do not edit
    it in place)."""
    return tuple(
        (name, id(t), t.description, id(t.input_schema), id(t.output_schema), t.group)
        for name, t in tools.items()
    )


@dataclass(frozen=True)
class CatalogSnapshot:
    """The entries of every tool, in catalog order, with the signature they were made from."""

    entries: tuple[CatalogEntry, ...]
    signature: tuple[object, ...]

    @classmethod
    def of(
        cls, tools: Mapping[str, Tool], previous: CatalogSnapshot | None = None
    ) -> CatalogSnapshot:
        """The snapshot of ``tools``; entries of tools unchanged since ``previous`` are reused
        (a catalog that changes by a tool costs a tool, not the catalog)."""
        groups = _groups(tools)
        signature = catalog_signature(tools)
        reusable: dict[object, CatalogEntry] = {}
        if previous is not None:
            reusable = dict(zip(previous.signature, previous.entries, strict=True))
        entries = []
        for key, (name, tool) in zip(signature, tools.items(), strict=True):
            entry = reusable.get(key)
            group = groups.get(name)
            if entry is None or entry.group != group:
                entry = _entry(name, tool, group)
            entries.append(entry)
        return cls(tuple(entries), signature)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[CatalogEntry]:
        return iter(self.entries)


def _groups(tools: Mapping[str, Tool]) -> dict[str, str]:
    """Each tool's group: the one it names (an MCP server), else a leading word of its name
    shared by several tools, unless that word is an action (``get``, ``list``)."""
    groups: dict[str, str] = {}
    leading: dict[str, str] = {}
    for name, tool in tools.items():
        if tool.group:
            groups[name] = tool.group
            continue
        head = _SEPARATOR.split(name, 1)[0] if _SEPARATOR.search(name) else ""
        if head and head.lower() not in _ACTION_WORDS and head != name:
            leading[name] = head
    counts = Counter(leading.values())
    for name, head in leading.items():
        if counts[head] >= _MIN_GROUP_SIZE:
            groups[name] = head
    return groups


def _entry(name: str, tool: Tool, group: str | None) -> CatalogEntry:
    name_words = split_words(name)
    group_words = _group_words(group) if group else ()
    # The group's words lead an MCP tool's name (``github_create_issue``): they count once, as
    # the group, so that the name's own words decide among a server's tools.
    if group_words and tuple(name_words[: len(group_words)]) == group_words:
        name_words = name_words[len(group_words) :]
    tool_id_words = split_words(tool.id) if tool.id != name else []
    names, texts = _parameters(tool.input_schema)
    return CatalogEntry(
        name=name,
        tool_id=tool.id,
        description=tool.description or "",
        group=group,
        name_terms=_terms(name_words + [w for w in tool_id_words if w not in name_words]),
        group_terms=_group_terms(group) if group else (),
        description_terms=text_terms(tool.description or ""),
        param_name_terms=text_terms(" ".join(names)),
        param_text_terms=text_terms(" ".join(texts)),
    )


@lru_cache(maxsize=4096)
def _group_words(group: str) -> tuple[str, ...]:
    return tuple(split_words(group))


@lru_cache(maxsize=4096)
def _group_terms(group: str) -> tuple[str, ...]:
    """One tuple per group: the index counts a field shared by many tools once."""
    return _terms(split_words(group))


def _terms(words: list[str]) -> tuple[str, ...]:
    return tuple(stem(w) for w in words if w not in STOP_WORDS)


def _parameters(schema: Any) -> tuple[list[str], list[str]]:
    """The property names of an input schema and the text that describes them (descriptions,
    titles, enum values), a few levels deep, local ``$ref``s followed once. (JSON Schemas are
    plain dicts here: ``isinstance(x, dict)`` is several times cheaper than ``Mapping``.)"""
    names: list[str] = []
    texts: list[str] = []
    root = schema if isinstance(schema, dict) else {}
    seen_refs: set[str] = set()

    def visit(node: Any, depth: int) -> None:
        if depth > _MAX_PARAM_DEPTH or len(names) > _MAX_PARAMS or _NESTING.isdisjoint(node):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/") and ref not in seen_refs:
            seen_refs.add(ref)
            target = _resolve(root, ref)
            if isinstance(target, dict):
                visit(target, depth)
        for key in ("anyOf", "oneOf", "allOf"):
            members = node.get(key)
            if members is not None and isinstance(members, list):
                for member in members:
                    if isinstance(member, dict):
                        visit(member, depth)
        items = node.get("items")
        if items is not None and isinstance(items, dict):
            visit(items, depth)
        properties = node.get("properties")
        if properties is None or not isinstance(properties, dict):
            return
        for prop, sub in properties.items():
            names.append(str(prop))
            if isinstance(sub, dict):
                value = sub.get("description")
                if isinstance(value, str):
                    texts.append(value)
                value = sub.get("title")
                if isinstance(value, str):
                    texts.append(value)
                enum = sub.get("enum")
                if enum is not None and isinstance(enum, list):
                    texts.extend(str(v) for v in enum[:_MAX_ENUM_VALUES] if isinstance(v, str))
                if not _NESTING.isdisjoint(sub):  # most properties are leaves: skip the call
                    visit(sub, depth + 1)

    visit(root, 0)
    return names, texts


def _resolve(root: Mapping[str, Any], ref: str) -> Any:
    node: Any = root
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or token not in node:
            return None
        node = node[token]
    return node
