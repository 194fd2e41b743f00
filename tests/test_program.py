"""Program preparation (pure) and the runner's own source (type-checked and linted)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from codemode.languages.typescript._program import (
    PRELUDE,
    extract_code,
    prepare_body,
    prepare_program,
)
from codemode.sandboxes._runner_build import RUNNER_SOURCE, built_digest, source_digest
from codemode.sandboxes.deno import deno_executable


def test_body_is_wrapped_without_moving_lines() -> None:
    program = prepare_program("const a = 1\nreturn a")
    assert program.source == PRELUDE + "const a = 1\nreturn a\n}\n"
    assert program.source.split("\n")[program.line_offset + 1] == "return a"
    assert program.last_line == 2


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("```ts\nreturn 1\n```", "\nreturn 1\n"),
        ("\n  ```typescript\nreturn 1\n```  \n", "\n\nreturn 1\n\n"),
        ("```\nreturn 1\n```", "\nreturn 1\n"),
        ("return '```'", "return '```'"),
        ("```ts\nreturn 1", "```ts\nreturn 1"),  # unbalanced: left for the parser to report
        # prose around the block: only the code is kept, on its own lines
        ("Here it is:\n```ts\nreturn 6\n```\nIt returns 6.", "\n\nreturn 6\n\n"),
        # several blocks: the one tagged as code wins over the first
        (
            "First:\n```python\nprint(1)\n```\nthen\n~~~js\nreturn 2\n~~~\n",
            "\n\n\n\n\n\nreturn 2\n\n",
        ),
        ("```\nreturn 1\n```\nor\n```bash\nls\n```", "\nreturn 1\n\n\n\n\n"),
        # a longer fence holds a shorter one
        ("````ts\nconst s = 1\n```\n````", "\nconst s = 1\n```\n"),
    ],
    ids=["ts", "indented", "bare", "in-string", "unbalanced", "prose", "tagged", "first", "nested"],
)
def test_code_is_extracted_from_fences_keeping_line_numbers(code: str, expected: str) -> None:
    assert extract_code(code) == expected


DEFAULT = (
    '__codemode_default__ === "function" ? await __codemode_default__() : await '
    "__codemode_default__"
)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        # a notebook's last expression
        ("42", "return 42"),
        ("const x = 2\nx * 2", "const x = 2\nreturn x * 2"),
        ("rows\n  .filter(r => r.ok)", "return rows\n  .filter(r => r.ok)"),
        (
            "await main()\nasync function main() { return 1 }",
            "return await main()\nasync function main() { return 1 }",
        ),
        # a whole program that is a function: what calling it gives
        ("async () => 42", "return await (async () => 42)()"),
        ("async () => {\n  return 1\n}", "return await (async () => {\n  return 1\n})()"),
        ("(async () => {\n  return 1\n})()", "return (async () => {\n  return 1\n})()"),
        (
            "export default async function main() {\n  return 5\n}",
            "const __codemode_default__ = async function main() {\n  return 5\n}; return typeof "
            + DEFAULT
            + ";",
        ),
        (
            "export default async () => 7",
            "const __codemode_default__ = async () => 7; return typeof " + DEFAULT + ";",
        ),
        (
            "async function main() {\n  return 9\n}",
            "async function main() {\n  return 9\n}; return await main();",
        ),
        ("export const x = 1\nx", "const x = 1\nreturn x"),
        (
            "async function main() {\n  return helper(2)\n}\nfunction helper(x) { return x }",
            "async function main() {\n  return helper(2)\n}\nfunction helper(x) { return x }"
            "; return await main();",
        ),
    ],
    ids=[
        "literal",
        "expression",
        "chained",
        "call-above-declaration",
        "arrow-expression",
        "arrow-block",
        "invoked-arrow",
        "export-default-function",
        "export-default-arrow",
        "lone-main",
        "export-const",
        "main-and-helper",
    ],
)
def test_programs_are_rewritten_to_give_their_value(code: str, expected: str) -> None:
    assert prepare_body(code).text == expected


@pytest.mark.parametrize(
    "code",
    [
        "return 1",
        "const x = 1",  # a declaration gives nothing
        "const a = 1\nif (a) { return 3 }\na + 1",  # an explicit return anywhere wins
        "async function main() { return 1 }\nconst r = await main()",  # used: not the program
        "const f = async () => { return 1 }\nreturn f()",
        "return (1 +",  # does not parse: Deno reports it
        "for (const x of [1]) { console.log(x) }",
    ],
)
def test_other_programs_are_left_alone(code: str) -> None:
    assert prepare_body(code).text == code


@pytest.mark.parametrize(
    ("code", "last_line"),
    [
        ("return 1", 1),
        ("const a = 1\n\nreturn (1 +\n\n", 3),
        ("Text\n```ts\nreturn 1\n```\nEnd", 3),
    ],
)
def test_last_line_is_the_last_line_of_code(code: str, last_line: int) -> None:
    assert prepare_body(code).last_line == last_line


def test_runner_type_checks_and_lints(tmp_path: Path) -> None:
    env = {"DENO_DIR": str(tmp_path), "NO_COLOR": "1", "PATH": "/usr/bin:/bin"}
    for command in (["check", "--unstable-worker-options"], ["lint"]):
        completed = subprocess.run(
            [deno_executable(), *command, "--no-config", str(RUNNER_SOURCE)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_runner_that_ships_is_built_from_the_current_source() -> None:
    built = built_digest()
    assert built is not None, "runner.js has no header: python -m codemode.sandboxes._runner_build"
    assert built == source_digest(), (
        "runner.ts changed since runner.js was built: python -m codemode.sandboxes._runner_build"
    )


@pytest.mark.parametrize(
    "code",
    [
        "function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2) }",  # needs an argument
        "async function main(input) {\n  return 1\n}\nfunction helper() {}",
        "type A = number\nasync function helper(a: A) { return a }",
    ],
)
def test_a_program_that_only_declares_functions_says_so(code: str) -> None:
    text = prepare_body(code).text
    assert text.startswith(code + "; throw ")
    assert "never calls one" in text and text.count("\n") == code.count("\n")
