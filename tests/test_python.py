"""Python programs in Monty: every claim the Python contract makes, the JSON rules for results
and arguments, a forgotten ``await``, program preparation, and the worker processes' lifetime."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codemode import MontySandbox, create_code_mode, create_code_mode_instructions, create_tool
from codemode.languages.python._contract import IMPORTABLE_MODULES
from codemode.languages.python._program import (
    PRELUDE,
    RESULT_MARKER,
    checkable_program,
    prepare_program,
    statements,
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[MontySandbox]:
    """One sandbox for the module: Monty's pool is not tied to an event loop."""
    box = MontySandbox()
    yield box
    box.close()


async def run(code: str, sandbox: MontySandbox, tools: Any = (), **options: Any) -> dict[str, Any]:
    code_tool = create_code_mode(tools=list(tools), sandbox=sandbox, **options).tool
    return (await code_tool.execute({"code": code})).model_dump(exclude_none=True)


def echo() -> Any:
    return create_tool(id="echo", description="Echo", input_schema={}, execute=lambda v: v)


def ok(result: Any, logs: list[str] | None = None) -> dict[str, Any]:
    return {"success": True, "result": result, "logs": logs or []}


def test_the_language_follows_the_sandbox() -> None:
    code_tool, instructions = create_code_mode(tools=[echo()], sandbox=MontySandbox())
    assert code_tool.id == "execute_python"
    assert code_tool.language.name == "python"
    assert "runs a Python program in a sandbox" in instructions
    assert "async def external_echo(**input: Any) -> Any:" in instructions
    assert "Promise" not in instructions and "TypeScript" not in instructions
    assert instructions == create_code_mode_instructions(
        tools=[echo()], id="execute_python", language="python"
    )


# -- the contract, claim by claim ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("x = await external_echo(n=20)\nx['n'] + 1", 21),  # top-level await, last expression
        ("return 5", 5),  # `return` at the top level
        ("if True:\n    return 'early'\n'late'", "early"),
        ("x = 1", None),  # no last expression: no result
        ("print('only a print')", None),  # a last expression of None: no result
        ("a = 1; a + 1", 2),  # the last statement of a line
        ("async def main():\n    return await external_echo(v=1)\n", {"v": 1}),  # lone main
        (
            "import asyncio\nasync def main():\n    return 2\nasyncio.run(main())",
            2,
        ),
        ("```python\n6 * 7\n```", 42),
        ("Here it is:\n```py\nx = 6\nx * 7\n```\nIt returns 42.", 42),
        ('md = """\n```python\nnot run\n```\n"""\nlen(md)', 23),
        ("def f():\n    return 1\nf() + 1", 2),  # a function's return is not the result
    ],
    ids=[
        "await-and-last-expression",
        "top-level-return",
        "return-in-block",
        "no-result",
        "print-last",
        "semicolons",
        "lone-async-main",
        "asyncio-run",
        "fence",
        "prose-around-fence",
        "fence-in-a-string",
        "function-return",
    ],
)
async def test_program_shapes(sandbox: MontySandbox, code: str, expected: Any) -> None:
    result = await run(code, sandbox, [echo()])
    assert result["success"] is True, result
    assert result.get("result") == expected


async def test_none_returned_is_null_and_a_trailing_none_is_no_result(
    sandbox: MontySandbox,
) -> None:
    assert await run("return None", sandbox) == {"success": True, "result": None, "logs": []}
    assert await run("x = 1\nNone if x else 2", sandbox) == {"success": True, "logs": []}
    assert await run("print('done')", sandbox) == {"success": True, "logs": ["done"]}


async def test_gather_runs_calls_in_parallel(sandbox: MontySandbox) -> None:
    running = 0
    most = 0

    async def wait(input: dict[str, Any]) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)
        running -= 1
        return int(input["i"])

    slow = create_tool(id="slow", description="", input_schema={}, execute=wait)
    code = "import asyncio\nawait asyncio.gather(*[external_slow(i=i) for i in range(10)])"
    assert await run(code, sandbox, [slow]) == ok(list(range(10)))
    assert most == 10


