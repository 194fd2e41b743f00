"""``create_code_mode(typecheck=...)``: programs are checked against the declarations first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from codemode import DenoSandbox, create_code_mode, create_tool
from codemode.languages.typescript._checker import TypeChecker


class AddInput(BaseModel):
    a: int
    b: int


@pytest.fixture
async def checker() -> AsyncIterator[TypeChecker]:
    async with TypeChecker() as warm:
        await warm.start()
        yield warm


async def test_type_errors_stop_the_program_before_it_runs(checker: TypeChecker) -> None:
    calls: list[Any] = []

    def add(input: AddInput) -> int:
        calls.append(input)
        return input.a + input.b

    adder = create_tool(
        id="add", description="Add", input_schema=AddInput, output_schema=int, execute=add
    )
    async with DenoSandbox() as sandbox:
        code_tool = create_code_mode(tools=[adder], sandbox=sandbox, typecheck=checker).tool
        bad = await code_tool.execute(
            {
                "code": "const x = await external_add({ a: 1, b: 2 })\n"
                "await external_add({ a: 'one', b: 2 })\n"
                "return x"
            }
        )
        good = await code_tool.execute(
            {
                "code": "```ts\n"
                "const x: number = await external_add({ a: 1, b: 2 })\n"
                "return x * 2\n```"
            }
        )
    assert bad.success is False
    assert bad.error is not None
    assert (bad.error.name, bad.error.line) == ("TypeCheckError", 2)
    assert "Type 'string' is not assignable to type 'number'" in bad.error.message
    assert calls == [AddInput(a=1, b=2)]  # only the good program ran
    assert good.result == 6
