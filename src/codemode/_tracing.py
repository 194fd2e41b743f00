"""OpenTelemetry spans when ``opentelemetry-api`` is installed; nothing otherwise."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

try:
    from opentelemetry import trace as _trace

    _NO_SDK: tuple[type, ...] = (_trace.ProxyTracerProvider, _trace.NoOpTracerProvider)
except ImportError:  # pragma: no cover - exercised when the extra is absent
    _trace = None  # type: ignore[assignment]

__all__ = ["span", "tracing"]


def tracing() -> bool:
    """Whether spans are collected now (an SDK provider is installed)."""
    return _trace is not None and not isinstance(_trace.get_tracer_provider(), _NO_SDK)


@contextlib.contextmanager
def span(name: str, attributes: dict[str, Any]) -> Iterator[Any]:
    """A span named ``name`` (or ``None`` without OpenTelemetry); the caller sets outcome."""
    if _trace is None:
        yield None
        return
    provider = _trace.get_tracer_provider()
    if isinstance(provider, _NO_SDK):  # nobody collects spans: skip the per-call cost
        yield None
        return
    tracer = provider.get_tracer("codemode")
    with tracer.start_as_current_span(name, attributes=attributes) as current:
        yield current
