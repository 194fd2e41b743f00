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
nothing, rather than the least bad tools. So does a query whose only words a tool shares are
generic verbs: "convert 100 euros to yen" is not a task for ``convert_time``.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ._catalog import CatalogEntry
from ._thesaurus import GENERIC_WORDS, RELATED_WORDS
from ._tokenize import split_words, stem, tokenize

__all__ = ["Hit", "LexicalIndex", "Ranking"]

_FIELDS: Final = ("name", "group", "description", "param_names", "param_text")


@dataclass(frozen=True)
class Ranking:
    """The ranking's parameters. ``weights`` and ``b`` are per field (name, group, description,
    parameter names, parameter text); ``threshold`` is the least score returned; a query word
    that no tool uses counts ``unknown_weight`` times a word used by one tool (a literal such as
    a file name or a number that no tool uses does not count); a related word (``_thesaurus``)
    matches at ``related_weight`` of the query word's own weight; with ``object_required``, a
    query that says what it is about (any word but the generic verbs and modifiers of
    ``_thesaurus.GENERIC_WORDS``) returns only tools that match one of those words."""

    weights: tuple[float, float, float, float, float] = (3.0, 2.0, 1.0, 0.5, 0.3)
    b: tuple[float, float, float, float, float] = (0.3, 0.0, 0.75, 0.5, 0.75)
    k1: float = 1.2
    threshold: float = 0.2
    unknown_weight: float = 0.7
    related_weight: float = 0.6
    thesaurus: bool = True
    name_weight: float = 0.2
    object_required: bool = True


@dataclass(frozen=True)
class Hit:
    """A tool that fits a query, with its score in [0, 1]."""

    entry: CatalogEntry
    score: float


@dataclass(frozen=True)
class _QueryTerm:
    term: str
    literal: bool  # a file name, number, channel or proper name: an argument, not the task
    related: tuple[str, ...]
    generic: bool = False  # says what to do, not to what (get, set, write, latest: _thesaurus)


