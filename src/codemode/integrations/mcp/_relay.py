"""What the gateway passes from upstream servers back to its own client.

While ``codemode serve`` runs a program for one of its client's requests, the program's calls go
to upstream servers, which may report progress and send log messages. Those belong to the
client's request: progress is relayed as progress of that request (when the client asked for
progress), and log messages as log messages related to it. The request is found through a
context variable that the server sets for the execution; the bridge's call tasks inherit it.

Not relayed: upstream sampling and elicitation requests (the SDK answers them with its default
"not supported" error), resource and list-changed notifications.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import mcp.types as mcp_types
from mcp.server.session import ServerSession

__all__ = ["GatewayRequest", "LogRelay", "current_request"]


@dataclass(eq=False)
class GatewayRequest:
    """The client request an execution serves, and how much progress it has been told."""

    session: ServerSession
    request_id: mcp_types.RequestId | None
    progress_token: mcp_types.ProgressToken | None
    _progress: int = field(default=0, init=False)

    async def progress(
        self, source: str, progress: float, total: float | None, message: str | None
    ) -> None:
        """Relay one upstream progress notification. Several upstream calls may run at once,
        so the relayed value counts notifications (progress must only grow) and the message
        says which call reported what."""
        if self.progress_token is None:
            return
        self._progress += 1
        detail = message or (f"{progress:g}/{total:g}" if total else f"{progress:g}")
        await self.session.send_progress_notification(
            self.progress_token,
            self._progress,
            message=f"{source}: {detail}",
            related_request_id=None if self.request_id is None else str(self.request_id),
        )

    async def log(self, source: str, params: mcp_types.LoggingMessageNotificationParams) -> None:
        """Relay one upstream log message, named after the server that sent it."""
        logger = source if params.logger is None else f"{source}.{params.logger}"
        await self.session.send_log_message(
            params.level, params.data, logger=logger, related_request_id=self.request_id
        )


current_request: ContextVar[GatewayRequest | None] = ContextVar(
    "codemode_gateway_request", default=None
)


class LogRelay:
    """An upstream server's log messages, sent to the gateway requests with a call to it in
    flight (a message that arrives while none is goes nowhere: it belongs to no request)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._listening: Counter[GatewayRequest] = Counter()

    @contextmanager
    def listening(self, request: GatewayRequest | None) -> Iterator[None]:
        """While a call for ``request`` is in flight."""
        if request is None:
            yield
            return
        self._listening[request] += 1
        try:
            yield
        finally:
            self._listening[request] -= 1
            if not self._listening[request]:
                del self._listening[request]

    async def __call__(self, params: mcp_types.LoggingMessageNotificationParams) -> None:
        for request in list(self._listening):
            try:
                await request.log(self.source, params)
            except Exception:
                continue


def progress_relay(request: GatewayRequest | None, source: str) -> Any:
    """A ``progress_callback`` for ``ClientSession.call_tool`` that relays to ``request``."""
    if request is None or request.progress_token is None:
        return None

    async def relay(progress: float, total: float | None, message: str | None) -> None:
        await request.progress(source, progress, total, message)

    return relay