async def test_print_is_captured_line_by_line(sandbox: MontySandbox) -> None:
    code = (
        "import sys\nprint('a', 1, [2])\nprint('no newline', end='')\nprint(' joined')\n"
        "print('two\\nlines')\nprint('oops', file=sys.stderr)\n'done'"
    )
    assert await run(code, sandbox) == ok(
        "done", ["a 1 [2]", "no newline joined", "two", "lines", "[stderr] oops"]
    )


async def test_every_listed_module_imports(sandbox: MontySandbox) -> None:
    code = "\n".join(f"import {m}" for m in IMPORTABLE_MODULES) + "\n'imported'"
    assert await run(code, sandbox) == ok("imported")


@pytest.mark.parametrize(
    ("code", "name", "message"),
    [
        (
            "class A:\n    pass\nclass B(A):\n    pass",
            "NotImplementedError",
            "The monty syntax parser does not yet support class inheritance and metaclasses",
        ),
        (
            "class MyError(Exception):\n    pass",
            "NotImplementedError",
            "The monty syntax parser does not yet support class inheritance and metaclasses",
        ),
        (
            "def g():\n    yield 1\nlist(g())",
            "NotImplementedError",
            "The monty syntax parser does not yet support yield expressions",
        ),
        (
            "import asyncio\nawait asyncio.gather(external_echo(), return_exceptions=True)",
            "NotImplementedError",
            "gather() does not yet support keyword arguments",
        ),
        (
            "import asyncio\nasyncio.create_task(external_echo())",
            "AttributeError",
            "module 'asyncio' has no attribute 'create_task'",
        ),
        ("import numpy", "ModuleNotFoundError", "No module named 'numpy'"),
        ("import statistics", "ModuleNotFoundError", "No module named 'statistics'"),
        ("import socket", "ModuleNotFoundError", "No module named 'socket'"),
        ("open('/etc/passwd').read()", "PermissionError", "Permission denied: '/etc/passwd'"),
        (
            "import os\nos.getenv('HOME')",
            "RuntimeError",
            "'os.getenv' is not supported in this environment",
        ),
    ],
    ids=[
        "inheritance",
        "custom-exception",
        "generators",
        "gather-kwargs",
        "create-task",
        "third-party",
        "statistics",
        "network",
        "files",
        "environment",
    ],
)
async def test_what_is_not_supported_fails_clearly(
    sandbox: MontySandbox, code: str, name: str, message: str
) -> None:
    result = await run(code, sandbox, [echo()])
    assert result["success"] is False
    assert (result["error"]["name"], result["error"]["message"]) == (name, message)


async def test_sleeping_waits_on_the_host(sandbox: MontySandbox) -> None:
    code = (
        "import asyncio, time\nawait asyncio.gather(asyncio.sleep(0.05), asyncio.sleep(0.05))\n"
        "time.sleep(0.01)\n'slept'"
    )
    assert await run(code, sandbox) == ok("slept")


async def test_a_tool_function_can_be_passed_around(sandbox: MontySandbox) -> None:
    code = "call = external_echo\nawait call(via='reference')"
    assert await run(code, sandbox, [echo()]) == ok({"via": "reference"})


async def test_one_dict_is_accepted_as_the_input(sandbox: MontySandbox) -> None:
    assert await run("await external_echo({'a-b': 1})", sandbox, [echo()]) == ok({"a-b": 1})
    assert await run("await external_echo(**{'a-b': 1})", sandbox, [echo()]) == ok({"a-b": 1})
    mixed = await run("await external_echo({'a': 1}, b=2)", sandbox, [echo()])
    assert mixed["error"] == {
        "message": "external_echo() takes keyword arguments (or one dict): "
        "await external_echo(field=value, ...)",
        "name": "TypeError",
        "line": 1,
    }


async def test_undefined_functions_are_name_errors(sandbox: MontySandbox) -> None:
    result = await run("bytearray(b'x')", sandbox)
    assert result["error"] == {
        "message": "name 'bytearray' is not defined. "
        "No external_* functions are available to this program.",
        "name": "NameError",
        "line": 1,
    }


