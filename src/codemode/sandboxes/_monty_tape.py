"""What a durable Python program observes from outside, recorded on one pass and replayed on
the next (``MontySandbox``'s half of the journal in ``codemode.durable``).

A resume runs the program again from its start in a fresh Monty session, as a resume of a
TypeScript program does in a fresh realm. Monty itself is deterministic: the same program given
the same answers makes the same calls in the same order (``hash`` and ``id`` are not randomised,
sets keep insertion order). Everything else it can observe reaches the host as a snapshot the
host answers, so the host records each answer, in the order the program observed them:

- ``["d", seconds]``: a clock read (the ``time`` module's clocks, ``datetime.now``,
  ``date.today``), as epoch seconds; the clock never goes back within an execution;
- ``["r", hex]``: 32 bytes of entropy behind an ``os.urandom(n)`` request (``random`` seeds
  from one on its first draw); the ``n`` bytes are SHAKE-256 of them, so a seed costs 64
  characters of record however many bytes were asked for;
- ``["s", seconds]``: a ``time.sleep`` that ended (not waited again on replay);
- ``["w", [n, ...]]``: at a wait, which futures were resolved for the program, in the order
  given (futures are numbered in the order they were made: tool calls, searches and
  ``asyncio.sleep``s). This is the order in which results reached the program, the one
  thing the host's timing decides: replaying it replays ``gather``, ``try/except`` and
  everything else that ran between the results.

The host records these itself (the program cannot forge them), reports them with each call and
when idle, and the journal stores them with its call records. We keep to the journal instead of
Monty's ``snapshot.dump()``: every store, the CLI and the adapters already speak it, a crash
mid-call leaves a journal but no dump, and a dump is opaque interpreter state that Monty asks
be loaded only from a trusted producer of the same build, which a shared database is not.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

__all__ = ["MAX_VALUES", "ReplayDiverged", "Tape", "TapeFull"]

MAX_VALUES: Final = 200_000  # entries one pass may add: as many clock reads as in TypeScript
_SEED_BYTES: Final = 32
_KINDS: Final = {
    "d": "read the clock",
    "r": "drew random bytes",
    "s": "slept with time.sleep()",
    "w": "received the results of its calls",
}


class ReplayDiverged(Exception):
    """On replay, the program observed something else than its first run did at this point."""


class TapeFull(Exception):
    """The program observed more than a durable execution records."""


class Tape:
    """One pass's tape: ``recorded`` (from earlier passes) is replayed in order, then new
    entries are recorded. ``on_live`` is called once, when the replay is used up."""

    def __init__(self, recorded: Sequence[Any], on_live: Callable[[], None]) -> None:
        self._recorded = list(recorded)
        self._next = 0
        self._new: list[list[Any]] = []
        self._reported = 0
        self._on_live = on_live
        self._last_clock = -math.inf

    @property
    def replaying(self) -> bool:
        return self._next < len(self._recorded)

    # -- what the program observes ---------------------------------------------------------
    def clock(self) -> float:
        """Epoch seconds, never earlier than a value the execution has already seen."""
        if self.replaying:
            value = self._take("d")
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise self._diverged("d", value)
            seconds = float(value)
        else:
            seconds = max(time.time(), self._last_clock)
            self._put("d", seconds)
        self._last_clock = max(self._last_clock, seconds)
        return seconds

    def entropy(self, size: int) -> bytes:
        """``size`` random bytes, from a recorded seed."""
        if self.replaying:
            value = self._take("r")
            try:
                seed = bytes.fromhex(value) if isinstance(value, str) else b""
            except ValueError:
                seed = b""
            if len(seed) != _SEED_BYTES:
                raise self._diverged("r", value)
        else:
            seed = os.urandom(_SEED_BYTES)
            self._put("r", seed.hex())
        return hashlib.shake_256(seed).digest(size)

    def replay_sleep(self) -> bool:
        """True when this ``time.sleep`` ended on an earlier pass: do not wait again."""
        if not self.replaying:
            return False
        self._take("s")
        return True

    def slept(self, seconds: float) -> None:
        self._put("s", seconds)

    def next_delivery(self) -> list[int] | None:
        """While replaying: the futures resolved at this wait on the first run (not consumed
        until ``delivered``); None once live."""
        if not self.replaying:
            return None
        entry = self._recorded[self._next]
        batch = entry[1] if _is_entry(entry) and entry[0] == "w" else None
        if not (
            isinstance(batch, list)
            and batch
            and all(isinstance(n, int) and not isinstance(n, bool) for n in batch)
        ):
            raise self._diverged("w", batch)
        return batch

    def delivered(self, futures: list[int]) -> None:
        """The futures just resolved for the program (the recorded ones, while replaying)."""
        if self.replaying:
            self._take("w")
        else:
            self._put("w", futures)

    def diverged_delivery(self, recorded: list[int], waiting: list[int]) -> ReplayDiverged:
        """The error for a wait whose recorded results are not what the program waits on."""
        return ReplayDiverged(
            f"On resume, the program waited on futures {waiting} where its first run received "
            f"the results of {recorded} (value {self._next + 1} of its record); the program is "
            "not deterministic."
        )

    # -- what the host stores ---------------------------------------------------------------
    def report(self) -> dict[str, Any]:
        """The entries added since the last report, as the journal's tape takes them."""
        if self._reported == len(self._new):
            return {}
        chunk = {"v0": len(self._recorded) + self._reported, "v": self._new[self._reported :]}
        self._reported = len(self._new)
        return chunk

    # -- internals --------------------------------------------------------------------------
    def _take(self, kind: str) -> Any:
        entry = self._recorded[self._next]
        if not _is_entry(entry) or entry[0] != kind:
            raise ReplayDiverged(
                f"On resume, the program {_KINDS[kind]} where its first run "
                f"{_KINDS.get(entry[0] if _is_entry(entry) else '', 'did something else')} "
                f"(value {self._next + 1} of its record); the program is not deterministic."
            )
        self._next += 1
        if self._next == len(self._recorded):
            self._on_live()
        return entry[1]

    def _put(self, kind: str, value: Any) -> None:
        if len(self._new) >= MAX_VALUES:
            if kind in ("d", "r"):  # as the TypeScript runner says it
                raise TapeFull(
                    f"The program read the clock or random values more than {MAX_VALUES} "
                    "times; a durable execution records each read. Read the clock once and "
                    "reuse it."
                )
            raise TapeFull(
                f"The program slept or waited for results more than {MAX_VALUES} times; a "
                "durable execution records each. Make fewer, larger calls, and sleep less."
            )
        self._new.append([kind, value])

    def _diverged(self, kind: str, value: Any) -> ReplayDiverged:
        return ReplayDiverged(
            f"On resume, the record of what the program {_KINDS[kind]} is unreadable at value "
            f"{self._next + 1} ({str(value)[:60]!r}); the execution cannot be replayed."
        )


def _is_entry(entry: Any) -> bool:
    return isinstance(entry, list | tuple) and len(entry) == 2 and isinstance(entry[0], str)
