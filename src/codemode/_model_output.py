"""What the model sees: a code tool's result, logs and discovery output, bounded in size.

A program can return ten thousand rows; the host wants them all, the model's context does not.
Only the model-facing text is bounded (``CodeModeToolResult.to_json()``, the framework adapters,
MCP); the Python result keeps the full value.

Truncation is structural, so the model still reads valid JSON of the same shape: long arrays
keep their first items and end with a marker string (``"… 9,950 more items"``), long strings
end with ``"… (1,234 more characters)"``, objects with many keys get a ``"…"`` key saying how
many were left out, and containers nested too deep become a one-line summary. The least
truncation that fits is found by trying levels from mild to severe. A ``note`` tells the model
that the output was cut and how to ask for less.
"""

from __future__ import annotations

import json
from typing import Any, Final

__all__ = [
    "DEFAULT_MAX_MODEL_OUTPUT_CHARS",
    "MIN_MODEL_OUTPUT_CHARS",
    "bound_json",
    "bound_result_payload",
    "bound_text",
    "json_size",
]

#: About 5,000 tokens: room for a useful answer, small enough to keep a long conversation going.
DEFAULT_MAX_MODEL_OUTPUT_CHARS: Final = 20_000
#: Below this, even the markers and the note would not fit.
MIN_MODEL_OUTPUT_CHARS: Final = 1_000

# Truncation levels, mildest first: (array items, object keys, string characters, depth).
_LEVELS: Final = (
    (1000, 200, 20_000, 64),
    (500, 100, 8_000, 64),
    (200, 60, 4_000, 64),
    (100, 40, 2_000, 64),
    (50, 30, 1_000, 32),
    (20, 20, 500, 32),
    (10, 15, 300, 16),
    (5, 10, 200, 12),
    (3, 8, 120, 8),
    (2, 5, 80, 6),
    (1, 3, 60, 4),
    (1, 2, 40, 3),
    (1, 1, 30, 2),
    (0, 0, 20, 1),
    (0, 0, 10, 0),
)

_NOTE: Final = (
    'The output was cut to fit {limit:,} characters; markers such as "… 9,950 more items" '
    "show where. Return less: filter, aggregate or paginate in the program and return only "
    "what the answer needs."
)


def json_size(value: Any) -> int:
    """Characters of ``value`` as JSON text, the way adapters send it to a model."""
    return len(json.dumps(value, ensure_ascii=False))


class _TooLarge(Exception):
    """A truncation level that cannot fit: stop building it."""