# -- JSON across the boundary ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("(1, 'a', (2, 3))", [1, "a", [2, 3]]),
        ("{3, 1, 2}", [1, 2, 3]),
        ("frozenset(['b', 'a'])", ["a", "b"]),
        (
            "{1: 'int', None: 'none', False: 'bool', 1.5: 'float'}",
            {"1": "int", "null": "none", "false": "bool", "1.5": "float"},
        ),
        (
            "import datetime\n"
            "[datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2, 3, 4, 5), "
            "datetime.time(6, 7), datetime.timedelta(minutes=1, seconds=30)]",
            ["2024-01-02", "2024-01-02T03:04:05", "06:07:00", 90.0],
        ),
        ("import decimal\ndecimal.Decimal('1.25')", 1.25),
        ("1 << 70", 1 << 70),
        ("'é ✓ \\u2028'", "é ✓ \u2028"),
    ],
    ids=["tuple", "set", "frozenset", "keys", "dates", "decimal", "big-int", "unicode"],
)
async def test_values_convert_to_json_by_the_documented_rules(
    sandbox: MontySandbox, code: str, expected: Any
) -> None:
    assert await run(code, sandbox) == ok(expected)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "{'data': b'\\x00\\xff'}",
            "result is not JSON: bytes at result['data'] (decode them: .decode() for text, "
            "base64.b64encode(...).decode() for binary)",
        ),
        (
            "[1.0, float('nan')]",
            "result is not JSON: nan at result[1] (NaN and infinity have no JSON form; use None "
            "or a string)",
        ),
        (
            "{(1, 2): 'pair'}",
            "result is not JSON: a key of type tuple at result (JSON keys are strings)",
        ),
        ("a = []\na.append(a)\na", "result is not JSON: circular reference at result[0]"),
        ("range(3)", "result is not JSON: range at result (convert it with list())"),
        ("{'f': len}", "result is not JSON: builtin_function_or_method at result['f']"),
        (
            "class Point:\n    def __init__(self):\n        self.x = 1\nPoint()",
            "result is not JSON: an instance of Point at result (return a dict of its fields)",
        ),
    ],
    ids=["bytes", "nan", "tuple-key", "cycle", "range", "function", "object"],
)
async def test_values_without_a_json_form_are_a_clear_type_error(
    sandbox: MontySandbox, code: str, message: str
) -> None:
    result = await run(code, sandbox)
    assert result["success"] is False
    assert (result["error"]["name"], result["error"]["message"]) == ("TypeError", message)
    assert result["error"]["line"] == code.count("\n") + 1  # the statement that gave the result


async def test_arguments_follow_the_same_rules(sandbox: MontySandbox) -> None:
    code = (
        "import datetime\n"
        "await external_echo(when=datetime.date(2024, 5, 6), ids={2, 1}, pair=(1, 2))"
    )
    assert await run(code, sandbox, [echo()]) == ok(
        {"when": "2024-05-06", "ids": [1, 2], "pair": [1, 2]}
    )
    bad = await run("await external_echo(data=b'raw')", sandbox, [echo()])
    assert bad["error"] == {
        "message": "input of external_echo is not JSON: bytes at input['data'] (decode them: "
        ".decode() for text, base64.b64encode(...).decode() for binary)",
        "name": "TypeError",
        "line": 1,
    }


# -- a forgotten await ---------------------------------------------------------------------------

FORGOT = "add `await` before the external_* call (or await asyncio.gather(...) for several)"


