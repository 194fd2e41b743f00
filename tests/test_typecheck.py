"""The optional type check: exact messages and program lines, both checker paths, concurrency,
no host file access, never running the program, and no leaked processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
import pytest_asyncio

from codemode.languages.typescript._checker import (
    TypeChecker,
    TypeCheckerError,
    TypeCheckFailure,
    parse_check_output,
)
from codemode.languages.typescript._declarations import ToolDeclaration, render_declarations

DECLARATIONS = render_declarations(
    [
        ToolDeclaration(
            "get_weather",
            "get_weather",
            "Get the weather for a city.",
            {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
            {
                "type": "object",
                "properties": {"temperature": {"type": "number"}, "summary": {"type": "string"}},
                "required": ["temperature", "summary"],
            },
        )
    ]
)

GOOD = """\
const cities = ["Paris", "Oslo"];
const results = await Promise.all(cities.map((city) => external_get_weather({ city })));
const hottest = results.reduce((a, b) => (a.temperature > b.temperature ? a : b));
console.log(hottest.summary);
return { hottest, mean: results.reduce((s, r) => s + r.temperature, 0) / results.length };
"""

WRONG_ARGUMENT = """\
const a = await external_get_weather({ city: "Paris" });
const b = await external_get_weather({ city: 42 });
return a.temperature + b.temperature;
"""

MISSING_FIELD_AND_TYPO = """\
const r = await external_get_weather({ days: 3 });
return r.temprature;
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def warm() -> AsyncIterator[TypeChecker]:
    checker = TypeChecker()
    await checker.start()
    yield checker
    await checker.aclose()


# The warm checker is shared by this module's tests, so they share its event loop.
module_loop = pytest.mark.asyncio(loop_scope="module")


@module_loop
async def test_a_program_that_type_checks_passes(warm: TypeChecker) -> None:
    assert await warm.check(GOOD, DECLARATIONS) is None


@module_loop
async def test_wrong_argument_type_names_the_line_in_the_program(warm: TypeChecker) -> None:
    assert await warm.check(WRONG_ARGUMENT, DECLARATIONS) == TypeCheckFailure(
        "Type 'number' is not assignable to type 'string'. (TS2322)", 2
    )


@module_loop
async def test_every_error_is_reported_first_one_first(warm: TypeChecker) -> None:
    failure = await warm.check(MISSING_FIELD_AND_TYPO, DECLARATIONS)
    assert failure == TypeCheckFailure(
        "Argument of type '{ days: number; }' is not assignable to parameter of type "
        "'{ city: string; days?: number | undefined; }'.\n"
        "  Property 'city' is missing in type '{ days: number; }' but required in type "
        "'{ city: string; days?: number | undefined; }'. (TS2345)\n"
        "line 2: Property 'temprature' does not exist on type "
        "'{ temperature: number; summary: string; }'. "
        "Did you mean 'temperature'? (TS2551)",
        1,
    )


@module_loop
async def test_syntax_error_has_its_line(warm: TypeChecker) -> None:
    code = "const a = 1;\nconst b = (a +;\nreturn b;"
    assert await warm.check(code, DECLARATIONS) == TypeCheckFailure(
        "Expression expected. (TS1109)", 2
    )


@module_loop
async def test_unclosed_brace_points_at_the_last_line(warm: TypeChecker) -> None:
    code = "if (true) {\n  console.log(1);"
    assert await warm.check(code, DECLARATIONS) == TypeCheckFailure("'}' expected. (TS1005)", 2)


@module_loop
async def test_unknown_function_and_crlf_line_endings(warm: TypeChecker) -> None:
    code = "const a = 1;\r\nconst b = 2;\r\nawait external_nope({});\r\n"
    assert await warm.check(code, DECLARATIONS) == TypeCheckFailure(
        "Cannot find name 'external_nope'. (TS2304)", 3
    )


@module_loop
async def test_without_declarations(warm: TypeChecker) -> None:
    assert await warm.check("return 1 + 1;", "") is None
    assert await warm.check("const x: string = 1;", "") == TypeCheckFailure(
        "Type 'number' is not assignable to type 'string'. (TS2322)", 1
    )


@module_loop
async def test_concurrent_checks_each_get_their_own_answer(warm: TypeChecker) -> None:
    cities = ["42" if i % 2 else '"x"' for i in range(12)]
    programs = [
        f"const r = await external_get_weather({{ city: {city} }});\nreturn r.temperature + {i};"
        for i, city in enumerate(cities)
    ]
    results = await asyncio.gather(*(warm.check(p, DECLARATIONS) for p in programs))
    wrong = TypeCheckFailure("Type 'number' is not assignable to type 'string'. (TS2322)", 1)
    assert results == [wrong if i % 2 else None for i in range(12)]


