"""The guarantees every program language keeps, run for each: the same case, the same tools,
the same assertions, a program per language (TypeScript in Deno, Python in Monty)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from _helpers import LANGUAGES, Lang, sandbox_for
from codemode import (
    CodeModeToolResult,
    DenoSandbox,
    MontySandbox,
    Sandbox,
    ToolCall,
    ToolContext,
    create_code_mode,
    create_tool,
    tool,
)
from codemode.languages.python._checker import MontyTypeChecker
from codemode.languages.typescript._checker import TypeChecker


@pytest.fixture(params=LANGUAGES)
async def lang(request: pytest.FixtureRequest) -> AsyncIterator[Lang]:
    async with sandbox_for(request.param) as sandbox:
        yield Lang(request.param, sandbox)


async def run(code: str, sandbox: Sandbox, tools: Any = (), **options: Any) -> dict[str, Any]:
    code_tool = create_code_mode(tools=list(tools), sandbox=sandbox, **options).tool
    result = await code_tool.execute({"code": code})
    assert isinstance(result, CodeModeToolResult)
    return result.model_dump(exclude_none=True)


# -- the spec's quickstart: calls run concurrently ---------------------------------------------


class Product(BaseModel):
    id: str
    name: str
    totalSales: float


class TopProducts(BaseModel):
    products: list[Product]


class LimitInput(BaseModel):
    limit: int


class RatingsInput(BaseModel):
    productId: str


class Score(BaseModel):
    score: float


class Ratings(BaseModel):
    ratings: list[Score]


SCORES = {"a": [5, 4], "b": [3, 3, 4], "c": [1], "d": [5, 5, 5, 4], "e": [2, 3], "f": [4]}
QUICKSTART = {
    "typescript": """\
const top = await external_getTopProducts({ limit: 5 })
const ratings = await Promise.all(
  top.products.map(p => external_getProductRatings({ productId: p.id })),
)
return top.products.map((product, i) => {
  const scores = ratings[i].ratings.map(r => r.score)
  const avg = scores.reduce((sum, s) => sum + s, 0) / scores.length
  return {
    name: product.name, sales: product.totalSales, averageRating: Math.round(avg * 100) / 100,
  }
})
""",
    "python": """\
import asyncio
top = await external_getTopProducts(limit=5)
ratings = await asyncio.gather(
    *[external_getProductRatings(productId=p["id"]) for p in top["products"]]
)
result = []
for product, rated in zip(top["products"], ratings):
    scores = [r["score"] for r in rated["ratings"]]
    result.append({
        "name": product["name"],
        "sales": product["totalSales"],
        "averageRating": round(sum(scores) / len(scores), 2),
    })
