"""Scripts that never close their sandbox exit with nothing on stderr (issue 10, item 9): no
"Task was destroyed but it is pending!", no unclosed transports, no processes left behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import asyncio
from codemode import DenoSandbox, create_code_mode, create_tool

add = create_tool(
    id="add",
    description="a + b",
    input_schema={
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
    },
    execute=lambda i: i["a"] + i["b"],
)

async def slow(_):
    await asyncio.sleep(30)

slow_tool = create_tool(id="slow", description="", input_schema={}, execute=slow)
"""

SCRIPTS = {
    "execute_sync": """
tool, _ = create_code_mode(tools=[add], sandbox=DenoSandbox())
for i in range(3):
    print(tool.execute_sync({"code": f"return await external_add({{a: {i}, b: 1}})"}).result)
""",
    "asyncio_run": """
async def main():
    tool, _ = create_code_mode(tools=[add], sandbox=DenoSandbox())
    for i in range(3):
        print((await tool.execute({"code": f"return await external_add({{a: {i}, b: 1}})"})).result)

asyncio.run(main())
""",
    "left_running": """
async def main():
    tool, _ = create_code_mode(tools=[add, slow_tool], sandbox=DenoSandbox(), timeout=200)
    print((await tool.execute({"code": "await external_slow({})"})).error.name)
    asyncio.ensure_future(tool.execute({"code": "await external_slow({})"}))
    await asyncio.sleep(0.05)  # ends while that program and a spare's start are under way

asyncio.run(main())
""",
    "typecheck": """
tool, _ = create_code_mode(tools=[add], sandbox=DenoSandbox(), typecheck=True)
print(tool.execute_sync({"code": "return await external_add({a: 1, b: 1})"}).result)
print(tool.execute_sync({"code": "return await external_add({a: 'x', b: 1})"}).error.name)
""",
}

EXPECTED = {
    "execute_sync": "1\n2\n3\n",
    "asyncio_run": "1\n2\n3\n",
    "left_running": "TimeoutError\n",
    "typecheck": "2\nTypeCheckError\n",
}


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_script_that_never_closes_its_sandbox_exits_quietly(name: str) -> None:
    script = textwrap.dedent(PRELUDE) + textwrap.dedent(SCRIPTS[name])
    for _ in range(2):  # the noise this guards against came from races at shutdown
        done = subprocess.run(
            # every warning shown (ResourceWarning included), as a developer would see them
            [sys.executable, "-W", "default", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, EXPECTED[name], "")
