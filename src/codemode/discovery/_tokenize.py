"""Words for search: tool names, descriptions and queries split into comparable terms.

Tool names are written in every convention (``createIssue``, ``create_issue``, ``create-issue``,
``github.repos/list``, ``HTTPServer``), descriptions and queries in any language. So:

- camelCase is split *before* lowercasing (``getHTTPResponse`` -> get, http, response);
- anything that is not a letter or a digit separates words (snake, kebab, dots, slashes, the
  ``server_`` prefix of an MCP tool);
- letters of every script are kept; Latin accents are folded (``café`` = ``cafe``); scripts
  written without spaces (Chinese, Japanese) become overlapping character pairs, so a query
  can match part of a run of text;
- a light stemmer conflates plural and verb forms of English words (issues -> issue,
  listing -> list, created -> create), and common English function words are dropped.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterator
from functools import lru_cache
from typing import Final

from ._thesaurus import ABBREVIATIONS

__all__ = ["STOP_WORDS", "split_words", "stem", "text_terms", "tokenize"]

# Runs of letters, digits and combining marks (the marks belong to the letters of scripts
# such as Devanagari); everything else separates words.
# (Written as one character class over text whose underscores are made spaces: ``\w`` less
# ``_`` is every letter and digit, and a single class is twice as fast as an alternation.)
_WORD: Final = re.compile(r"[\w\u0300-\u036f\u0900-\u0dff]+")
_ASCII_RUN: Final = re.compile(r"[A-Za-z0-9]+")
# The same split for ASCII text, as a byte translation (every byte but a letter or a digit
# becomes a space) and a whitespace split: several times faster than the regular expression
# on the long descriptions of a large catalog.
_ASCII_SEPARATORS: Final = bytes(
    c if chr(c).isascii() and chr(c).isalnum() else 0x20 for c in range(256)
)

# Function words that say nothing about what a tool does: the usual English list, less words
# that can (all, up, down, out, off, before, after, not: "list all", "spin up").
STOP_WORDS: Final = frozenset(
    """a about above again against am an and any are as at be because been being below both
    but by can could did do does doing during each every few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just
    let like me more most my myself no nor now of on once only or other our ours ourselves
    own please same she should so some such than that the their theirs them themselves then
    there these they this those through to too until us very want was we were what whatever
    when where which while who whom whose why will with would you your yours yourself
    yourselves""".split()  # noqa: SIM905 - a list of words reads best as text
)


def _is_unspaced(ch: str) -> bool:
    """Characters of scripts written without spaces between words (Han, kana, Thai...)."""
    code = ord(ch)
    return (
        0x3040 <= code <= 0x30FF  # Hiragana, Katakana
        or 0x3400 <= code <= 0x4DBF  # CJK extension A
        or 0x4E00 <= code <= 0x9FFF  # CJK unified ideographs
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0x0E00 <= code <= 0x0EFF  # Thai, Lao
        or 0x20000 <= code <= 0x2FA1F  # CJK extensions B-F, supplement
    )


def _camel_parts(word: str) -> list[str]:
    """``getHTTPResponse2`` -> get, HTTP, Response2: a new part starts at a lower-to-upper
    change, and at the last capital of an acronym followed by a lowercase letter."""
    parts: list[str] = []
    start = 0
    for i in range(1, len(word)):
        prev, cur = word[i - 1], word[i]
        if cur.isupper() and (
            prev.islower()
            or prev.isdigit()
            or (prev.isupper() and i + 1 < len(word) and word[i + 1].islower())
        ):
            parts.append(word[start:i])
            start = i
    parts.append(word[start:])
    return parts


def _fold(word: str) -> str:
    """Lowercase, and drop the accents of Latin letters (other scripts keep their marks)."""
    word = word.casefold()
    if word.isascii():
        return word
    out: list[str] = []
    for ch in unicodedata.normalize("NFKD", word):
        if unicodedata.combining(ch) and out and ord(out[-1]) < 0x0250:
            continue  # an accent on a Latin letter
        out.append(ch)
    return unicodedata.normalize("NFKC", "".join(out))


def split_words(text: str) -> list[str]:
    """Lowercased words of ``text`` in order, camelCase and separators split, unstemmed."""
    words: list[str] = []
    if text.isascii():  # the common case: most words are lowercase or Capitalised
        for run in _ASCII_RUN.findall(text):
            if run.islower() or run.isdigit() or (run[0].isupper() and run[1:].islower()):
                words.append(run.lower())
            else:
                words.extend(_run_words(run))
        return words
    for run in _WORD.findall(text.replace("_", " ")):
        words.extend(_run_words(run))
    return words


# ASCII camelCase: an acronym ends where a capitalised word starts (HTTPResponse -> HTTP,
# Response), a plural acronym keeps its s (IDs, URLs); digits stay with the word before them
# (ec2, oauth2Token -> oauth2, Token).
_ASCII_PARTS: Final = re.compile(
    r"[A-Z]{2,}s(?![a-z])|[A-Z]+(?![a-z])[0-9]*|[A-Z]?[a-z]+[0-9]*|[0-9]+"
)


@lru_cache(maxsize=65536)
def _run_words(run: str) -> tuple[str, ...]:
    """The words of one run of letters and digits (cached: descriptions repeat their words)."""
    plain = run.islower() or run.isdigit() or (run[0].isupper() and run[1:].islower())
    if plain and (run.isascii() or not any(_is_unspaced(ch) for ch in run)):
        return (_fold(run),)
    if run.isascii():
        parts = [part.lower() for part in _ASCII_PARTS.findall(run)]
        # A brand written in camelCase is also one word (GitHub, JavaScript, PostgreSQL).
        return (*parts, run.lower()) if len(parts) > 1 else tuple(parts)
    words: list[str] = []
    for part in _camel_parts(run):
        folded = _fold(part)
        if any(_is_unspaced(ch) for ch in folded):
            words.extend(_unspaced_terms(folded))
        elif folded:
            words.append(folded)
    return tuple(words)


def _unspaced_terms(run: str) -> list[str]:
    """Split a run into spaced words and character pairs of the unspaced parts."""
    terms: list[str] = []
    segment: list[str] = []
    spaced: list[str] = []

    def flush_spaced() -> None:
        if spaced:
            terms.append("".join(spaced))
            spaced.clear()

    def flush_segment() -> None:
        if len(segment) == 1:
            terms.append(segment[0])
        else:
            terms.extend(a + b for a, b in itertools.pairwise(segment))
        segment.clear()

    for ch in run:
        if _is_unspaced(ch):
            flush_spaced()
            segment.append(ch)
        else:
            if segment:
                flush_segment()
            spaced.append(ch)
    flush_spaced()
    if segment:
        flush_segment()
    return terms


_VOWELS: Final = frozenset("aeiouy")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A light English stemmer: plural -s/-es/-ies and verb -ed/-ing endings, and a final -e,
    so that every form of a word meets at one stem (create, creates, created, creating ->
    creat). Words that are not plain lowercase ASCII letters, and short words, are kept."""
    if not word.isascii() or not word.isalpha():
        return word
    if len(word) <= 3:
        # ids -> id, ops -> op; has, yes, bus stay.
        if len(word) == 3 and word[2] == "s" and word[0] in _VOWELS and word[1] not in _VOWELS:
            return word[:2]
        return word
    # (Each ending is looked for only after its last letter matches: most words have none.)
    if word[-1] == "s":
        if word.endswith("ies") and len(word) > 4:
            word = word[:-3] + "y"
        elif word.endswith(("sses", "shes", "ches", "xes", "zes")):
            word = word[:-2]
        elif not word.endswith(("ss", "us", "is")):
            word = word[:-1]
    last = word[-1]
    suffix = 0
    if last == "g" and word.endswith("ing"):
        suffix = 3
    elif last == "d" and word[-2] == "e":
        suffix = 2
    if suffix:
        base = word[:-suffix]
        if len(base) >= 3 and not _VOWELS.isdisjoint(base):
            word = base
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lszaeiou":
                word = word[:-1]  # stopped -> stop, running -> run
    if word[-1] == "e" and len(word) > 3:
        word = word[:-1]
    return word


