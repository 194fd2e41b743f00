"""Program preparation (pure) and the runner's own source (type-checked and linted)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from codemode.languages.typescript._program import (
    PRELUDE,
    call_lone_arrow,
    prepare_program,
    strip_fences,
)
from codemode.sandboxes.deno import RUNNER, deno_executable


def test_body_is_wrapped_without_moving_lines() -> None:
    program = prepare_program("const a = 1\nreturn a")
    assert program.source == PRELUDE + "const a = 1\nreturn a\n}\n"
    assert program.source.split("\n")[program.line_offset + 1] == "return a"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("```ts\nreturn 1\n```", "\nreturn 1\n"),
        ("\n  ```typescript\nreturn 1\n```  \n", "\n\nreturn 1\n\n"),
        ("```\nreturn 1\n```", "\nreturn 1\n"),
        ("return '```'", "return '```'"),
        ("```ts\nreturn 1", "```ts\nreturn 1"),  # unbalanced: left for the parser to report
    ],
)
def test_fences_are_blanked_keeping_line_numbers(code: str, expected: str) -> None:
    assert strip_fences(code) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("async () => {\n  return 1\n}", "return await (async () => {\n  return 1\n})();"),
        ("(async () => {\n  return 1\n})();", "return await (async () => {\n  return 1\n})();"),
        ("async (): Promise<number> => { return 1 }", "return await (async () => { return 1 })();"),
        (
            "async () => { const s = '}' ; return s }",
            "return await (async () => { const s = '}' ; return s })();",
        ),
    ],
)
def test_a_lone_async_arrow_is_called(code: str, expected: str) -> None:
    assert call_lone_arrow(code) == expected


@pytest.mark.parametrize(
    "code",
    [
        "async () => { a }; async () => { b }",
        "const f = async () => { return 1 }\nreturn f()",
        "async () => { return 1 }\nconsole.log(2)",
        "return 1",
    ],
)
def test_other_programs_are_left_alone(code: str) -> None:
    assert call_lone_arrow(code) == code


def test_runner_type_checks_and_lints(tmp_path: Path) -> None:
    env = {"DENO_DIR": str(tmp_path), "NO_COLOR": "1", "PATH": "/usr/bin:/bin"}
    for command in (["check", "--unstable-worker-options"], ["lint"]):
        completed = subprocess.run(
            [deno_executable(), *command, "--no-config", str(RUNNER)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr
