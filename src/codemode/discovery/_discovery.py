"""Search and describe over a code tool's live catalog.

``Catalog`` is a view over the mapping of tools a code tool may call. It keeps a snapshot of
that mapping (terms, index, outline, declarations), checks the mapping's signature before
every answer, and rebuilds what changed: a search or a description never comes from a stale
catalog.
"""

from __future__ import annotations

import difflib
import inspect
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Union

from .._tools import Tool
from ._catalog import CatalogEntry, CatalogSnapshot, catalog_signature, summary
from ._index import LexicalIndex, Ranking
from ._outline import Outline, build_outline

if TYPE_CHECKING:
    from ..languages import DeclarationSet, Language

__all__ = [
    "Catalog",
    "SearchFunction",
    "SearchMatch",
    "SearchResult",
    "UnknownToolError",
]

#: What a custom ``search=`` returns: tool names best first, or (name, score) pairs.
RankedNames = Sequence[Union[str, tuple[str, float]]]  # noqa: UP007 - a runtime alias
#: A custom ranking: ``search(query, tools)`` with ``tools`` the catalog (name -> Tool, in
#: order, read-only), returning ranked names; sync or async (e.g. an embedding lookup).
SearchFunction = Callable[[str, Mapping[str, Tool]], Union[RankedNames, Awaitable[RankedNames]]]  # noqa: UP007

DEFAULT_LIMIT = 10


class UnknownToolError(LookupError):
    """Names given to ``describe`` that are not tools of this code tool."""

    name = "UnknownToolError"

    def __init__(self, unknown: Sequence[str], suggestions: Mapping[str, Sequence[str]]) -> None:
        parts = []
        for name in unknown:
            close = suggestions.get(name) or ()
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            parts.append(f"{name!r}{hint}")
        super().__init__(f"no tool is called {', '.join(parts)}; use the names that search returns")
        self.unknown = tuple(unknown)


@dataclass(frozen=True)
class SearchMatch:
    """One tool that fits a query: ``name`` is what a program calls (``external_<name>``),
    ``tool_id`` the tool's own id, ``score`` how well it fits (lexical: 0 to 1)."""

    name: str
    tool_id: str
    description: str
    score: float


@dataclass(frozen=True)
class SearchResult:
    """The best ``matches`` for a query, and how many tools fit it in all (``total``)."""

    query: str
    matches: tuple[SearchMatch, ...]
    total: int

    @property
    def truncated(self) -> bool:
        """Whether more tools fit than ``matches`` holds."""
        return self.total > len(self.matches)

    def to_json(self) -> dict[str, Any]:
        """What a program or a model gets: ``{results: [{name, description, score}], total,
        truncated}``, each description shortened to its first sentences."""
        return {
            "results": [
                {"name": m.name, "description": summary(m.description), "score": m.score}
                for m in self.matches
            ],
            "total": self.total,
            "truncated": self.truncated,
        }