_MAX_TERMS: Final = 200_000


class _WordTerms(dict[str, tuple[str, ...]]):
    """Word -> its terms, computed on first sight: none for a stop word or a lone letter, the
    full form of an abbreviation (pr -> pull, request), else the stem."""

    def __missing__(self, word: str) -> tuple[str, ...]:
        if word in STOP_WORDS or (len(word) == 1 and word.isalpha() and word.isascii()):
            value: tuple[str, ...] = ()
        else:
            full = ABBREVIATIONS.get(word)
            value = (stem(word),) if full is None else tuple(stem(w) for w in full)
        self[word] = value
        return value


class _RunTerms(dict[str, tuple[str, ...]]):
    """Run of letters and digits -> its terms, computed on first sight: a catalog repeats its
    words, and looking them up is the loop that building an index spends its time in."""

    def __missing__(self, run: str) -> tuple[str, ...]:
        if run.islower() and run.isascii():  # most runs: one plain word
            value = _WORD_TERMS[run]
        elif run.isascii() and run[0].isupper() and run[1:].islower():  # Capitalised
            value = self[run.lower()]
        else:
            words = _run_words(run)
            value = (
                _WORD_TERMS[words[0]]
                if len(words) == 1
                else tuple(itertools.chain.from_iterable(map(_WORD_TERMS.__getitem__, words)))
            )
        self[run] = value
        return value


_WORD_TERMS = _WordTerms()
_RUN_TERMS = _RunTerms()


def tokenize(text: str) -> list[str]:
    """The search terms of ``text``: split words, stop words dropped, abbreviations written
    out, stemmed."""
    return list(_terms(text))


def _terms(text: str) -> Iterator[str]:
    if len(_RUN_TERMS) > _MAX_TERMS:
        _RUN_TERMS.clear()
        _WORD_TERMS.clear()
    if text.isascii():
        runs = text.encode("ascii").translate(_ASCII_SEPARATORS).decode("ascii").split()
    else:
        runs = _WORD.findall(text.replace("_", " "))
    return itertools.chain.from_iterable(map(_RUN_TERMS.__getitem__, runs))


_MAX_TEXTS: Final = 20_000
_TEXT_TERMS: dict[str, tuple[str, ...]] = {}


def text_terms(text: str) -> tuple[str, ...]:
    """``tokenize(text)`` as a tuple, remembered per distinct text: catalogs repeat whole
    descriptions and parameter lists (a server deployed twice, ``owner``/``repo`` on every
    GitHub tool), and a text seen before costs a dictionary lookup."""
    terms = _TEXT_TERMS.get(text)
    if terms is None:
        if len(_TEXT_TERMS) >= _MAX_TEXTS:
            _TEXT_TERMS.clear()
        terms = _TEXT_TERMS[text] = tuple(_terms(text))
    return terms


def clear_caches() -> None:
    """Forget every remembered word and text (for measuring a cold start)."""
    _TEXT_TERMS.clear()
    _RUN_TERMS.clear()
    _WORD_TERMS.clear()
    _run_words.cache_clear()
    stem.cache_clear()