class LexicalIndex:
    """A BM25F index over catalog entries; build one per catalog snapshot."""

    def __init__(self, entries: Sequence[CatalogEntry], ranking: Ranking | None = None) -> None:
        self.entries = tuple(entries)
        self.ranking = ranking or Ranking()
        r = self.ranking
        n = self._n = len(self.entries)
        fields = [_fields(e) for e in self.entries]
        avg = [
            (sum(len(f[i]) for f in fields) / n if n else 0.0) or 1.0 for i in range(len(_FIELDS))
        ]
        # A term's pseudo frequency in a tool is the sum over the tool's fields of the field's
        # weight times the term's count, over the field's length norm. A catalog repeats whole
        # fields (``owner repo`` on every GitHub tool; a server deployed twice; the catalog
        # hands out one tuple per distinct text), so the index is kept per distinct field, a
        # "slot" (its unit weight and the tools that hold it), with each term's slots listed
        # once per occurrence. Building it is one pass over the distinct fields' words; a
        # term's frequencies, idf and saturation are made when a query first asks for it.
        occurrences: defaultdict[str, list[int]] = defaultdict(list)
        slot_of: dict[tuple[int, int], int] = {}
        self._slot_unit: list[float] = []
        self._slot_docs: list[list[int]] = []
        weights, b = r.weights, r.b
        for doc, doc_fields in enumerate(fields):
            for i, terms in enumerate(doc_fields):
                if not terms:
                    continue
                field_key = (i, id(terms))
                slot = slot_of.get(field_key)
                if slot is not None:
                    self._slot_docs[slot].append(doc)
                    continue
                slot = slot_of[field_key] = len(self._slot_unit)
                self._slot_unit.append(weights[i] / (1.0 - b[i] + b[i] * len(terms) / avg[i]))
                self._slot_docs.append([doc])
                for term in terms:
                    occurrences[term].append(slot)
        self._occurrences: dict[str, list[int]] = occurrences
        self._tf: dict[str, dict[int, float]] = {}
        self._postings: dict[str, dict[int, float]] = {}
        # A word no tool uses is informative, but a query may hold names and values (a
        # channel, a city) that no catalog spells: it weighs as a rare word, discounted.
        self._unknown_idf = r.unknown_weight * math.log(1.0 + (n - 0.5) / 1.5) if n else 1.0
        # Made by the first query that needs them:
        self._by_key: dict[str, int] | None = None  # name or id -> tool (one-word queries)
        self._groups: set[str] | None = None
        self._name_words: list[tuple[str, ...]] | None = None  # prefix queries
        self._name_terms: list[tuple[str, ...] | None] = [None] * n  # each name's distinct terms

    def search(self, query: str) -> list[Hit]:
        """Every tool that fits ``query``, best first (ties in catalog order)."""
        exact = self._exact(query)
        related_weight = self.ranking.related_weight
        scores: dict[int, float] = {}
        total = 0.0
        words: list[str] = []
        related_seen: list[tuple[str, ...]] = []
        object_required = self.ranking.object_required
        has_object = False  # the query says what to act on, not only the action
        on_object: set[int] = set()  # tools that match a word of that
        for qt in self._query_terms(query):
            words.append(qt.term)
            if not qt.generic and not qt.literal:
                has_object = True
            related_seen.append(qt.related)
            idf = self._idf(qt.term)
            related = [t for t in qt.related if t in self._occurrences]
            if idf is None:
                if related:  # the catalog says it in other words
                    idf = max(self._idf(t) or 0.0 for t in related)
                elif qt.literal:
                    continue
                else:
                    total += self._unknown_idf
                    continue
            total += idf
            best: dict[int, float] = dict(self._posting(qt.term))
            for term in related:
                for doc, sat in self._posting(term).items():
                    value = related_weight * sat
                    if value > best.get(doc, 0.0):
                        best[doc] = value
            for doc, sat in best.items():
                scores[doc] = scores.get(doc, 0.0) + idf * sat
            if object_required and not qt.generic:
                on_object.update(best)
        if object_required and has_object:
            # A tool that shares only the verb (``set`` for "set an alarm", ``convert`` for
            # "convert euros to yen") does that to something else: it does not fit.
            scores = {doc: s for doc, s in scores.items() if doc in on_object}
        if total > 0:
            floor = self.ranking.threshold * total
            scores = {doc: min(s / total, 1.0) for doc, s in scores.items() if s >= floor}
        else:
            scores = {}
        if scores and self.ranking.name_weight:
            # A name the query says in full (list_pull_requests for "list the open pull
            # requests") fits better than one it says half of (update_pull_request_state).
            said = set(words)
            for term_related in related_seen:
                said.update(term_related)
            w = self.ranking.name_weight
            name_terms = self._name_terms
            for doc in scores:
                name = name_terms[doc]
                if name is None:
                    name = name_terms[doc] = tuple(dict.fromkeys(self.entries[doc].name_terms))
                if name:
                    cover = sum(1 for t in name if t in said) / len(name)
                    scores[doc] = (1 - w) * scores[doc] + w * cover * scores[doc] ** 0.5
        for doc, score in exact.items():
            scores[doc] = score  # a name the query spells comes first
        # (Equal scores reached by summing in another order may differ in the last bits: ties
        # are ties to 9 places, and keep catalog order.)
        ordered = sorted(scores.items(), key=lambda item: (-round(item[1], 9), item[0]))
        return [Hit(self.entries[doc], round(score, 4)) for doc, score in ordered]

    def _frequencies(self, term: str) -> dict[int, float]:
        """Tool -> the term's pseudo frequency in it (empty if no tool uses the term)."""
        tf = self._tf.get(term)
        if tf is None:
            tf = {}
            units, docs = self._slot_unit, self._slot_docs
            for slot in self._occurrences.get(term, ()):
                unit = units[slot]
                for doc in docs[slot]:
                    tf[doc] = tf.get(doc, 0.0) + unit
            self._tf[term] = tf
        return tf

    def _idf(self, term: str) -> float | None:
        """The term's inverse document frequency (BM25's), or None if no tool uses it."""
        if term not in self._occurrences:
            return None
        df = len(self._frequencies(term))
        return math.log(1.0 + (self._n - df + 0.5) / (df + 0.5))

    def _posting(self, term: str) -> dict[int, float]:
        """Tool -> the term's saturated frequency in it, tf / (k1 + tf), made on first use."""
        posting = self._postings.get(term)
        if posting is None:
            k1 = self.ranking.k1
            posting = {doc: tf / (k1 + tf) for doc, tf in self._frequencies(term).items()}
            self._postings[term] = posting
        return posting

    def _query_terms(self, query: str) -> list[_QueryTerm]:
        """The query's terms, each marked literal or not, with its related terms."""
        out: dict[str, _QueryTerm] = {}
        quote = ""  # the quote mark of a quoted string the words are inside of
        words_and_literal: list[tuple[str, bool]] = []
        for position, raw in enumerate(query.split()):
            if quote:
                words_and_literal.append((raw, True))
                if raw.rstrip(".,;:!?)").endswith(quote):
                    quote = ""
                continue
            if raw[:1] in _QUOTES and not raw.rstrip(".,;:!?)").endswith(_QUOTES[raw[0]]):
                quote = _QUOTES[raw[0]]
            words_and_literal.append((raw, _is_literal(raw, position)))
        if words_and_literal and all(literal for _, literal in words_and_literal):
            # nothing but names and values: search for them
            words_and_literal = [(raw, False) for raw, _ in words_and_literal]
        for raw, literal in words_and_literal:
            if literal:
                continue  # an argument (a name, a value), not the task: it does not rank
            for run in _RUN.findall(raw):
                words = split_words(run)
                if len(words) > 2 and words[-1] == run.lower():
                    # camelCase: one known word (GitHub) or its parts (getIssues)
                    words = [words[-1]] if stem(words[-1]) in self._occurrences else words[:-1]
                for word in words:
                    for term in tokenize(word):
                        if term in out:
                            continue
                        related = () if not self.ranking.thesaurus else _RELATED.get(term, ())
                        out[term] = _QueryTerm(term, literal, related, term in _GENERIC_TERMS)
        return list(out.values())

    def _exact(self, query: str) -> dict[int, float]:
        """Tools whose name (or id) the query spells, possibly with ``external_`` (score 1);
        and for a query that reads as the start of names (``github_``, ``github_list``, or a
        group's name), the tools it begins (score 0.9)."""
        text = query.strip()
        if not text or any(ch.isspace() for ch in text):
            return {}
        if text.startswith("external_"):
            text = text[len("external_") :]
        if self._by_key is None or self._groups is None:
            by_key: dict[str, int] = {}
            for position, entry in enumerate(self.entries):
                for key in (entry.name, entry.tool_id):
                    by_key.setdefault(_key(key), position)
            self._groups = {_key(e.group) for e in self.entries if e.group}
            self._by_key = by_key
        doc = self._by_key.get(_key(text))
        if doc is not None:
            return {doc: 1.0}
        words = tuple(split_words(text))
        prefix_like = len(words) > 1 or text[-1] in "_-./:" or _key(text) in self._groups
        if not words or not prefix_like:
            return {}
        if self._name_words is None:
            self._name_words = [tuple(split_words(e.name)) for e in self.entries]
        n = len(words)
        return {
            doc: 0.9
            for doc, name_words in enumerate(self._name_words)
            if name_words[:n] == words and len(name_words) > n
        }


