"""Programs the way models write them (issue 10): every shape gives the value a reader would
expect, nothing succeeds silently without its result, and errors say what to fix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from pydantic import BaseModel

from codemode import CodeModeToolResult, DenoSandbox, create_code_mode, create_tool

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[DenoSandbox]:
    async with DenoSandbox() as box:
        yield box


class Pair(BaseModel):
    a: float
    b: float


def arithmetic() -> dict[str, Any]:
    return {
        "add": create_tool(
            id="add",
            description="a + b",
            input_schema=Pair,
            output_schema=float,
            execute=lambda p: p.a + p.b,
        ),
        "mul": create_tool(
            id="mul",
            description="a * b",
            input_schema=Pair,
            output_schema=float,
            execute=lambda p: p.a * p.b,
        ),
    }


async def execute(sandbox: DenoSandbox, code: str, tools: Any = None) -> CodeModeToolResult:
    code_tool, _ = create_code_mode(tools=arithmetic() if tools is None else tools, sandbox=sandbox)
    return await code_tool.execute({"code": code})


async def model_view(sandbox: DenoSandbox, code: str, tools: Any = None) -> dict[str, Any]:
    return (await execute(sandbox, code, tools)).to_json()


# -- 1. null is a result, undefined is none ---------------------------------------------------


async def test_return_null_is_a_null_result(sandbox: DenoSandbox) -> None:
    result = await execute(sandbox, "return null")
    assert (result.result, result.has_result) == (None, True)
    assert result.to_json() == {"success": True, "result": None, "logs": []}
    assert result.model_dump(exclude_none=True) == {"success": True, "result": None, "logs": []}
    assert result.model_dump_json(exclude_none=True) == '{"success":true,"result":null,"logs":[]}'


async def test_return_undefined_has_no_result(sandbox: DenoSandbox) -> None:
    result = await execute(sandbox, "return undefined")
    assert result.has_result is False
    assert result.to_json() == {"success": True, "logs": []}


# -- 2-4. shapes of programs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ("42", 42),
        ("const x = 21\nx * 2", 42),
        ("async function main() { return 'main' }\nawait main()", "main"),
        (
            "const rows = [{ ok: true, n: 1 }, { ok: false, n: 2 }]\nrows.filter(r => r.ok)",
            [{"ok": True, "n": 1}],
        ),
        ("await external_add({ a: 40, b: 2 })", 42),
        ("const a = 1\nif (a > 0) { return 'explicit' }\na + 1", "explicit"),
        ("async () => 42", 42),
        ("async () => {\n  return await external_mul({ a: 6, b: 7 })\n}", 42),
        (
            "export default async function main() {\n"
            "  return await external_add({ a: 1, b: 2 })\n}",
            3,
        ),
        ("export default async () => 'default arrow'", "default arrow"),
        (
            "async function main() {\n"
            "  const s = await external_add({ a: 2, b: 2 })\n  return s * 10\n}",
            40,
        ),
        ("Here is the program:\n```ts\nreturn 6\n```\nIt returns 6.", 6),
        ("Python first:\n```python\nprint(1)\n```\nthen:\n```typescript\nreturn 'ts'\n```", "ts"),
    ],
    ids=[
        "literal",
        "expression",
        "await-main",
        "filter",
        "tool-call",
        "explicit-return-wins",
        "arrow-expression",
        "arrow-block",
        "export-default-function",
        "export-default-arrow",
        "lone-main",
        "prose-around-fence",
        "tagged-fence",
    ],
)
async def test_program_gives_its_value(sandbox: DenoSandbox, code: str, value: Any) -> None:
    assert await model_view(sandbox, code) == {"success": True, "result": value, "logs": []}


async def test_a_declaration_gives_nothing(sandbox: DenoSandbox) -> None:
    assert await model_view(sandbox, "const x = 1") == {"success": True, "logs": []}


async def test_lines_in_prose_are_the_models_own(sandbox: DenoSandbox) -> None:
    code = "I'll compute it:\n\n```ts\nconst a = 1\nthrow new Error('boom')\n```\nThat's all."
    result = await model_view(sandbox, code)
    assert result["error"] == {"message": "boom", "name": "Error", "line": 5}


# -- 5. a syntax error at the end of input ---------------------------------------------------


@pytest.mark.parametrize(
    ("code", "line"),
    [("return (1 +", 1), ("const a = 1\nreturn (a +\n\n", 2), ("```ts\nconst a = [1,\n```", 2)],
    ids=["one-line", "trailing-blank-lines", "fenced"],
)
async def test_syntax_error_at_end_of_input_is_on_the_last_line(
    sandbox: DenoSandbox, code: str, line: int
) -> None:
    error = (await model_view(sandbox, code))["error"]
    assert (error["name"], error["line"]) == ("SyntaxError", line)


# -- 6. a Promise or a function instead of a value -------------------------------------------


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "return { sum: external_add({ a: 1, b: 2 }) }",
            "result holds a Promise at result.sum: a call was not awaited; add `await` "
            "(for several calls, `await Promise.all([...])`).",
        ),
        (
            "return [1, 2].map(n => external_add({ a: n, b: n }))",
            "result holds a Promise at result[0]: a call was not awaited; add `await` "
            "(for several calls, `await Promise.all([...])`).",
        ),
        (
            "async function main() { return 1 }\nreturn main",
            "The program returned a function instead of its value: call it, e.g. "
            "`return await main()`.",
        ),
        (
            "return external_add",
            "The program returned a function instead of its value: call it, e.g. "
            "`return await main()`.",
        ),
    ],
    ids=["promise-in-object", "promises-in-array", "function", "tool-function"],
)
async def test_unfinished_results_are_a_result_error(
    sandbox: DenoSandbox, code: str, message: str
) -> None:
    assert await model_view(sandbox, code) == {
        "success": False,
        "logs": [],
        "error": {"message": message, "name": "ResultError"},
    }


async def test_a_promise_passed_to_a_tool_is_a_catchable_type_error(sandbox: DenoSandbox) -> None:
    code = (
        "try {\n"
        "  return await external_add(external_mul({ a: 1, b: 2 }) as any)\n"
        "} catch (e) { return `${e.name}: ${e.message}` }"
    )
    assert (await model_view(sandbox, code))["result"] == (
        "TypeError: The input of external_add is a Promise: add `await`."
    )


# -- 7. calling what does not exist ----------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "await external_sub({ a: 1, b: 2 })",
            "external_sub is not defined. Available: external_add, external_mul.",
        ),
        (
            "return await external_ad({ a: 1, b: 2 })",
            "external_ad is not defined. Available: external_add, external_mul "
            "(did you mean external_add?).",
        ),
        (
            "const total = await addNumbers({ a: 1, b: 2 })",
            "addNumbers is not defined. Available: external_add, external_mul "
            "(did you mean external_add?).",
        ),
    ],
    ids=["unknown", "typo", "without-prefix"],
)
async def test_calling_an_undefined_function_lists_what_exists(
    sandbox: DenoSandbox, code: str, message: str
) -> None:
    error = (await model_view(sandbox, code))["error"]
    assert error == {"message": message, "name": "ReferenceError", "line": 1}


async def test_a_large_catalog_lists_only_the_closest_names(sandbox: DenoSandbox) -> None:
    tools = {
        f"{verb}_{noun}": create_tool(
            id=f"{verb}_{noun}", description="", input_schema={}, execute=dict
        )
        for verb in ["get", "list", "create", "delete"]
        for noun in ["user", "issue", "repo", "comment", "label"]
    }
    error = (await model_view(sandbox, "await getUsers()", tools))["error"]
    assert error["message"] == (
        "getUsers is not defined. 20 functions are available; the closest: external_get_user, "
        "external_create_user, external_delete_user, external_get_issue, external_list_user "
        "(did you mean external_get_user?)."
    )


async def test_an_undefined_variable_keeps_its_message(sandbox: DenoSandbox) -> None:
    error = (await model_view(sandbox, "const y = x + 1"))["error"]
    assert error == {"message": "x is not defined", "name": "ReferenceError", "line": 1}


# -- 8. a call that fails validation shows the expected input --------------------------------


async def test_validation_error_shows_the_expected_input(sandbox: DenoSandbox) -> None:
    error = (await model_view(sandbox, "return await external_add({ a: 'one', b: 2 })"))["error"]
    assert error == {
        "message": "Tool input validation failed for add:\n"
        "- a: Input should be a valid number, unable to parse string as a number\n"
        "Expected: external_add(input: { a: number; b: number; })",
        "name": "ValidationError",
        "line": 1,
    }


async def test_a_program_that_only_declares_functions_is_a_result_error(
    sandbox: DenoSandbox,
) -> None:
    code = "async function fetchTotal(id: string) {\n  return await external_add({ a: 1, b: 2 })\n}"
    assert await model_view(sandbox, code) == {
        "success": False,
        "logs": [],
        "error": {
            "message": "The program only declares functions and never calls one: call the one "
            "that does the work and return its value, e.g. `return await main()`.",
            "name": "ResultError",
            "line": 3,
        },
    }