@pytest.mark.parametrize(
    ("code", "where"),
    [
        ("external_echo(a=1)", "result is not JSON: an un-awaited coroutine at result"),
        ("{'x': external_echo(a=1)}", "result is not JSON: an un-awaited coroutine at result['x']"),
        (
            "import asyncio\nasyncio.gather(external_echo(a=1))",
            "result is not JSON: an un-awaited coroutine at result",
        ),
        (
            "await external_echo(inner=external_echo(a=1))",
            "input of external_echo is not JSON: an un-awaited coroutine at input['inner']",
        ),
        (
            "async def helper():\n    return 1\nawait external_echo(v=[helper()])",
            "input of external_echo is not JSON: an un-awaited coroutine at input['v'][0]",
        ),
    ],
    ids=["result", "nested-result", "gather", "argument", "local-coroutine-argument"],
)
async def test_a_forgotten_await_is_reported_as_such(
    sandbox: MontySandbox, code: str, where: str
) -> None:
    result = await run(code, sandbox, [echo()])
    assert result["success"] is False
    assert result["error"]["name"] == "TypeError"
    assert result["error"]["message"] == f"{where}; {FORGOT}"
    assert "<coroutine" not in str(result)


async def test_using_an_unawaited_result_says_coroutine(sandbox: MontySandbox) -> None:
    result = await run("r = external_echo(a=1)\nr['a']", sandbox, [echo()])
    assert result["error"] == {
        "message": "'coroutine' object is not subscriptable",
        "name": "TypeError",
        "line": 2,
    }


# -- program preparation -------------------------------------------------------------------------


def _body(code: str) -> str:
    program = prepare_program(code)
    assert program.source.startswith(PRELUDE)
    assert program.line_offset == PRELUDE.count("\n")
    return program.source[len(PRELUDE) :]


@pytest.mark.parametrize(
    ("code", "prepared"),
    [
        ("x = 1\nx + 1", f"x = 1\n{RESULT_MARKER}(x + 1, False)"),
        ("return {'a': 1}  # done", f"return {RESULT_MARKER}({{'a': 1}})  # done"),
        (
            'x = f"{a["k"]:>{w}}"  # 3.12 quotes\nx',
            f'x = f"{{a["k"]:>{{w}}}}"  # 3.12 quotes\n{RESULT_MARKER}(x, False)',
        ),
        ("s = '''a\nb'''\ns", f"s = '''a\nb'''\n{RESULT_MARKER}(s, False)"),
        ("(1,\n 2)", f"{RESULT_MARKER}((1,\n 2), False)"),
        ("x: int = 1", "x: int = 1"),
        ("for i in y: pass", "for i in y: pass"),
        (
            "if x: return 3\nelse: return 4",
            f"if x: return {RESULT_MARKER}(3)\nelse: return {RESULT_MARKER}(4)",
        ),
        ("def f():\n    return 1\nf()", f"def f():\n    return 1\n{RESULT_MARKER}(f(), False)"),
        ("x = lambda: 1\nlambda y: y", f"x = lambda: 1\n{RESULT_MARKER}(lambda y: y, False)"),
        ("match = 3\nmatch", f"match = 3\n{RESULT_MARKER}(match, False)"),
        ("x = 1 \\\n  + 2\nx", f"x = 1 \\\n  + 2\n{RESULT_MARKER}(x, False)"),
        ("y = 2\nreturn", "y = 2\nreturn"),
    ],
)
def test_the_result_is_wrapped_without_moving_a_line(code: str, prepared: str) -> None:
    assert _body(code) == prepared


def test_the_checker_sees_the_program_without_the_wrapping() -> None:
    assert checkable_program("```python\nx = 1\nx\n```") == "\nx = 1\nx\n"
    assert checkable_program("async def main():\n    return 1\n") == (
        "async def main():\n    return 1\nawait main()\n"
    )


