"""Lexical ranking: BM25F over a tool's weighted fields, with an exact-name fast path and a
threshold below which nothing is returned.

BM25F (Robertson, Zaragoza & Taylor 2004) adds a term's length-normalised frequencies across
fields, each times the field's weight, before saturating once; so a term in the name counts
more than the same term in a parameter's description, and repeating a term in many fields
does not count without bound. Everything but the query is known when the index is built, so
each (term, tool) contribution is computed once and a search is a sum over the query's terms.

Scores are made comparable across queries: a tool's score is the share of the query's
information (the idf of its terms) the tool accounts for, between 0 and 1. A query whose words
no tool uses, or uses only in passing, scores under the threshold for every tool and returns
nothing, rather than the least bad tools.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from ._catalog import CatalogEntry
from ._tokenize import split_words, tokenize

__all__ = ["Hit", "LexicalIndex", "Ranking"]

_FIELDS: Final = ("name", "group", "description", "param_names", "param_text")


@dataclass(frozen=True)
class Ranking:
    """The ranking's parameters. ``weights`` and ``b`` are per field (name, group, description,
    parameter names, parameter text); ``threshold`` is the least score returned; an unknown
    query word counts ``unknown_weight`` times a word used once in the catalog."""

    weights: tuple[float, float, float, float, float] = (3.0, 2.0, 1.0, 0.5, 0.3)
    b: tuple[float, float, float, float, float] = (0.3, 0.0, 0.75, 0.5, 0.75)
    k1: float = 1.2
    threshold: float = 0.2
    unknown_weight: float = 0.5


@dataclass(frozen=True)
class Hit:
    """A tool that fits a query, with its score in [0, 1]."""

    entry: CatalogEntry
    score: float


@dataclass
class _Posting:
    docs: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)


class LexicalIndex:
    """A BM25F index over catalog entries; build one per catalog snapshot."""

    def __init__(self, entries: Sequence[CatalogEntry], ranking: Ranking | None = None) -> None:
        self.entries = tuple(entries)
        self.ranking = ranking or Ranking()
        r = self.ranking
        n = len(self.entries)
        fields = [_fields(e) for e in self.entries]
        avg = [
            (sum(len(f[i]) for f in fields) / n if n else 0.0) or 1.0 for i in range(len(_FIELDS))
        ]
        # Pseudo term frequency per (term, doc): sum over fields of weight * tf / length norm.
        pseudo: dict[str, dict[int, float]] = {}
        for doc, doc_fields in enumerate(fields):
            for i, terms in enumerate(doc_fields):
                if not terms:
                    continue
                norm = 1.0 - r.b[i] + r.b[i] * len(terms) / avg[i]
                unit = r.weights[i] / norm
                for term in terms:
                    slot = pseudo.setdefault(term, {})
                    slot[doc] = slot.get(doc, 0.0) + unit
        self._idf: dict[str, float] = {}
        self._postings: dict[str, _Posting] = {}
        for term, per_doc in pseudo.items():
            idf = math.log(1.0 + (n - len(per_doc) + 0.5) / (len(per_doc) + 0.5))
            self._idf[term] = idf
            posting = _Posting()
            for doc, tf in per_doc.items():
                posting.docs.append(doc)
                posting.weights.append(idf * tf / (r.k1 + tf))
            self._postings[term] = posting
        # A word no tool uses is informative, but a query may hold names and values (a
        # channel, a city) that no catalog spells: it weighs as a rare word, discounted.
        self._unknown_idf = r.unknown_weight * math.log(1.0 + (n - 0.5) / 1.5) if n else 1.0
        self._by_key: dict[str, int] = {}
        for doc, entry in enumerate(self.entries):
            for key in (entry.name, entry.tool_id):
                self._by_key.setdefault(_key(key), doc)
        self._name_words = [tuple(split_words(e.name)) for e in self.entries]
        self._groups = {_key(e.group) for e in self.entries if e.group}

    def search(self, query: str) -> list[Hit]:
        """Every tool that fits ``query``, best first (ties in catalog order)."""
        exact = self._exact(query)
        terms = list(dict.fromkeys(tokenize(query)))
        scores: dict[int, float] = {}
        if terms:
            total = sum(self._idf.get(t, self._unknown_idf) for t in terms)
            for term in terms:
                posting = self._postings.get(term)
                if posting is None:
                    continue
                for doc, weight in zip(posting.docs, posting.weights, strict=True):
                    scores[doc] = scores.get(doc, 0.0) + weight
            threshold = self.ranking.threshold * total
            scores = {doc: s / total for doc, s in scores.items() if s >= threshold}
        for doc, score in exact.items():
            scores[doc] = score  # a name the query spells comes first
        ordered = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        return [Hit(self.entries[doc], round(score, 4)) for doc, score in ordered]

    def _exact(self, query: str) -> dict[int, float]:
        """Tools whose name (or id) the query spells, possibly with ``external_`` (score 1);
        and for a query that reads as the start of names (``github_``, ``github_list``, or a
        group's name), the tools it begins (score 0.9)."""
        text = query.strip()
        if not text or any(ch.isspace() for ch in text):
            return {}
        if text.startswith("external_"):
            text = text[len("external_") :]
        doc = self._by_key.get(_key(text))
        if doc is not None:
            return {doc: 1.0}
        words = tuple(split_words(text))
        prefix_like = len(words) > 1 or text[-1] in "_-./:" or _key(text) in self._groups
        if not words or not prefix_like:
            return {}
        n = len(words)
        return {
            doc: 0.9
            for doc, name_words in enumerate(self._name_words)
            if name_words[:n] == words and len(name_words) > n
        }


def _key(name: str) -> str:
    return name.casefold()


def _fields(entry: CatalogEntry) -> tuple[tuple[str, ...], ...]:
    return (
        entry.name_terms,
        entry.group_terms,
        entry.description_terms,
        entry.param_name_terms,
        entry.param_text_terms,
    )
