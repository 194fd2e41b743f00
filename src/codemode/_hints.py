"""Hints that turn an error into a fix the model can make without re-reading its instructions:
the functions that do exist when it called one that does not, and the closest of them."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

__all__ = ["called_in", "undefined_function_hint"]

_LISTED = 8  # a catalog this small is listed whole; a larger one by its closest names


def _normal(name: str) -> str:
    """``external_get_users``, ``getUsers`` and ``get-users`` all become ``getusers``."""
    bare = name.removeprefix("external_")
    return re.sub(r"[^0-9a-z]", "", bare.lower())


def _similarity(a: str, b: str) -> float:
    """How alike two normalised names are, 0 to 1; one inside the other (``addnumbers`` and
    ``add``) counts as alike as a near miss."""
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    short, long = sorted((a, b), key=len)
    if len(short) >= 3 and short in long:
        ratio = max(ratio, 0.8)
    return ratio


def _closest(name: str, available: Sequence[str], n: int) -> list[str]:
    target = _normal(name)
    scored = []
    for candidate in available:
        similarity = _similarity(target, _normal(candidate))
        if similarity >= 0.6:
            scored.append((-similarity, candidate))
    return [candidate for _, candidate in sorted(scored)[:n]]


def called_in(code: str, name: str, line: int | None) -> bool:
    """Whether ``name`` is called (``name(``) on ``line`` of ``code`` (anywhere when unknown)."""
    lines = code.split("\n")
    text = lines[line - 1] if line is not None and 1 <= line <= len(lines) else code
    return re.search(rf"(?<![\w$.]){re.escape(name)}\s*\(", text) is not None


def undefined_function_hint(name: str, available: Sequence[str]) -> str:
    """What to say after ``<name> is not defined``: the functions that exist (all of a small
    catalog, the closest few of a large one, with the count) and the likeliest one meant."""
    closest = _closest(name, available, 5)
    guess = f" (did you mean {closest[0]}?)" if closest else ""
    if not available:
        return "No external_* functions are available to this program."
    if len(available) <= _LISTED:
        return f"Available: {', '.join(available)}{guess}."
    if closest:
        return (
            f"{len(available)} functions are available; the closest: {', '.join(closest)}{guess}."
        )
    return (
        f"{len(available)} functions are available and none has a name close to this one; "
        "see the declarations in your instructions."
    )
