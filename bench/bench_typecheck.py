"""How much the optional type check costs: a fresh ``deno check`` per program (cold) against a
``deno lsp`` kept warm. Prints a table (ms: min / median / p90) and one JSON line.

    python bench/bench_typecheck.py [--runs 15] [--warm-runs 200] [--tools 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from codemode.languages.typescript._checker import TypeChecker
from codemode.languages.typescript._declarations import (
    ToolDeclaration,
    render_declarations,
    to_identifier,
)

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "schemas"


def declarations(n_tools: int) -> tuple[str, list[str]]:
    """Declarations for the first ``n_tools`` corpus tools (real MCP-style schemas)."""
    tools = []
    for path in sorted(CORPUS.glob("*.json"))[:n_tools]:
        data = json.loads(path.read_text(encoding="utf-8"))
        name = to_identifier(data["name"])
        tools.append(
            ToolDeclaration(
                name,
                data["name"],
                data["description"],
                data["input_schema"],
                data.get("output_schema"),
            )
        )
    return render_declarations(tools), [t.name for t in tools]


def program(i: int, names: list[str]) -> str:
    """A distinct program per run, so no checker can answer from a cache."""
    calls = ", ".join(f"external_{n}({{}} as any)" for n in names[:3])
    return (
        f"// run {i}\n"
        f"const results = await Promise.all([{calls}]);\n"
        f"const total = results.length * {i};\n"
        "console.log(total);\n"
        "return { total, first: results[0] };\n"
    )


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "min_ms": round(ordered[0] * 1000, 1),
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p90_ms": round(p90 * 1000, 1),
    }


async def timed(runs: int, once: Callable[[int], Awaitable[object]]) -> list[float]:
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        await once(i)
        samples.append(time.perf_counter() - start)
    return samples


async def main(runs: int, warm_runs: int, n_tools: int) -> dict[str, dict[str, float]]:
    decl, names = declarations(n_tools)
    rows: dict[str, dict[str, float]] = {}

    async def cold_fresh(i: int) -> None:  # a new scratch dir and Deno cache every time
        async with TypeChecker(warm=False) as checker:
            assert await checker.check(program(i, names), decl) is None

    rows["cold: deno check, fresh DENO_DIR"] = summary(await timed(runs, cold_fresh))

    async with TypeChecker(warm=False) as reused:

        async def cold_reused(i: int) -> None:
            assert await reused.check(program(i, names), decl) is None

        rows["cold: deno check, reused DENO_DIR"] = summary(await timed(runs, cold_reused))

    async def warm_start(i: int) -> None:
        checker = TypeChecker()
        await checker.start()
        await checker.aclose()

    rows["warm: start deno lsp (once per checker)"] = summary(
        await timed(max(3, runs // 3), warm_start)
    )

    async with TypeChecker() as warm:
        await warm.start()

        async def warm_check(i: int) -> None:
            assert await warm.check(program(1000 + i, names), decl) is None

        rows["warm: check via deno lsp"] = summary(await timed(warm_runs, warm_check))

        async def warm_error(i: int) -> None:
            failure = await warm.check(program(5000 + i, names) + "const x: string = 1;\n", decl)
            assert failure is not None and failure.line == 6

        rows["warm: check with a type error"] = summary(await timed(warm_runs // 2, warm_error))

        async def warm_concurrent(i: int) -> None:
            await asyncio.gather(
                *(warm.check(program(10_000 + 8 * i + k, names), decl) for k in range(8))
            )

        rows["warm: 8 concurrent checks (wall)"] = summary(
            await timed(max(5, warm_runs // 10), warm_concurrent)
        )
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15, help="runs of each cold measurement")
    parser.add_argument("--warm-runs", type=int, default=200, help="runs of each warm check")
    parser.add_argument("--tools", type=int, default=10, help="corpus tools in the declarations")
    args = parser.parse_args()
    decl_text, _ = declarations(args.tools)
    rows = asyncio.run(main(args.runs, args.warm_runs, args.tools))
    width = max(len(name) for name in rows)
    print(f"type check cost, {args.tools} tools ({len(decl_text)} chars of declarations)")
    print(f"{'path':<{width}}  {'n':>4}  {'min ms':>8}  {'median ms':>9}  {'p90 ms':>8}")
    for name, row in rows.items():
        print(
            f"{name:<{width}}  {row['n']:>4.0f}  {row['min_ms']:>8.1f}  "
            f"{row['median_ms']:>9.1f}  {row['p90_ms']:>8.1f}"
        )
    sys.stdout.write(
        json.dumps(
            {
                "bench": "typecheck",
                "tools": args.tools,
                "declaration_chars": len(decl_text),
                "rows": rows,
            }
        )
        + "\n"
    )
