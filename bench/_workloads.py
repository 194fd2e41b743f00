"""Realistic tools and the programs the benchmarks run, shared by bench_sandbox.py and
bench_vs_mastra.py (and mirrored with zod schemas in mastra_harness.mjs).

A realistic tool validates its input and its output, as a real one would: the echo tools
take and return a small record, declared either as JSON Schema (how MCP tools arrive) or as
a pydantic model.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import pydantic

from codemode import Tool, create_tool

ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"value": {"type": "integer"}, "label": {"type": "string"}},
    "required": ["value", "label"],
    "additionalProperties": False,
}
NAP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"ms": {"type": "integer", "minimum": 0}, "i": {"type": "integer"}},
    "required": ["ms", "i"],
    "additionalProperties": False,
}


class Item(pydantic.BaseModel):
    value: int
    label: str


class Nap(pydantic.BaseModel):
    ms: int = pydantic.Field(ge=0)
    i: int


async def _echo(record: Any) -> Any:
    return record


def echo_tool(kind: str) -> Tool:
    """``external_echo``: returns its input. ``kind`` is "json" (JSON Schema), "pydantic" or
    "none" (no schema at all, the earlier benchmarks' tool)."""
    if kind == "none":
        return create_tool(id="echo", description="Echo", input_schema={}, execute=_echo)
    schema: Any = ITEM_SCHEMA if kind == "json" else Item
    return create_tool(
        id="echo",
        description="Echo a record",
        input_schema=schema,
        output_schema=schema,
        execute=_echo,
    )


def sleep_tool(kind: str) -> Tool:
    """``external_sleep({ms, i})``: answers with its input after ``ms`` milliseconds."""

    async def nap(record: Any) -> Any:
        ms = record.ms if isinstance(record, Nap) else record["ms"]
        await asyncio.sleep(ms / 1000)
        return record

    schema: Any = NAP_SCHEMA if kind == "json" else Nap
    return create_tool(
        id="sleep",
        description="Answer after ms milliseconds",
        input_schema=schema,
        output_schema=schema,
        execute=nap,
    )


def calls_program(calls: int) -> str:
    """A loop of sequential calls; returns the sum of the echoed values."""
    return (
        "let n = 0\n"
        f"for (let i = 0; i < {calls}; i++)\n"
        "  n += (await external_echo({ value: i, label: 'x' })).value\n"
        "return n"
    )


def calls_result(calls: int) -> int:
    return calls * (calls - 1) // 2


PARALLEL_PROGRAM = (
    "const naps = await Promise.all(\n"
    "  Array.from({ length: 100 }, (_, i) => external_sleep({ ms: 50, i })))\n"
    "return naps.length"
)
TRIVIAL_PROGRAM = "return 1 + 1"


def summarise(samples: list[float]) -> dict[str, float]:
    """min / median / p90 (nearest rank) of a list of samples."""
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "min": round(ordered[0], 3),
        "median": round(statistics.median(ordered), 3),
        "p90": round(p90, 3),
        "n": len(ordered),
    }
