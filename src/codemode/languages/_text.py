"""Text every language's instructions share: the timeout in words, the outline of a catalog
too large to declare, and the discovery contract built around a language's own contract."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..discovery import Outline

__all__ = ["discovery_contract", "format_timeout", "render_outline"]


def format_timeout(timeout_ms: int) -> str:
    if timeout_ms % 1000 == 0:
        seconds = timeout_ms // 1000
        return f"{seconds} second" + ("" if seconds == 1 else "s")
    return f"{timeout_ms} ms"


def render_outline(outline: Outline) -> str:
    """The outline as the model reads it: a line per group, then what was left out."""
    lines = []
    for group in outline.groups:
        label = f"{group.name}_*" if group.name is not None else "other"
        more = ", …" if group.count > len(group.examples) else ""
        lines.append(f"- {label} ({group.count}): {', '.join(group.examples)}{more}")
    if outline.hidden_groups:
        names = ", ".join(f"{name}_*" for name in outline.hidden_groups[:20])
        rest = len(outline.hidden_groups) - 20
        tail = f" and {rest} more" if rest > 0 else ""
        lines.append(
            f"- {len(outline.hidden_groups)} more groups ({outline.hidden_tools} functions): "
            f"{names}{tail}"
        )
    return "\n".join(lines)


def discovery_contract(
    contract: str,
    discovery: str,
    *,
    pinned_count: int,
    pinned_block: str,
    outline: Outline,
    discovery_tools: tuple[str, str],
) -> str:
    """``contract`` (a language's, rendered with no declarations) with its list of functions
    replaced by ``discovery`` (that language's template: how to search, and the outline), then
    the pinned declarations' block, if any."""
    head, marker, _ = contract.partition("Available functions:")
    if not marker:  # the contract's wording changed: the tests say where to look
        raise AssertionError("the contract no longer has an 'Available functions:' section")
    if not pinned_block:
        pinned_note = ""
    elif pinned_count == 1:
        pinned_note = "The one declared at the end is always there. "
    else:
        pinned_note = f"The {pinned_count} declared at the end are always there. "
    text = head + discovery.format(
        total=outline.total,
        pinned=pinned_note,
        search_tool=discovery_tools[0],
        describe_tool=discovery_tools[1],
        outline=render_outline(outline),
    )
    return text + pinned_block
