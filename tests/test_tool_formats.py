"""Tools as the JSON that OpenAI and Anthropic take, and what converting them refuses."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pydantic
import pytest

from codemode import DenoSandbox, create_code_mode, create_tool, tool


class TopProductsInput(pydantic.BaseModel):
    limit: int


def top_products(input: TopProductsInput) -> dict[str, Any]:
    return {"products": []}


get_top_products = create_tool(
    id="getTopProducts",
    description="Get top selling products",
    input_schema=TopProductsInput,
    execute=top_products,
)

TOP_PRODUCTS_PARAMETERS = {
    "properties": {"limit": {"title": "Limit", "type": "integer"}},
    "required": ["limit"],
    "title": "TopProductsInput",
    "type": "object",
}


def test_openai_function_tool() -> None:
    assert get_top_products.to_openai_tool() == {
        "type": "function",
        "function": {
            "name": "getTopProducts",
            "description": "Get top selling products",
            "parameters": TOP_PRODUCTS_PARAMETERS,
        },
    }


def test_anthropic_tool() -> None:
    assert get_top_products.to_anthropic_tool() == {
        "name": "getTopProducts",
        "description": "Get top selling products",
        "input_schema": TOP_PRODUCTS_PARAMETERS,
    }


def test_code_tool_is_described_by_its_instructions() -> None:
    code_tool, instructions = create_code_mode(tools=[get_top_products], sandbox=DenoSandbox())

    anthropic = code_tool.to_anthropic_tool()
    openai = code_tool.to_openai_tool()

    assert anthropic["name"] == openai["function"]["name"] == "execute_typescript"
    assert anthropic["description"] == openai["function"]["description"] == instructions
    assert anthropic["input_schema"] == openai["function"]["parameters"]
    assert anthropic["input_schema"]["type"] == "object"
    assert anthropic["input_schema"]["required"] == ["code"]
    assert anthropic["input_schema"]["properties"]["code"]["type"] == "string"


def test_function_tool_from_a_typed_function() -> None:
    @tool
    def add(a: int, b: int = 2) -> int:
        """Add two numbers."""
        return a + b

    assert add.to_anthropic_tool() == {
        "name": "add",
        "description": "Add two numbers.",
        "input_schema": {
            "properties": {
                "a": {"title": "A", "type": "integer"},
                "b": {"default": 2, "title": "B", "type": "integer"},
            },
            "required": ["a"],
            "title": "AddInput",
            "type": "object",
        },
    }


def test_raw_json_schema_is_passed_through_and_not_mutated() -> None:
    schema = {
        "type": "object",
        "properties": {"node": {"$ref": "#/$defs/Node"}},
        "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
    }
    linked = create_tool(id="walk", description="", input_schema=schema, execute=lambda i: None)

    assert linked.to_openai_tool()["function"]["parameters"] == schema
    assert linked.to_openai_tool()["function"]["parameters"] is not linked.input_schema


def test_untyped_schema_becomes_an_object() -> None:
    anything = create_tool(id="ping", description="Ping.", input_schema={}, execute=lambda i: None)

    assert anything.to_anthropic_tool()["input_schema"] == {"type": "object", "properties": {}}
    assert anything.input_schema == {}


def test_non_object_input_is_refused_with_the_fix() -> None:
    count = create_tool(id="count", description="", input_schema=int, execute=lambda i: i)

    with pytest.raises(ValueError) as caught:
        count.to_openai_tool()

    assert str(caught.value) == (
        "tool 'count': function-calling APIs pass arguments as a JSON object, but its input "
        "schema has type 'integer'; wrap the input in an object (e.g. a pydantic model with "
        "one field)"
    )


@pytest.mark.parametrize("tool_id", ["shop.getTopProducts", "get products", "x" * 65])
def test_names_model_apis_reject_are_refused(tool_id: str) -> None:
    bad = create_tool(id=tool_id, description="", input_schema={}, execute=lambda i: None)

    with pytest.raises(ValueError) as caught:
        bad.to_anthropic_tool()

    assert str(caught.value) == (
        f"tool id {tool_id!r} is not a valid function name for model APIs (letters, digits, "
        "'_' and '-', at most 64 characters); create the tool with such an id"
    )


def test_importing_codemode_imports_no_framework() -> None:
    probe = (
        "import sys, codemode, codemode.integrations\n"
        "roots = {'pydantic_ai', 'agents', 'langchain_core', 'openai', 'anthropic', 'mcp'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in roots))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )

    assert done.stdout == "[]\n"