@module_loop
async def test_imports_cannot_read_host_files(warm: TypeChecker, tmp_path: Path) -> None:
    secret = tmp_path / "secret.ts"
    secret.write_text('export const SECRET = "hunter2" as const;\n')
    code = f'const m = await import("{secret.as_uri()}");\nconst x: "a" = m.SECRET;'
    failure = await warm.check(code, DECLARATIONS)
    assert failure == TypeCheckFailure(
        f"Cannot import {secret.as_uri()}: programs cannot import modules; "
        "call the external_* functions instead.",
        1,
    )
    escape = f'}}\nimport {{ SECRET }} from "{secret}";\nconst y: "a" = SECRET;\nfunction f() {{'
    failure = await warm.check(escape, DECLARATIONS)
    assert failure is not None and "hunter2" not in failure.message
    assert failure.line == 2


@module_loop
async def test_the_program_is_never_run(warm: TypeChecker, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    code = f'Deno.writeTextFileSync("{marker}", "x");\nreturn 1;'
    assert await warm.check(code, DECLARATIONS) is None
    assert not marker.exists()


@module_loop
async def test_cold_path_gives_the_same_answers() -> None:
    async with TypeChecker(warm=False) as cold:
        assert await cold.check(GOOD, DECLARATIONS) is None
        assert await cold.check(WRONG_ARGUMENT, DECLARATIONS) == TypeCheckFailure(
            "Type 'number' is not assignable to type 'string'. (TS2322)", 2
        )
        assert await cold.check("const a = 1;\nconst b = (a +;", "") == TypeCheckFailure(
            "SyntaxError: Expression expected", 2
        )


@module_loop
async def test_a_dead_server_is_replaced_and_aclose_leaves_no_process() -> None:
    checker = TypeChecker()
    assert await checker.check("return 1;", "") is None
    first = _server_pid(checker)
    psutil.Process(first).kill()
    lsp = checker._lsp
    assert lsp is not None
    for _ in range(250):  # the checker notices the death (at once when idle; slower under load)
        if not lsp.alive:
            break
        await asyncio.sleep(0.02)
    assert await checker.check("const x: string = 1;", "") == TypeCheckFailure(
        "Type 'number' is not assignable to type 'string'. (TS2322)", 1
    )
    second = _server_pid(checker)
    assert second != first
    await checker.aclose()
    assert not _running(second)
    with pytest.raises(TypeCheckerError, match="closed"):
        await checker.check("return 1;", "")
    await checker.aclose()  # idempotent


def _server_pid(checker: TypeChecker) -> int:
    lsp = checker._lsp
    assert lsp is not None and lsp._proc is not None
    return lsp._proc.pid


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_usable_from_successive_event_loops() -> None:
    """A sync caller may run each check in its own ``asyncio.run``: the server stays warm."""
    checker = TypeChecker()
    assert asyncio.run(checker.check("return 1;", "")) is None
    pid = _server_pid(checker)
    assert asyncio.run(checker.check("const x: string = 2;", "")) == TypeCheckFailure(
        "Type 'number' is not assignable to type 'string'. (TS2322)", 1
    )
    assert _server_pid(checker) == pid
    assert checker._io is not None
    thread = checker._io._thread
    asyncio.run(checker.aclose())
    assert not _running(pid)
    assert not thread.is_alive()


def test_parse_check_output_reads_type_and_syntax_errors() -> None:
    output = (
        "TS2345 [ERROR]: Argument of type 'number' is not assignable.\n"
        "  Types of property 'a' are incompatible.\n"
        "  await external_foo(1);\n"
        "                     ^\n"
        "    at file:///w/p.ts:4:22\n"
        "\n"
        "    The expected type comes from here\n"
        "    declare function external_foo(a: string): void;\n"
        "                                  ^\n"
        "        at file:///w/p.ts:1:35\n"
        "\n"
        "error: Type checking failed.\n"
        "error: SyntaxError: Expression expected\n"
        "  |\n"
        "6 | }\n"
        "  | ~\n"
        "    at file:///w/p.ts:6:1\n"
    )
    diagnostics = parse_check_output(output, Path("/w/p.ts"))
    assert [(d.line, d.character, d.code, d.message) for d in diagnostics] == [
        (
            3,
            21,
            2345,
            "Argument of type 'number' is not assignable.\n"
            "  Types of property 'a' are incompatible.",
        ),
        (5, 0, None, "SyntaxError: Expression expected"),
    ]
