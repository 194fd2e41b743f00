"""JSON on the per-call path: pydantic-core's parser and serialiser (written in Rust, several
times faster than the standard library's), with ``json`` behind them for what they refuse."""

from __future__ import annotations

import json
from typing import Any

import pydantic_core

__all__ = ["dumps", "dumps_line", "loads"]


def loads(data: bytes | str) -> Any:
    """Parse JSON text. Lone surrogates (``JSON.stringify`` writes them as ``\\ud800`` escapes)
    are refused by pydantic-core but kept by ``json``, whose error also words any real fault."""
    try:
        return pydantic_core.from_json(data)
    except ValueError:
        return json.loads(data)


def dumps(value: Any) -> bytes:
    """JSON text as bytes. Raises ``ValueError`` for NaN and Infinity (JavaScript cannot parse
    them); the bytes are looked at again only when they might hold one."""
    try:
        data = pydantic_core.to_json(value)
    except pydantic_core.PydanticSerializationError:  # e.g. a lone surrogate
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
    if b"NaN" in data or b"Infinity" in data:  # maybe only inside a string: check
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
    return data


def dumps_line(message: Any) -> bytes:
    """One line of JSON (``dumps`` and a newline)."""
    return dumps(message) + b"\n"
