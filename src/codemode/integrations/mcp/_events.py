"""Resumable SSE streams for ``codemode serve --http``.

The streamable HTTP transport lets a client that lost its SSE stream reconnect with
``Last-Event-ID`` and receive what it missed, when the server keeps the stream's events: a
program can run for many seconds, and a proxy or a laptop going to sleep should not lose its
result. The SDK defines the ``EventStore`` interface but ships no implementation; this one keeps
events in memory, bounded, under ids nobody can guess (a client must not replay another
session's stream by guessing an id).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp.types import JSONRPCMessage

__all__ = ["MemoryEventStore"]


class MemoryEventStore(EventStore):
    """The events of every SSE stream, oldest dropped first past ``max_events``."""

    def __init__(self, max_events: int = 10_000) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be at least 1, got {max_events}")
        self._max_events = max_events
        self._events: OrderedDict[EventId, tuple[StreamId, JSONRPCMessage | None]] = OrderedDict()
        self._streams: dict[StreamId, list[EventId]] = {}

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        event_id = secrets.token_urlsafe(16)
        self._events[event_id] = (stream_id, message)
        self._streams.setdefault(stream_id, []).append(event_id)
        while len(self._events) > self._max_events:
            oldest, (oldest_stream, _) = self._events.popitem(last=False)
            ids = self._streams[oldest_stream]
            ids.remove(oldest)
            if not ids:
                del self._streams[oldest_stream]
        return event_id

    async def replay_events_after(
        self, last_event_id: EventId, send_callback: EventCallback
    ) -> StreamId | None:
        """Send the events of ``last_event_id``'s stream that came after it; None when the id
        is unknown (never issued, or dropped as too old)."""
        entry = self._events.get(last_event_id)
        if entry is None:
            return None
        stream_id = entry[0]
        ids = self._streams[stream_id]
        for event_id in ids[ids.index(last_event_id) + 1 :]:
            message = self._events[event_id][1]
            if message is not None:  # a priming event carries no message
                await send_callback(EventMessage(message, event_id))
        return stream_id
