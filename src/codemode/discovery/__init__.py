"""Large catalogs: search, describe and outline the tools a code tool may call.

With discovery on, the model's instructions hold an outline of the catalog instead of every
declaration, and programs find what they need with ``codemode.searchTools`` and
``codemode.describeTools`` (or, outside programs, the ``search_tools`` and ``describe_tools``
tools). Ranking is lexical by default (BM25F over weighted fields, no model, no network) and
pluggable (``search=``).
"""

from ._budget import DEFAULT_TOKEN_BUDGET, estimate_tokens
from ._catalog import CatalogEntry
from ._discovery import (
    Catalog,
    SearchFunction,
    SearchMatch,
    SearchResult,
    UnknownToolError,
)
from ._index import Ranking
from ._outline import Outline, OutlineGroup, build_outline
from ._tokenize import tokenize

__all__ = [
    "DEFAULT_TOKEN_BUDGET",
    "Catalog",
    "CatalogEntry",
    "Outline",
    "OutlineGroup",
    "Ranking",
    "SearchFunction",
    "SearchMatch",
    "SearchResult",
    "UnknownToolError",
    "build_outline",
    "estimate_tokens",
    "tokenize",
]