result
""",
}


def quickstart_tools(delay: float) -> dict[str, Any]:
    async def top(input: LimitInput) -> TopProducts:
        products = [Product(id=k, name=k.upper(), totalSales=100 - i) for i, k in enumerate(SCORES)]
        return TopProducts(products=products[: input.limit])

    async def ratings(input: RatingsInput) -> Ratings:
        await asyncio.sleep(delay)
        return Ratings(ratings=[Score(score=s) for s in SCORES[input.productId]])

    return {
        "getTopProducts": create_tool(
            id="getTopProducts",
            description="Get top selling products",
            input_schema=LimitInput,
            output_schema=TopProducts,
            execute=top,
        ),
        "getProductRatings": create_tool(
            id="getProductRatings",
            description="Get ratings for a product",
            input_schema=RatingsInput,
            output_schema=Ratings,
            execute=ratings,
        ),
    }


async def test_quickstart_runs_rating_calls_concurrently(lang: Lang) -> None:
    code_tool, instructions = create_code_mode(tools=quickstart_tools(0.2), sandbox=lang.sandbox)
    assert code_tool.id == f"execute_{lang.name}"
    assert (
        lang(
            {
                "typescript": "declare function external_getTopProducts",
                "python": "async def external_getTopProducts",
            }
        )
        in instructions
    )
    started = time.perf_counter()
    result = await code_tool.execute({"code": lang(QUICKSTART)})
    elapsed = time.perf_counter() - started
    assert result.model_dump(exclude_none=True) == {
        "success": True,
        "result": [
            {"name": "A", "sales": 100, "averageRating": 4.5},
            {"name": "B", "sales": 99, "averageRating": 3.33},
            {"name": "C", "sales": 98, "averageRating": 1},
            {"name": "D", "sales": 97, "averageRating": 4.75},
            {"name": "E", "sales": 96, "averageRating": 2.5},
        ],
        "logs": [],
    }
    assert elapsed < 0.6, f"five 200 ms calls took {elapsed:.3f} s: they did not run concurrently"


# -- logs ------------------------------------------------------------------------------------


async def test_logs_are_captured_and_survive_errors_and_timeouts(lang: Lang) -> None:
    printed = await run(
        lang(
            {
                "typescript": "console.log('a', 1)\nconsole.log('b')\nreturn 'ok'",
                "python": "print('a', 1)\nprint('b')\n'ok'",
            }
        ),
        lang.sandbox,
    )
    assert printed == {"success": True, "result": "ok", "logs": ["a 1", "b"]}
    failed = await run(
        lang(
            {
                "typescript": "console.log('before')\nthrow new Error('x')",
                "python": "print('before')\nraise ValueError('x')",
            }
        ),
        lang.sandbox,
    )
    assert failed["logs"] == ["before"]
    timed_out = await run(
        lang(
            {
                "typescript": "console.log('spinning')\nwhile (true) {}",
                "python": "print('spinning')\nwhile True:\n    pass",
            }
        ),
        lang.sandbox,
        timeout=500,
    )
    assert timed_out["logs"] == ["spinning"]
    assert timed_out["error"]["name"] == "TimeoutError"


# -- errors ------------------------------------------------------------------------------------


async def test_uncaught_error_reports_message_name_and_line(lang: Lang) -> None:
    code = lang(
        {
            "typescript": "const a = 1\nconst b = 2\nthrow new RangeError(`too big: ${a + b}`)",
            "python": "a = 1\nb = 2\nraise OverflowError(f'too big: {a + b}')",
        }
    )
    assert await run(code, lang.sandbox) == {
        "success": False,
        "logs": [],
        "error": {
            "message": "too big: 3",
            "name": lang({"typescript": "RangeError", "python": "OverflowError"}),
            "line": 3,
        },
    }


async def test_error_raised_in_a_nested_function_reports_the_raising_line(lang: Lang) -> None:
    code = lang(
        {
            "typescript": (
                "function check(n: number) {\n  if (n > 1) throw new Error('n > 1')\n}\ncheck(2)"
            ),
            "python": "def check(n):\n    if n > 1: raise ValueError('n > 1')\n\ncheck(2)",
        }
    )
    result = await run(code, lang.sandbox)
    assert result["error"] == {
        "message": "n > 1",
        "name": lang({"typescript": "Error", "python": "ValueError"}),
        "line": 2,
    }


async def test_syntax_error_carries_its_line(lang: Lang) -> None:
    code = lang(
        {
            "typescript": "const a = 1\nconst b = [1, 2\nreturn a",
            "python": "a = 1\nb = [1, 2\nc = 3\na",
        }
    )
    result = await run(code, lang.sandbox)
    assert result["success"] is False
    assert result["error"]["name"] == "SyntaxError"
    assert result["error"]["line"] == 3  # where the parser noticed


# -- tool calls are validated, and their errors are catchable ---------------------------------


class AddInput(BaseModel):
    a: int
    b: int


EXPECTED_ADD = {
    "typescript": "external_add(input: { a: number; b: number; })",
    "python": "external_add(*, a: int, b: int)",
}


def adder(output: Any = int) -> Any:
    def add(input: AddInput) -> Any:
        return input.a + input.b

    return create_tool(
        id="add", description="Add", input_schema=AddInput, output_schema=output, execute=add
    )


async def test_input_validation_failure_is_catchable_with_our_message(lang: Lang) -> None:
    code = lang(
        {
            "typescript": "try {\n  await external_add({ a: 'one' })\n} catch (e) {\n"
            "  return { name: e.name, message: e.message }\n}",
            "python": "try:\n    await external_add(a='one')\nexcept ValueError as e:\n"
            "    result = {'name': 'ValidationError', 'message': str(e)}\nresult",
        }
    )
    result = await run(code, lang.sandbox, [adder()])
    assert result["result"] == {
        "name": "ValidationError",
        "message": "Tool input validation failed for add:\n"
        "- a: Input should be a valid integer, unable to parse string as an integer\n"
        "- b: Field required\n"
        f"Expected: {lang(EXPECTED_ADD)}",
    }


async def test_uncaught_validation_error_reports_its_name_and_the_calling_line(
    lang: Lang,
) -> None:
    code = lang(
        {
            "typescript": "const x = 1\nawait external_add({ a: 1 })",
            "python": "x = 1\nawait external_add(a=1)",
        }
    )
    result = await run(code, lang.sandbox, [adder()])
    assert result["error"] == {
        "message": f"Tool input validation failed for add:\n- b: Field required\n"
        f"Expected: {lang(EXPECTED_ADD)}",
        "name": "ValidationError",
        "line": 2,
    }


async def test_output_validation_failure(lang: Lang) -> None:
    code = lang(
        {
            "typescript": "return await external_add({ a: 1, b: 2 })",
            "python": "await external_add(a=1, b=2)",
        }
    )
    result = await run(code, lang.sandbox, [adder(output=str)])
    assert result["error"]["name"] == "ValidationError"
    assert result["error"]["message"].startswith("Tool output validation failed for add:\n- ")


class InventoryError(Exception):
    pass


async def test_tool_exception_keeps_its_message_and_class_name(lang: Lang) -> None:
    def fail(_: dict[str, Any]) -> None:
        raise InventoryError("warehouse 7 is offline")

    broken = create_tool(
        id="broken", description="Fails", input_schema={"type": "object"}, execute=fail
    )
    code = lang(
        {
            "typescript": "try { await external_broken({}) } catch (e) { console.log(e.message) }\n"
            "await external_broken({})",
            "python": "try:\n    await external_broken()\nexcept Exception as e:\n    print(e)\n"
            "await external_broken()",
        }
    )
    result = await run(code, lang.sandbox, [broken])
    assert result == {
        "success": False,
        "logs": ["warehouse 7 is offline"],
        "error": {
            "message": "warehouse 7 is offline",
            "name": "InventoryError",
            "line": lang({"typescript": 2, "python": 5}),
        },
    }


async def test_a_builtin_exception_from_a_tool_is_caught_as_that_type(lang: Lang) -> None:
    def missing(_: dict[str, Any]) -> None:
        raise KeyError("sku-9")

    lookup = create_tool(id="lookup", description="", input_schema={}, execute=missing)
    code = lang(
        {
            "typescript": (
                "try { await external_lookup({}) } catch (e) { return [e.name, e.message] }"
            ),
            "python": "try:\n    await external_lookup()\nexcept KeyError as e:\n"
            "    r = [type(e).__name__, str(e)]\nr",
        }
    )
    result = await run(code, lang.sandbox, [lookup])
    assert result["result"] == ["KeyError", "'sku-9'"]


# -- allow-list --------------------------------------------------------------------------------


async def test_tools_outside_the_allow_list_are_not_defined(lang: Lang) -> None:
    code = lang(
        {"typescript": "return await external_other({})", "python": "await external_other()"}
    )
    result = await run(code, lang.sandbox, [adder()])
    assert result["error"] == lang(
        {
            "typescript": {
                "message": "external_other is not defined. Available: external_add.",
                "name": "ReferenceError",
                "line": 1,
            },
            "python": {
                "message": "name 'external_other' is not defined. Available: external_add.",
                "name": "NameError",
                "line": 1,
            },
        }
    )


async def test_code_modes_sharing_a_sandbox_cannot_reach_each_other(lang: Lang) -> None:
    ran: list[str] = []

    def secret(_: dict[str, Any]) -> str:
        ran.append("secret")
        return "leaked"

    sales = create_code_mode(id="sales_code", tools=[adder()], sandbox=lang.sandbox).tool
    inventory = create_code_mode(
        id="inventory_code",
        tools=[create_tool(id="secret", description="", input_schema={}, execute=secret)],
        sandbox=lang.sandbox,
    ).tool
    call = lang(
        {"typescript": "return await external_secret({})", "python": "await external_secret()"}
    )
    denied = await sales.execute({"code": call})
    assert denied.success is False
    assert ran == []
    own = await inventory.execute({"code": call})
    assert (own.result, ran) == ("leaked", ["secret"])


# -- approvals ---------------------------------------------------------------------------------


def guarded(ran: list[Any]) -> Any:
    def delete(input: dict[str, Any]) -> str:
        ran.append(input)
        return "deleted"

    return create_tool(
        id="deleteUser",
        description="Delete a user",
        input_schema={"type": "object", "properties": {"id": {"type": "string"}}},
        execute=delete,
        require_approval=True,
    )


DELETE = {
    "typescript": "try { return await external_deleteUser({ id: 'u1' }) }\n"
    "catch (e) { return `${e.name}: ${e.message}` }",
    "python": "try:\n    result = await external_deleteUser(id='u1')\n"
    "except PermissionError as e:\n    result = f'ApprovalDeniedError: {e}'\nresult",
}


async def test_without_approve_callback_approval_is_denied(lang: Lang) -> None:
    ran: list[Any] = []
    result = await run(lang(DELETE), lang.sandbox, [guarded(ran)])
    assert result["result"] == (
        "ApprovalDeniedError: Tool deleteUser requires approval and was not approved"
    )
    assert ran == []


async def test_sync_and_async_approve_callbacks(lang: Lang) -> None:
    seen: list[ToolCall] = []
    ran: list[Any] = []

    def approve(call: ToolCall) -> bool:
        seen.append(call)
        return True

    async def deny(call: ToolCall) -> bool:
        await asyncio.sleep(0)
        return False

    approved = await run(lang(DELETE), lang.sandbox, [guarded(ran)], approve=approve)
    assert approved["result"] == "deleted"
    assert [(c.tool_id, c.input) for c in seen] == [("deleteUser", {"id": "u1"})]
    denied = await run(lang(DELETE), lang.sandbox, [guarded(ran)], approve=deny)
    assert denied["result"].startswith("ApprovalDeniedError")
    assert ran == [{"id": "u1"}]


async def test_an_uncaught_denial_is_an_approval_denied_error(lang: Lang) -> None:
    code = lang(
        {
            "typescript": "await external_deleteUser({ id: 'u1' })",
            "python": "await external_deleteUser(id='u1')",
        }
    )
    result = await run(code, lang.sandbox, [guarded([])])
    assert result["error"] == {
        "message": "Tool deleteUser requires approval and was not approved",
        "name": "ApprovalDeniedError",
        "line": 1,
    }


# -- timeout -----------------------------------------------------------------------------------

STALLS = {
    "cpu-loop": {"typescript": "while (true) {}", "python": "while True:\n    pass"},
    "endless-await": {
        "typescript": "await new Promise(() => {})",
        "python": "import asyncio\nawait asyncio.sleep(3600)",
    },
    "await-loop": {
        "typescript": "for (;;) await Promise.resolve()",
        "python": "import asyncio\nwhile True:\n    await asyncio.sleep(0)",
    },
}


@pytest.mark.parametrize("case", STALLS.values(), ids=STALLS.keys())
async def test_timeout_ends_a_runaway_program(lang: Lang, case: dict[str, str]) -> None:
    await run(lang({"typescript": "return 1", "python": "1"}), lang.sandbox)  # warm
    started = time.perf_counter()
    result = await run(lang(case), lang.sandbox, timeout=300)
    elapsed = time.perf_counter() - started
    parallel = lang({"typescript": "Promise.all", "python": "asyncio.gather"})
    assert result["error"] == {
        "message": "The program did not finish within the timeout of 300 ms; make it do less "
        f"work or run independent calls in parallel with {parallel}.",
        "name": "TimeoutError",
    }
    assert elapsed < 1.0
    next_result = await run(lang({"typescript": "return 'next'", "python": "'next'"}), lang.sandbox)
    assert next_result["result"] == "next"


async def test_timeout_cancels_tool_calls_in_flight(lang: Lang) -> None:
    events: list[str] = []

    async def slow(_: dict[str, Any]) -> str:
        events.append("started")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        return "finished"

    slow_tool = create_tool(id="slow", description="", input_schema={}, execute=slow)
    code = lang(
        {
            "typescript": "await Promise.all([external_slow({}), external_slow({})])",
            "python": "import asyncio\nawait asyncio.gather(external_slow(), external_slow())",
        }
    )
    result = await run(code, lang.sandbox, [slow_tool], timeout=300)
    assert result["error"]["name"] == "TimeoutError"
    assert events == ["started", "started", "cancelled", "cancelled"]


# -- orphaned calls ----------------------------------------------------------------------------


async def test_calls_left_running_when_the_program_ends_are_cancelled(lang: Lang) -> None:
    events: list[str] = []

    async def slow(_: dict[str, Any]) -> str:
        events.append("started")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        return "finished"

    slow_tool = create_tool(id="slow", description="", input_schema={}, execute=slow)
    ends = lang(
        {
            "typescript": (
                "external_slow({})\nawait new Promise(r => setTimeout(r, 50))\nreturn 'done'"
            ),
            "python": (
                "import asyncio\nforgotten = external_slow()\nawait asyncio.sleep(0.05)\n'done'"
            ),
        }
    )
    result = await run(ends, lang.sandbox, [slow_tool])
    # The model is told, or it would believe the call happened.
    gather = {"typescript": "Promise.all", "python": "asyncio.gather"}[lang.name]
    assert result == {
        "success": True,
        "result": "done",
        "logs": [
            "[codemode] 1 tool call(s) had not finished when the program returned and were "
            "cancelled: external_slow. Await every call before returning (several at once with "
            f"{gather}), or they may not happen."
        ],
    }
    fails = lang(
        {
            "typescript": (
                "external_slow({})\nawait new Promise(r => setTimeout(r, 50))\nthrow new Error('x')"
            ),
            "python": (
                "import asyncio\n"
                "forgotten = external_slow()\n"
                "await asyncio.sleep(0.05)\n"
                "raise ValueError('x')"
            ),
        }
    )
    failed = await run(fails, lang.sandbox, [slow_tool])
    assert failed["error"]["message"] == "x"
    assert failed["logs"] == []  # the error is what the model must fix first
    assert events == ["started", "cancelled", "started", "cancelled"]


# -- limits ------------------------------------------------------------------------------------


def echo_tool() -> Any:
    async def echo(value: Any) -> Any:
        await asyncio.sleep(0)
        return value

    return create_tool(id="echo", description="", input_schema={"type": "object"}, execute=echo)


async def test_too_many_tool_calls_is_a_tool_call_limit_error(lang: Lang) -> None:
    code = lang(
        {
            "typescript": "while (true) await external_echo({})",
            "python": "while True:\n    await external_echo()",
        }
    )
    result = await run(code, lang.sandbox, [echo_tool()], max_tool_calls=50)
    assert result == {
        "success": False,
        "logs": [],
        "error": {
            "name": "ToolCallLimitError",
            "message": "The program made more than 50 tool calls (the limit per execution); "
            "batch work into fewer calls.",
        },
    }


async def test_calls_over_the_concurrency_limit_are_queued(lang: Lang) -> None:
    in_flight = 0
    most = 0

    async def track(value: Any) -> Any:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        return value

    counted = create_tool(id="echo", description="", input_schema={"type": "object"}, execute=track)
    code = lang(
        {
            "typescript": (
                "const all = await Promise.all(Array.from({ length: 200 }, (_, i) => "
                "external_echo({ i })))\n"
                "return all.reduce((s, r) => s + r.i, 0)"
            ),
            "python": (
                "import asyncio\n"
                "all = await asyncio.gather(*[external_echo(i=i) for i in range(200)])\n"
                "sum(r['i'] for r in all)"
            ),
        }
    )
    result = await run(code, lang.sandbox, [counted], max_concurrent_tool_calls=8)
    assert result == {"success": True, "result": sum(range(200)), "logs": []}
    assert most == 8


async def test_a_log_flood_is_truncated(lang: Lang) -> None:
    code = lang(
        {
            "typescript": (
                'for (let i = 0; i < 2000; i++) console.log("line " + i, "é")\nreturn "done"'
            ),
            "python": 'for i in range(2000):\n    print("line " + str(i), "é")\n"done"',
        }
    )
    result = await run(code, lang.sandbox, max_log_bytes=1000)
    kept = []
    total = 0
    for i in range(200):
        line = f"line {i} é"
        total += len(line.encode()) + 64
        if total > 1000:
            break
        kept.append(line)
    assert result == {
        "success": True,
        "result": "done",
        "logs": [*kept, "[logs truncated: over the limit of 1000 bytes]"],
    }


async def test_a_result_over_the_limit_is_refused(lang: Lang) -> None:
    code = lang(
        {
            "typescript": 'return { items: [1, 2, 3], text: "x".repeat(100) }',
            "python": '{"items": [1, 2, 3], "text": "x" * 100}',
        }
    )
    result = await run(code, lang.sandbox, max_result_bytes=100)
    assert result == {
        "success": False,
        "logs": [],
        "error": {
            "name": "ResultTooLargeError",
            "message": "The result is 127 bytes of JSON, over the limit of 100; return a smaller "
            "value (filter, aggregate or paginate).",
        },
    }


async def test_the_memory_limit_ends_a_memory_bomb(lang: Lang) -> None:
    sandbox: Sandbox = (
        DenoSandbox(heap_mb=64, memory_mb=256)
        if lang.name == "typescript"
        else MontySandbox(memory_mb=64)
    )
    code = lang(
        {
            "typescript": (
                'const all = []; while (true) all.push({ n: all.length, s: "item " + all.length })'
            ),
            "python": (
                "all = []\n"
                "while True:\n"
                "    all.append({'n': len(all), 's': 'item ' + str(len(all))})"
            ),
        }
    )
    async with sandbox:
        result = await run(code, sandbox)
        after = await run(lang({"typescript": "return 1", "python": "1"}), sandbox)
    assert result["error"]["name"] == "MemoryLimitError"
    assert result["error"]["message"] == lang(
        {
            "typescript": (
                "The program ran out of JavaScript heap (the V8 heap limit of 64 MB); use less "
                "memory."
            ),
            "python": "The program used more than the memory limit of 64 MB; use less memory.",
        }
    )
    assert after["result"] == 1


# -- JSON across the boundary ------------------------------------------------------------------


async def test_no_result_is_absent(lang: Lang) -> None:
    code = lang({"typescript": "const x = 1", "python": "x = 1"})
    assert await run(code, lang.sandbox) == {"success": True, "logs": []}


async def test_json_values_round_trip(lang: Lang) -> None:
    value = {"s": "é ✓ \u2028", "n": 1.5, "neg": -3, "b": False, "null": None, "list": [1, [2]]}
    echo = create_tool(id="echo", description="", input_schema={}, execute=lambda v: v)
    text = __import__("json").dumps(value)
    code = lang(
        {
            "typescript": f"return await external_echo({text})",
            "python": f"await external_echo(**{value!r})",
        }
    )
    assert (await run(code, lang.sandbox, [echo]))["result"] == value


# -- request context and tracing ---------------------------------------------------------------


async def test_request_context_reaches_every_tool_call(lang: Lang) -> None:
    seen: list[Any] = []

    @tool
    def whoami(ctx: ToolContext) -> str:
        """Who is asking."""
        seen.append((ctx.tool_id, ctx.code_mode_id, dict(ctx.request_context)))
        return str(ctx.request_context["user"])

    code_tool = create_code_mode(tools=[whoami], sandbox=lang.sandbox).tool
    code = lang(
        {
            "typescript": "return Promise.all([external_whoami({}), external_whoami({})])",
            "python": "import asyncio\nawait asyncio.gather(external_whoami(), external_whoami())",
        }
    )
    result = await code_tool.execute({"code": code}, request_context={"user": "ada"})
    assert result.result == ["ada", "ada"]
    assert seen == [("whoami", f"execute_{lang.name}", {"user": "ada"})] * 2


async def test_executions_and_tool_calls_are_traced(
    lang: Lang, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    code = lang(
        {
            "typescript": "await external_add({ a: 1, b: 2 })\nawait external_add({ a: 1 })",
            "python": "await external_add(a=1, b=2)\nawait external_add(a=1)",
        }
    )
    await run(code, lang.sandbox, [adder()])
    finished = exporter.get_finished_spans()
    assert sorted(s.name for s in finished) == [
        f"codemode.execute execute_{lang.name}",
        "codemode.tool_call add",
        "codemode.tool_call add",
    ]
    calls = [s for s in finished if s.name == "codemode.tool_call add"]
    assert [dict(c.attributes or {})["codemode.tool.outcome"] for c in calls] == ["ok", "error"]
    execution = next(s for s in finished if s.name.startswith("codemode.execute"))
    attributes = dict(execution.attributes or {})
    assert (attributes["codemode.tool_calls"], attributes["codemode.error.name"]) == (
        2,
        "ValidationError",
    )
    assert execution.context is not None
    assert all(
        c.parent is not None and c.parent.span_id == execution.context.span_id for c in calls
    )


# -- type checking -----------------------------------------------------------------------------


async def test_type_errors_stop_the_program_before_it_runs(lang: Lang) -> None:
    calls: list[Any] = []

    def add(input: AddInput) -> int:
        calls.append(input)
        return input.a + input.b

    typed = create_tool(
        id="add", description="Add", input_schema=AddInput, output_schema=int, execute=add
    )
    # A checker of the test's own (typecheck=True shares one per language for the process).
    checker = TypeChecker() if lang.name == "typescript" else MontyTypeChecker()
    code_tool = create_code_mode(tools=[typed], sandbox=lang.sandbox, typecheck=checker).tool
    try:
        bad, good = await _check_and_run(lang, code_tool)
    finally:
        if isinstance(checker, TypeChecker):
            await checker.aclose()
        else:
            checker.close()
    assert bad.error is not None
    assert (bad.success, bad.error.name, bad.error.line) == (False, "TypeCheckError", 2)
    assert (
        lang(
            {
                "typescript": "Type 'string' is not assignable to type 'number'",
                "python": 'Expected `int`, found `Literal["one"]`',
            }
        )
        in bad.error.message
    )
    assert calls == [AddInput(a=1, b=2)]  # only the good program ran
    assert good.result == 6


async def _check_and_run(
    lang: Lang, code_tool: Any
) -> tuple[CodeModeToolResult, CodeModeToolResult]:
    bad = await code_tool.execute(
        {
            "code": lang(
                {
                    "typescript": (
                        "const x = await external_add({ a: 1, b: 2 })\n"
                        "await external_add({ a: 'one', b: 2 })\n"
                        "return x"
                    ),
                    "python": (
                        "x = await external_add(a=1, b=2)\nawait external_add(a='one', b=2)\nx"
                    ),
                }
            )
        }
    )
    good = await code_tool.execute(
        {
            "code": lang(
                {
                    "typescript": (
                        "const x: number = await external_add({ a: 1, b: 2 })\nreturn x * 2"
                    ),
                    "python": "x: int = await external_add(a=1, b=2)\nreturn x * 2",
                }
            )
        }
    )
    return bad, good