_STATEMENTS = st.sampled_from(
    [
        "x = 1",
        "y = (1,\n     2)",
        "print('a')",
        "z = {'k': [1, 2]}",
        "s = '''multi\nline'''",
        "t = f'{x!r:>10}'",
        "if x:\n    y = 2\nelse:\n    y = 3",
        "for i in range(3):\n    x += i",
        "def f(a, b=2):\n    return a + b",
        "async def g():\n    return await h()",
        "x += 1",
        "a: int = 3",
        "del x",
        "import json",
        "try:\n    pass\nexcept ValueError as e:\n    raise",
        "while False:\n    break",
        "lambda q: q",
        "x == 1",
        "[i for i in range(2)]",
        "# a comment",
        "x = 1; y = 2",
        "with a as b:\n    pass",
        "class C:\n    def m(self):\n        return 1",
        "assert x, 'message'",
    ]
)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(_STATEMENTS, min_size=1, max_size=6))
def test_the_scanner_agrees_with_pythons_parser(parts: list[str]) -> None:
    """For programs CPython parses, the scanner finds the same top-level statements and the
    same last expression, so the wrapping is exactly the one ``ast`` would choose."""
    code = "\n".join(parts)
    tree = ast.parse(code)
    continuation = ("else", "elif", "except", "finally")
    found = [
        s
        for s in statements(code)
        if s.indent == 0 and not s.inline and s.first not in continuation
    ]
    assert [s.start for s in found] == [_offset(code, n.lineno, n.col_offset) for n in tree.body]
    if not tree.body:
        return
    last = tree.body[-1]
    wraps_last = f"{RESULT_MARKER}(" in _body(code).split("\n")[last.lineno - 1]
    assert wraps_last == isinstance(last, ast.Expr)


def _offset(code: str, line: int, column: int) -> int:
    lines = code.split("\n")
    return sum(len(x) + 1 for x in lines[: line - 1]) + len(
        lines[line - 1].encode()[:column].decode()
    )


# -- worker processes ---------------------------------------------------------------------------


def monty_workers() -> set[int]:
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() == "monty" and child.status() != psutil.STATUS_ZOMBIE:
                found.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return found


async def test_workers_are_warm_and_closing_stops_them() -> None:
    before = monty_workers()
    sandbox = MontySandbox(prestart=2)
    await sandbox.start()
    warm = monty_workers() - before
    assert len(warm) == 2
    assert await run("1 + 1", sandbox) == ok(2)
    await sandbox.aclose()
    for _ in range(100):
        if not (monty_workers() - before):
            break
        await asyncio.sleep(0.02)
    assert monty_workers() - before == set()


async def test_a_timeout_replaces_the_worker_and_the_next_program_runs(
    sandbox: MontySandbox,
) -> None:
    result = await run("while True:\n    pass", sandbox, timeout=200)
    assert result["error"]["name"] == "TimeoutError"
    assert await run("'after'", sandbox) == ok("after")


SCRIPT = """
import asyncio, psutil, sys
from codemode import MontySandbox, create_code_mode
sandbox = MontySandbox()
tool = create_code_mode(tools=[], sandbox=sandbox, timeout=300).tool
async def main():
    print((await tool.execute({"code": "print('x')\\n1 + 1"})).result)
    print((await tool.execute({"code": "while True:\\n    pass"})).error.name)
{how}
print(" ".join(str(p.pid) for p in psutil.Process().children(recursive=True)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "how",
    ["asyncio.run(main())", "print(tool.execute_sync({'code': '1 + 2'}).result)"],
    ids=["asyncio-run", "execute-sync"],
)
def test_a_script_that_never_closes_its_sandbox_exits_silently(how: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT.replace("{how}", how))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    children = [int(p) for p in done.stderr.split()]  # the script's only stderr output
    assert children, "the workers were running when the script ended"
    assert done.stdout.strip() in ("2\nTimeoutError", "3")
    for pid in children:
        try:
            process = psutil.Process(pid)
            process.wait(timeout=5)
        except (psutil.NoSuchProcess, psutil.TimeoutExpired):
            pass
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


async def test_the_host_checks_the_result_limit_again(sandbox: MontySandbox) -> None:
    """The limit the prelude checks is a global the program can rebind: the host checks too."""
    code = "__codemode_max_result_bytes__ = 10**9\n'x' * 200"
    result = await run(code, sandbox, max_result_bytes=100)
    assert result["error"] == {
        "name": "ResultTooLargeError",
        "message": "The result is 202 bytes of JSON, over the limit of 100; return a smaller "
        "value (filter, aggregate or paginate).",
    }
