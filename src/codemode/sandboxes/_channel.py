"""The host's end of a runner's socket: newline-delimited JSON, handled as it arrives.

An ``asyncio.Protocol`` rather than a ``StreamReader``: each line goes to the listener in the
loop iteration that read it, so a tool call starts (and a reply is written) without first
waking a reader task.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from ._base import SandboxError

__all__ = ["RunnerChannel"]


LineHandler = Callable[[bytes], None]
EndHandler = Callable[[BaseException | None], None]


class RunnerChannel(asyncio.Protocol):
    """Lines from the runner go to the current listener (``listen``), or wait in a queue for
    ``read_line`` while nobody listens. A line over ``limit`` bytes ends the channel."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.transport: asyncio.Transport | None = None
        self._parts: list[bytes] = []  # the line being received, when it spans reads
        self._size = 0
        self._lines: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._on_line: LineHandler | None = None
        self._on_end: EndHandler | None = None
        self._ended = False
        self._error: BaseException | None = None

    # asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._ended:
            return
        start = 0
        newline = data.find(b"\n")
        if newline >= 0 and self._parts:
            self._parts.append(data[:newline])
            line = b"".join(self._parts)
            self._parts.clear()
            self._size = 0
            self._deliver(line)
            start = newline + 1
            newline = data.find(b"\n", start)
        while newline >= 0 and not self._ended:
            self._deliver(data[start:newline])
            start = newline + 1
            newline = data.find(b"\n", start)
        if start < len(data) and not self._ended:
            self._parts.append(data[start:] if start else data)
            self._size += len(data) - start
            if self._size > self.limit:
                self._end(
                    SandboxError(
                        "MessageTooLargeError",
                        f"The sandbox sent a message over the size limit of {self.limit} bytes",
                    )
                )

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(None)

    # the host's side -------------------------------------------------------------------------
    def listen(self, on_line: LineHandler, on_end: EndHandler) -> None:
        """Hand every line to ``on_line`` from now on (queued ones first). ``on_end`` hears
        the end of the channel (None), or what ``on_line`` raised: then nothing more comes."""
        self._on_line = on_line
        self._on_end = on_end
        while self._lines and self._on_line is not None:
            self._deliver(self._lines.popleft())
        if self._ended and self._on_end is not None:
            self._on_end(self._error)
            self.stop_listening()

    def stop_listening(self) -> None:
        """Lines wait in the queue for ``read_line`` again."""
        self._on_line = None
        self._on_end = None

    async def read_line(self) -> bytes | None:
        """The next line nobody listened to; None at the end of the channel."""
        while not self._lines:
            if self._ended:
                if self._error is not None:
                    raise self._error
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._lines.popleft()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    # ---------------------------------------------------------------------------------------
    def _deliver(self, line: bytes) -> None:
        on_line = self._on_line
        if on_line is None:
            self._lines.append(line)
            self._wake()
            return
        try:
            on_line(line)
        except Exception as exc:  # a malformed message: the listener hears why, and no more
            on_end = self._on_end
            self.stop_listening()
            self._ended = True
            self.close()
            if on_end is not None:
                on_end(exc)

    def _end(self, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._error = error
        if error is not None:
            self.close()
        on_end = self._on_end
        self.stop_listening()
        if on_end is not None:
            on_end(error)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