_QUOTES: Final = {"'": "'", '"': '"', "`": "`", "\u2018": "\u2019", "\u201c": "\u201d"}
_RUN: Final = re.compile(r"(?:[^\W_]|[\u0300-\u036f\u0900-\u0dff])+")
_INNER_PUNCTUATION: Final = re.compile(r"\w[./#@:\\_-]+\w")


def _is_literal(raw: str, position: int) -> bool:
    """Whether a query word is an argument rather than the task: a number, a file name or
    path, a #channel or @handle, a quoted string, a capitalised name inside the sentence."""
    word = raw.strip("\"'`()[]{}<>,;!?")
    if not word:
        return False
    if raw[:1] in "\"'`" or word[:1] in "#@$" or any(ch.isdigit() for ch in word):
        return True
    if _INNER_PUNCTUATION.search(word.rstrip(".:")):
        return True
    return position > 0 and word[0].isupper() and not word.isupper()


def _related_terms() -> dict[str, tuple[str, ...]]:
    related: dict[str, set[str]] = {}
    for word, others in RELATED_WORDS.items():
        for term in tokenize(word) or [word]:
            slot = related.setdefault(term, set())
            for other in others:
                slot.update(t for t in tokenize(other) if t != term)
    return {term: tuple(sorted(others)) for term, others in related.items()}


_RELATED: Final = _related_terms()
_GENERIC_TERMS: Final = frozenset(t for word in GENERIC_WORDS for t in tokenize(word))


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
