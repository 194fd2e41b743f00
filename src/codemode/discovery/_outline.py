"""The outline of a large catalog: its groups, how many tools each holds, and a few names.

The outline is what the model reads instead of every declaration, so it is bounded: at most
``max_groups`` groups are shown (the largest first), each with at most ``examples`` names, and
the rest is summed up in one line. Examples are chosen to cover different words of the group's
names (``create_issue``, ``search_code``, ``list_pull_requests`` rather than three
``get_*``), so that the model sees what kinds of tools exist.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ._catalog import CatalogEntry

__all__ = ["Outline", "OutlineGroup", "build_outline"]

DEFAULT_MAX_GROUPS: Final = 24
DEFAULT_EXAMPLES: Final = 3


@dataclass(frozen=True)
class OutlineGroup:
    """One group: its name (None for the tools in no group), size and example tool names."""

    name: str | None
    count: int
    examples: tuple[str, ...]


@dataclass(frozen=True)
class Outline:
    """The groups shown, largest first (ungrouped tools last), and what was left out."""

    total: int
    groups: tuple[OutlineGroup, ...]
    hidden_groups: tuple[str, ...]  # names of the groups not shown, largest first
    hidden_tools: int  # how many tools those groups hold


def build_outline(
    entries: Sequence[CatalogEntry],
    *,
    max_groups: int = DEFAULT_MAX_GROUPS,
    examples: int = DEFAULT_EXAMPLES,
) -> Outline:
    """The outline of ``entries`` (see the module docstring)."""
    members: dict[str | None, list[CatalogEntry]] = {}
    for entry in entries:
        members.setdefault(entry.group, []).append(entry)
    grouped = sorted(
        ((name, items) for name, items in members.items() if name is not None),
        key=lambda item: (-len(item[1]), item[0] or ""),
    )
    ungrouped = members.get(None, [])
    room = max_groups - (1 if ungrouped else 0)
    if len(grouped) == room + 1:
        room += 1  # a line for one group costs no more than a line saying it was left out
    shown = grouped[:room]
    hidden = grouped[room:]
    groups = [OutlineGroup(name, len(items), _examples(items, examples)) for name, items in shown]
    if ungrouped:
        groups.append(OutlineGroup(None, len(ungrouped), _examples(ungrouped, examples)))
    return Outline(
        total=len(entries),
        groups=tuple(groups),
        hidden_groups=tuple(name for name, _ in hidden if name is not None),
        hidden_tools=sum(len(items) for _, items in hidden),
    )


def _examples(items: Sequence[CatalogEntry], count: int) -> tuple[str, ...]:
    """Names that cover the group's most common words, each adding words not yet shown."""
    frequency = Counter(term for entry in items for term in set(entry.name_terms))
    chosen: list[CatalogEntry] = []
    covered: set[str] = set()
    candidates = list(items)
    while candidates and len(chosen) < count:

        def gain(entry: CatalogEntry) -> tuple[float, int, str]:
            terms = set(entry.name_terms)
            new = terms - covered
            # Common words say what the group does; a name made only of them reads as typical,
            # and words already shown add nothing.
            return (-sum(frequency[t] for t in new) / (1 + len(terms)), len(entry.name), entry.name)

        best = min(candidates, key=gain)
        chosen.append(best)
        covered.update(best.name_terms)
        candidates.remove(best)
    return tuple(entry.name for entry in chosen)
