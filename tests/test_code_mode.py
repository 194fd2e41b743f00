"""The spec's behaviour that is particular to TypeScript programs in the Deno sandbox. What every
language guarantees (concurrency, validation, approvals, errors, limits, context, tracing) is
in test_behaviour.py, run for each language."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import psutil
import pytest
from pydantic import BaseModel

from codemode import (
    CodeModeToolResult,
    DenoSandbox,
    LocalSandbox,
    create_code_mode,
    create_tool,
)


@pytest.fixture
async def sandbox() -> AsyncIterator[DenoSandbox]:
    async with DenoSandbox() as box:
        yield box


async def run(code: str, sandbox: DenoSandbox, tools: Any = (), **options: Any) -> dict[str, Any]:
    code_tool = create_code_mode(tools=list(tools), sandbox=sandbox, **options).tool
    result = await code_tool.execute({"code": code})
    assert isinstance(result, CodeModeToolResult)
    return result.model_dump(exclude_none=True)


# -- 2. program shape and TypeScript --------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("return 1 + 1", 2),
        ("const x = await Promise.resolve(20)\nreturn x + 1", 21),
        (
            "interface P { a: number }\n"
            "enum Color { Red = 'red', Blue = 'blue' }\n"
            "type Pair<T> = [T, T]\n"
            "function first<T>(xs: T[]): T { return xs[0] }\n"
            "const p: P = { a: 2 } satisfies P\n"
            "const pair: Pair<number> = [p.a, 3]\n"
            "const n = (first(pair) as number) * 10\n"
            "class Box {\n"
            "  constructor(private readonly v: number) {}\n"
            "  get(): number { return this.v }\n"
            "}\n"
            "return { n, color: Color.Blue, boxed: new Box(n).get() }",
            {"n": 20, "color": "blue", "boxed": 20},
        ),
        ("```typescript\nreturn 'fenced'\n```", "fenced"),
        ("```\nreturn 'bare fence'\n```\n", "bare fence"),
        ("async () => {\n  const v = await Promise.resolve(7)\n  return v * 6\n}", 42),
        ("(async () => {\n  return 'iife'\n})()", "iife"),
    ],
    ids=["return", "await", "typescript", "fence", "bare-fence", "arrow", "invoked-arrow"],
)
async def test_program_shapes(sandbox: DenoSandbox, code: str, expected: Any) -> None:
    assert await run(code, sandbox) == {"success": True, "result": expected, "logs": []}


async def test_line_numbers_follow_the_submitted_string_through_a_fence(
    sandbox: DenoSandbox,
) -> None:
    result = await run("```ts\nconst a = 1\nthrow new Error('here')\n```", sandbox)
    assert result["error"] == {"message": "here", "name": "Error", "line": 3}


# -- 3. logs --------------------------------------------------------------------------------


async def test_console_methods_are_captured_in_order(sandbox: DenoSandbox) -> None:
    code = (
        "console.log('a', 1, {b: [2]})\n"
        "console.info('info')\n"
        "console.warn('careful')\n"
        "console.error(new Error('bad'))\n"
        "console.debug(null, undefined, true)\n"
        "return 'ok'"
    )
    assert await run(code, sandbox) == {
        "success": True,
        "result": "ok",
        "logs": [
            'a 1 {"b":[2]}',
            "info",
            "[warn] careful",
            "[error] Error: bad",
            "null undefined true",
        ],
    }


# -- 4. errors ------------------------------------------------------------------------------


async def test_runtime_type_error_has_a_line(sandbox: DenoSandbox) -> None:
    result = await run("const o: any = null\n\nreturn o.field", sandbox)
    assert result["error"]["name"] == "TypeError"
    assert result["error"]["line"] == 3
    assert "null" in result["error"]["message"]


async def test_syntax_error_carries_its_line(sandbox: DenoSandbox) -> None:
    result = await run("const a = 1\nconst b = [1, 2\nreturn a", sandbox)
    assert result["success"] is False
    assert result["error"]["name"] == "SyntaxError"
    assert result["error"]["line"] == 3
    assert result["error"]["message"] == "Expected ',', got 'return'"


async def test_throwing_a_string_is_reported_with_its_text(sandbox: DenoSandbox) -> None:
    result = await run("throw 'plain string'", sandbox)
    assert result["error"] == {
        "message": "Uncaught plain string (a non-Error value was thrown)",
        "name": "Error",
    }


async def test_throwing_an_object_is_reported_as_json(sandbox: DenoSandbox) -> None:
    result = await run("throw { code: 42 }", sandbox)
    assert result["error"]["message"] == 'Uncaught {"code":42} (a non-Error value was thrown)'


# -- 5. tool calls are validated and errors are catchable --------------------------------------


class AddInput(BaseModel):
    a: int
    b: int


def adder(output: Any = int) -> Any:
    def add(input: AddInput) -> Any:
        return input.a + input.b

    return create_tool(
        id="add", description="Add", input_schema=AddInput, output_schema=output, execute=add
    )


async def test_input_validation_failure_is_a_catchable_validation_error(
    sandbox: DenoSandbox,
) -> None:
    code = (
        "try {\n"
        "  await external_add({ a: 'one' })\n"
        "} catch (e) {\n"
        "  return { name: e.name, message: e.message, isError: e instanceof Error }\n"
        "}"
    )
    result = await run(code, sandbox, [adder()])
    assert result["result"] == {
        "name": "ValidationError",
        "message": "Tool input validation failed for add:\n"
        "- a: Input should be a valid integer, unable to parse string as an integer\n"
        "- b: Field required\n"
        "Expected: external_add(input: { a: number; b: number; })",
        "isError": True,
    }


async def test_json_schema_tools_validate_with_jsonschema(sandbox: DenoSandbox) -> None:
    echo = create_tool(
        id="echo",
        description="Echo",
        input_schema={
            "type": "object",
            "properties": {"text": {"type": "string"}, "n": {"type": "integer", "minimum": 1}},
            "required": ["text"],
        },
        execute=lambda data: data,
    )
    good = await run("return await external_echo({ text: 'hi', n: 2 })", sandbox, [echo])
    assert good["result"] == {"text": "hi", "n": 2}
    bad = await run("return await external_echo({ n: 0 })", sandbox, [echo])
    assert bad["error"]["message"] == (
        "Tool input validation failed for echo:\n"
        "- (root): 'text' is a required property\n"
        "- /n: 0 is less than the minimum of 1\n"
        "Expected: external_echo(input: { text: string; n?: number; })"
    )


class InventoryError(Exception):
    pass


# -- 6. allow-list ---------------------------------------------------------------------------


async def test_code_modes_sharing_a_sandbox_cannot_reach_each_other(sandbox: DenoSandbox) -> None:
    ran: list[str] = []

    def secret(_: dict[str, Any]) -> str:
        ran.append("secret")
        return "leaked"

    sales = create_code_mode(id="sales_code", tools=[adder()], sandbox=sandbox).tool
    inventory = create_code_mode(
        id="inventory_code",
        tools=[create_tool(id="secret", description="", input_schema={}, execute=secret)],
        sandbox=sandbox,
    ).tool
    direct = await sales.execute({"code": "return typeof external_secret"})
    assert direct.result == "undefined"
    # Forge the worker->runner protocol: post a call for a tool this code mode does not have.
    forged = await sales.execute(
        {
            "code": "self.postMessage({ t: 'call', c: 1, n: 'secret', a: '{}' })\n"
            "self.postMessage({ t: 'done', ok: true, r: '\"forged\"' })\n"
            "await new Promise(r => setTimeout(r, 100))\n"
            "return 'real'"
        }
    )
    assert ran == []
    assert forged.success is True
    assert forged.result == "forged"  # a forged end is the program's own result, nothing more
    own = await inventory.execute({"code": "return await external_secret({})"})
    assert (own.result, ran) == ("leaked", ["secret"])


# -- 8. timeout ------------------------------------------------------------------------------


def deno_children() -> set[int]:
    return {
        p.pid
        for p in psutil.Process().children(recursive=True)
        if p.is_running() and p.status() != psutil.STATUS_ZOMBIE and "deno" in p.name()
    }


@pytest.mark.parametrize(
    "code",
    ["while (true) {}", "await new Promise(() => {})", "for (;;) await Promise.resolve()"],
    ids=["sync-loop", "endless-await", "microtask-loop"],
)
async def test_timeout_ends_a_runaway_program_and_its_process(
    sandbox: DenoSandbox, code: str
) -> None:
    await run("return 1", sandbox)  # warm: the timeout should not include a cold start
    started = time.perf_counter()
    result = await run(code, sandbox, timeout=300)
    elapsed = time.perf_counter() - started
    assert result["error"] == {
        "message": "The program did not finish within the timeout of 300 ms; make it do less "
        "work or run independent calls in parallel with Promise.all.",
        "name": "TimeoutError",
    }
    # Ended by its own 300 ms timeout, not by anything slower (the 30 s default); the bound is
    # loose because a busy machine delays any wake-up (this was 0.4 s and failed under load).
    assert elapsed < 5
    assert (await run("return 'next'", sandbox))["result"] == "next"


async def test_timeout_cancels_tool_calls_in_flight() -> None:
    events: list[str] = []
    pids: set[int] = set()
    # One process, the one running the program, started before the clock (behind the OS wall a
    # start can take much of the 300 ms on a loaded machine).
    sandbox = DenoSandbox(prestart=1, max_idle=1, max_processes=1)
    await sandbox.start()

    async def slow(_: dict[str, Any]) -> str:
        pids.update(deno_children())
        events.append("started")
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        return "finished"

    slow_tool = create_tool(id="slow", description="", input_schema={}, execute=slow)
    result = await run(
        "await Promise.all([external_slow({}), external_slow({})])",
        sandbox,
        [slow_tool],
        timeout=300,
    )
    assert result["error"]["name"] == "TimeoutError"
    assert events == ["started", "started", "cancelled", "cancelled"]
    assert len(pids) == 1
    assert pids.isdisjoint(deno_children()), "the executing process must be gone"
    await sandbox.aclose()


# -- 9. JSON across the boundary -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "return { total: 10n }",
            "result is not JSON: BigInt at result.total (convert it with Number() or String())",
        ),
        (
            "const a: any = { name: 'a' }\na.self = a\nreturn [a]",
            "result is not JSON: circular reference at result[0].self",
        ),
        (
            "return new Map([[1, 2]])",
            "result is not JSON: Map at result (convert it with Object.fromEntries())",
        ),
        (
            "return [() => 1]",
            "result is not JSON: function at result[0] (call it, or leave it out)",
        ),
    ],
    ids=["bigint", "cycle", "map", "function-in-array"],
)
async def test_non_json_results_name_the_problem(
    sandbox: DenoSandbox, code: str, message: str
) -> None:
    result = await run(code, sandbox)
    assert result["error"] == {"message": message, "name": "ResultError"}


async def test_non_json_tool_input_is_a_catchable_type_error(sandbox: DenoSandbox) -> None:
    code = "try { await external_add({ a: 1n, b: 2 }) } catch (e) { return e.message }"
    result = await run(code, sandbox, [adder()])
    assert result["result"] == (
        "input of external_add is not JSON: BigInt at input of external_add.a "
        "(convert it with Number() or String())"
    )


# -- 10. request context and tracing ---------------------------------------------------------


# -- sandboxes and sync callers ---------------------------------------------------------------


async def test_local_sandbox_has_host_privileges(tmp_path: Any) -> None:
    secret = tmp_path / "notes.txt"
    secret.write_text("host file")
    async with LocalSandbox() as local:
        result = await run(f"return await Deno.readTextFile({str(secret)!r})", local)
    assert result == {"success": True, "result": "host file", "logs": []}


async def test_deno_sandbox_denies_what_local_allows(sandbox: DenoSandbox, tmp_path: Any) -> None:
    secret = tmp_path / "notes.txt"
    secret.write_text("host file")
    result = await run(f"return await Deno.readTextFile({str(secret)!r})", sandbox)
    assert result["error"]["name"] == "NotCapable"
    assert result["error"]["message"].startswith(f'Requires read access to "{secret}"')
    assert result["error"]["line"] == 1


def test_execute_sync_without_an_event_loop() -> None:
    sandbox = DenoSandbox()
    code_tool = create_code_mode(tools=[adder()], sandbox=sandbox).tool
    first = code_tool.execute_sync({"code": "return await external_add({ a: 2, b: 3 })"})
    second = code_tool.execute_sync({"code": "return 'again'"})
    assert (first.result, second.result) == (5, "again")
    assert deno_children(), "the processes stay warm between synchronous calls"
    sandbox.close()
    assert deno_children() == set()


async def test_execute_sync_inside_a_loop_says_to_await() -> None:
    code_tool = create_code_mode(tools=[], sandbox=DenoSandbox()).tool
    with pytest.raises(RuntimeError, match=r"use `await tool.execute\(...\)`"):
        code_tool.execute_sync({"code": "return 1"})