@dataclass
class _State:
    """Everything derived from one snapshot of the catalog, built on first use."""

    snapshot: CatalogSnapshot
    tools: Mapping[str, Tool]
    index: LexicalIndex | None = None
    outline: Outline | None = None
    declarations: DeclarationSet | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Catalog:
    """Search, describe and outline ``tools``: the mapping a code tool calls (name -> Tool),
    or a function that returns it as it is now. ``search`` replaces the lexical ranking."""

    def __init__(
        self,
        tools: Mapping[str, Tool] | Callable[[], Mapping[str, Tool]],
        language: Language,
        *,
        search: SearchFunction | None = None,
        ranking: Ranking | None = None,
    ) -> None:
        if search is not None and not callable(search):
            raise TypeError(f"search must be callable, got {type(search).__name__}")
        self._live: Callable[[], Mapping[str, Tool]] = tools if callable(tools) else (lambda: tools)
        self._language = language
        self._search = search
        self._ranking = ranking
        self._lock = threading.Lock()
        self._state: _State | None = None
        self.rebuilds = 0  # how many snapshots were built (observable in tests)

    def follow(self, tools: Callable[[], Mapping[str, Tool]]) -> None:
        """Read the catalog from ``tools()`` from now on (a code tool's own mapping)."""
        self._live = tools

    # Snapshots ---------------------------------------------------------------------------
    def _current(self) -> _State:
        """The state for the catalog as it is now, rebuilt if the catalog changed."""
        live = self._live()
        signature = catalog_signature(live)
        state = self._state
        if state is not None and state.snapshot.signature == signature:
            return state
        with self._lock:
            state = self._state
            if state is None or state.snapshot.signature != signature:
                tools = dict(live)
                previous = state.snapshot if state is not None else None
                state = _State(CatalogSnapshot.of(tools, previous), MappingProxyType(tools))
                self._state = state
                self.rebuilds += 1
            return state

    def _index(self, state: _State) -> LexicalIndex:
        with state.lock:
            if state.index is None:
                state.index = LexicalIndex(state.snapshot.entries, self._ranking)
            return state.index

    def _declarations(self, state: _State) -> DeclarationSet:
        with state.lock:
            if state.declarations is None:
                state.declarations = self._language.declaration_set(state.tools)
            return state.declarations

    # Public views ------------------------------------------------------------------------
    @property
    def entries(self) -> tuple[CatalogEntry, ...]:
        """The catalog as search sees it, in order."""
        return self._current().snapshot.entries

    def outline(self) -> Outline:
        """The catalog's outline (groups, counts, example names)."""
        state = self._current()
        with state.lock:
            if state.outline is None:
                state.outline = build_outline(state.snapshot.entries)
            return state.outline

    def declarations(self) -> str:
        """Every tool's declarations (what the type checker needs)."""
        return self._declarations(self._current()).render()

    def search(self, query: str, limit: int = DEFAULT_LIMIT) -> SearchResult:
        """The ``limit`` tools that best fit ``query``, best first."""
        state = self._current()
        _check_search_arguments(query, limit)
        if self._search is None:
            return self._lexical(state, query, limit)
        ranked = self._search(query, state.tools)
        if inspect.isawaitable(ranked):
            _close(ranked)
            raise TypeError(
                "the search= function is async: use `await code_tool.asearch(...)` "
                "(programs and the discovery tools already do)"
            )
        return self._custom(state, query, ranked, limit)

    async def asearch(self, query: str, limit: int = DEFAULT_LIMIT) -> SearchResult:
        """``search``, awaiting an async ``search=`` function."""
        state = self._current()
        _check_search_arguments(query, limit)
        if self._search is None:
            return self._lexical(state, query, limit)
        ranked = self._search(query, state.tools)
        if inspect.isawaitable(ranked):
            ranked = await ranked
        return self._custom(state, query, ranked, limit)

    def describe(self, names: Sequence[str]) -> str:
        """The declarations of the tools called ``names`` (as search returns them; tool ids
        and an ``external_`` prefix are accepted too), with the types they use."""
        if isinstance(names, str):
            names = [names]
        state = self._current()
        resolved: list[str] = []
        unknown: list[str] = []
        for name in names:
            found = _resolve(state, name)
            if found is None:
                unknown.append(name)
            else:
                resolved.append(found)
        if unknown:
            raise UnknownToolError(unknown, {n: _suggest(state, n) for n in unknown})
        return self._declarations(state).render(resolved)

    def resolve(self, name: str) -> str | None:
        """The catalog name for ``name`` (a name, a tool id, or ``external_<name>``)."""
        return _resolve(self._current(), name)

    # ---------------------------------------------------------------------------------------
    def _lexical(self, state: _State, query: str, limit: int) -> SearchResult:
        hits = self._index(state).search(query)
        matches = tuple(
            SearchMatch(h.entry.name, h.entry.tool_id, h.entry.description, h.score)
            for h in hits[:limit]
        )
        return SearchResult(query, matches, len(hits))

    def _custom(self, state: _State, query: str, ranked: RankedNames, limit: int) -> SearchResult:
        by_name = {e.name: e for e in state.snapshot.entries}
        seen: list[tuple[CatalogEntry, float]] = []
        names = set()
        items = list(ranked)
        for rank, item in enumerate(items):
            name, score = (item, 1.0 - rank / max(len(items), 1)) if isinstance(item, str) else item
            entry = by_name.get(name)
            if entry is None:
                found = _resolve(state, name)
                if found is None:
                    raise ValueError(
                        f"the search= function returned {name!r}, which is not a tool of this "
                        "code tool; return the names of the catalog it was given"
                    )
                entry = by_name[found]
            if entry.name not in names:
                names.add(entry.name)
                seen.append((entry, round(float(score), 4)))
        matches = tuple(SearchMatch(e.name, e.tool_id, e.description, s) for e, s in seen[:limit])
        return SearchResult(query, matches, len(seen))


def _check_search_arguments(query: str, limit: int) -> None:
    if not isinstance(query, str):
        raise TypeError(f"the query must be a string, got {type(query).__name__}")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")


def _close(awaitable: Any) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()


def _resolve(state: _State, name: str) -> str | None:
    if not isinstance(name, str):
        return None
    tools = state.tools
    if name in tools:
        return name
    if name.startswith("external_") and name[len("external_") :] in tools:
        return name[len("external_") :]
    folded = name.casefold()
    for entry in state.snapshot.entries:
        if entry.tool_id == name or entry.name.casefold() == folded:
            return entry.name
    return None


def _suggest(state: _State, name: str) -> list[str]:
    names = [e.name for e in state.snapshot.entries]
    return difflib.get_close_matches(str(name), names, n=3, cutoff=0.6)
