"""The worker's tape on the host: the event order and the clock and random values a program's
realm recorded, gathered from the chunks it reports (with calls, and when idle).

The chunks are untrusted (the program can forge them), but only ever replayed to the same
program: here they are only checked for shape, so a malformed one is dropped, never stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from ..sandboxes._base import DurableRun

__all__ = ["Tape"]

_EVENT = re.compile(r"[sta][0-9]{1,9}")
_MAX_BUFFERED = 1024  # chunks that arrived ahead of a gap (calls queued in the runner)


class Tape:
    """Events and values in recorded order: those loaded from the store, then new ones."""

    def __init__(self, chunks: Iterable[str] = ()) -> None:
        self.events: list[str] = []
        self.values: list[Any] = []
        self._early: dict[tuple[str, int], list[Any]] = {}
        for chunk in chunks:
            try:
                self.add(json.loads(chunk))
            except ValueError:
                continue
        self._saved_events = len(self.events)
        self._saved_values = len(self.values)
        self.replay = DurableRun(events=tuple(self.events), values=tuple(self.values))

    def add(self, journal: Any) -> None:
        """Merge one chunk reported by the worker: ``{e0, e, v0, v}`` (each part optional)."""
        if not isinstance(journal, dict):
            return
        events, values = journal.get("e"), journal.get("v")
        if isinstance(events, list) and all(
            isinstance(e, str) and _EVENT.fullmatch(e) for e in events
        ):
            self._merge("e", self.events, journal.get("e0"), events)
        if isinstance(values, list) and all(
            isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) for v in values
        ):
            self._merge("v", self.values, journal.get("v0"), values)

    def _merge(self, part: str, into: list[Any], offset: Any, items: list[Any]) -> None:
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0 or not items:
            return
        if offset > len(into):  # ahead of a chunk still on its way: keep it for later
            if len(self._early) < _MAX_BUFFERED:
                self._early[(part, offset)] = items
            return
        into.extend(items[len(into) - offset :])
        while (later := self._early.pop((part, len(into)), None)) is not None:
            into.extend(later)

    def unsaved(self) -> str | None:
        """A chunk (JSON text) of what was added since the last call, or None."""
        chunk: dict[str, Any] = {}
        if len(self.events) > self._saved_events:
            chunk["e0"] = self._saved_events
            chunk["e"] = self.events[self._saved_events :]
            self._saved_events = len(self.events)
        if len(self.values) > self._saved_values:
            chunk["v0"] = self._saved_values
            chunk["v"] = self.values[self._saved_values :]
            self._saved_values = len(self.values)
        if not chunk:
            return None
        return json.dumps(chunk, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