class _Cutter:
    """Cuts one value at one level, counting what it emits so a hopeless level stops early."""

    def __init__(self, level: tuple[int, int, int, int], budget: int, tail_first: bool) -> None:
        self.items, self.keys, self.chars, self.depth = level
        self.budget = budget
        self.tail_first = tail_first  # keep the end of top-level arrays too (logs)
        self.cuts = 0

    def spend(self, n: int) -> None:
        self.budget -= n
        if self.budget < 0:
            raise _TooLarge

    def cut(self, value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return self.cut_string(value)
        if isinstance(value, list):
            if depth >= self.depth and value:
                self.cuts += 1
                self.spend(24)
                return f"… (array of {len(value):,} items)"
            return self.cut_list(value, depth)
        if isinstance(value, dict):
            if depth >= self.depth and value:
                self.cuts += 1
                self.spend(24)
                return f"… (object with {len(value):,} keys)"
            return self.cut_dict(value, depth)
        self.spend(4)
        return value

    def cut_string(self, text: str) -> str:
        if len(text) <= self.chars:
            self.spend(len(text) + 2)
            return text
        self.cuts += 1
        self.spend(self.chars + 32)
        return f"{text[: self.chars]}… ({len(text) - self.chars:,} more characters)"

    def cut_list(self, items: list[Any], depth: int) -> list[Any]:
        self.spend(2)
        if len(items) <= self.items:
            return [self.cut(item, depth + 1) for item in items]
        self.cuts += 1
        left_out = len(items) - self.items
        if self.tail_first and depth == 0:
            head = (self.items + 1) // 2
            tail = self.items - head
            kept_head = [self.cut(item, depth + 1) for item in items[:head]]
            kept_tail = [self.cut(item, depth + 1) for item in items[len(items) - tail :]]
            self.spend(24)
            return [*kept_head, f"… {left_out:,} more lines", *kept_tail]
        kept = [self.cut(item, depth + 1) for item in items[: self.items]]
        self.spend(24)
        return [*kept, f"… {left_out:,} more items"]

    def cut_dict(self, obj: dict[str, Any], depth: int) -> dict[str, Any]:
        self.spend(2)
        out: dict[str, Any] = {}
        for i, (key, item) in enumerate(obj.items()):
            if i >= self.keys:
                self.cuts += 1
                self.spend(24)
                out["…"] = f"{len(obj) - self.keys:,} more keys"
                break
            self.spend(len(str(key)) + 4)
            out[key] = self.cut(item, depth + 1)
        return out


def bound_json(value: Any, max_chars: int, *, tail_first: bool = False) -> tuple[Any, bool]:
    """``value`` cut so that its JSON text fits ``max_chars`` (see the module docstring), and
    whether anything was cut. ``tail_first`` keeps the start and the end of a top-level array
    (for logs, whose last lines often matter most)."""
    if json_size(value) <= max_chars:
        return value, False
    best: Any = None
    low, high = 0, len(_LEVELS) - 1
    found = False
    while low <= high:  # the mildest level that fits
        middle = (low + high) // 2
        cutter = _Cutter(_LEVELS[middle], max_chars, tail_first)
        try:
            candidate = cutter.cut(value)
            fits = json_size(candidate) <= max_chars
        except _TooLarge:
            fits = False
        if fits:
            best, found = candidate, True
            high = middle - 1
        else:
            low = middle + 1
    if not found:  # not even a summary fits: say what it was
        best = _summary(value)
    return best, True


def _summary(value: Any) -> Any:
    if isinstance(value, list):
        return [f"… {len(value):,} items"]
    if isinstance(value, dict):
        return {"…": f"{len(value):,} keys"}
    if isinstance(value, str):
        return f"… ({len(value):,} characters)"
    return value


def bound_text(text: str, max_chars: int, *, advice: str) -> str:
    """``text`` cut at a line break so that it fits ``max_chars``, with a last line that says
    how much was left out and what to do (``advice``)."""
    if len(text) <= max_chars:
        return text
    room = max(max_chars - 120 - len(advice), max_chars // 2)
    cut = text[:room]
    newline = cut.rfind("\n")
    if newline > room // 2:
        cut = cut[:newline]
    return f"{cut}\n… ({len(text) - len(cut):,} more characters: {advice})"


def bound_result_payload(payload: dict[str, Any], max_chars: int) -> dict[str, Any]:
    """A ``CodeModeToolResult`` JSON payload that fits ``max_chars``: an error message keeps up
    to a quarter of the room, the result and the logs share the rest, and a ``note`` says that
    the output was cut."""
    if json_size(payload) <= max_chars:
        return payload
    out = dict(payload)
    note = _NOTE.format(limit=max_chars)
    room = max_chars - len(note) - 16
    error = out.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        message = error["message"]
        limit = max(room // 4, 200)
        if len(message) > limit:
            out["error"] = {
                **error,
                "message": f"{message[:limit]}… ({len(message) - limit:,} more characters)",
            }
    fixed = {k: v for k, v in out.items() if k not in ("result", "logs")}
    room -= json_size(fixed)
    has_result = "result" in out
    logs = out.get("logs")
    if has_result and logs:
        result_room = max(room * 3 // 4, room - json_size(logs))
        out["result"], _ = bound_json(out["result"], max(result_room, 0))
        out["logs"], _ = bound_json(logs, max(room - json_size(out["result"]), 0), tail_first=True)
    elif has_result:
        out["result"], _ = bound_json(out["result"], max(room, 0))
    elif logs:
        out["logs"], _ = bound_json(logs, max(room, 0), tail_first=True)
    out["note"] = note
    return out
