"""Tools, schemas and the public API's argument checks (no sandbox needed)."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import jsonschema_rs
import pytest
from pydantic import BaseModel, Field

import codemode
from codemode import (
    CodeModeError,
    CodeModeToolResult,
    DenoSandbox,
    LocalSandbox,
    Tool,
    ToolContext,
    ToolValidationError,
    create_code_mode,
    create_code_mode_instructions,
    create_tool,
    tool,
)


class Query(BaseModel):
    text: str
    limit: int = 10


async def test_model_schema_gives_the_tool_a_model_instance() -> None:
    received: list[Any] = []

    def search(query: Query) -> list[str]:
        received.append(query)
        return [query.text] * query.limit

    t = create_tool(id="search", description="Search", input_schema=Query, execute=search)
    assert await t.execute({"text": "x", "limit": 2}) == ["x", "x"]
    assert received == [Query(text="x", limit=2)]
    assert t.input_schema["required"] == ["text"]
    assert t.output_schema is None


async def test_type_adapter_schemas_and_output_validation() -> None:
    t = create_tool(
        id="double",
        description="",
        input_schema=list[int],
        output_schema=dict[str, int],
        execute=lambda xs: {"sum": sum(xs) * 2},
    )
    assert t.input_schema == {"items": {"type": "integer"}, "type": "array"}
    assert await t.execute([1, 2]) == {"sum": 6}
    with pytest.raises(ToolValidationError) as info:
        await t.execute(["a"])
    assert str(info.value) == (
        "Tool input validation failed for double:\n"
        "- 0: Input should be a valid integer, unable to parse string as an integer"
    )


async def test_output_models_are_dumped_as_json() -> None:
    class Out(BaseModel):
        when: Literal["now", "later"]
        tags: set[str] = Field(default_factory=set)

    t = create_tool(
        id="t",
        description="",
        input_schema={},
        output_schema=Out,
        execute=lambda _: Out(when="now"),
    )
    assert await t.execute({}) == {"when": "now", "tags": []}


async def test_json_schema_output_is_validated() -> None:
    t = create_tool(
        id="t",
        description="",
        input_schema={"type": "object"},
        output_schema={"type": "object", "required": ["ok"]},
        execute=lambda _: {"nope": 1},
    )
    with pytest.raises(ToolValidationError, match=r"^Tool output validation failed for t:\n- "):
        await t.execute({})


async def test_results_without_schema_must_be_json() -> None:
    t = create_tool(id="t", description="", input_schema={}, execute=lambda _: object())
    with pytest.raises(ToolValidationError, match="not JSON-serialisable"):
        await t.execute({})


async def test_async_execute_and_context_parameter() -> None:
    async def run(value: dict[str, Any], ctx: ToolContext) -> Any:
        return [value["x"], ctx.request_context["user"], ctx.tool_id]

    t = create_tool(id="ctx", description="", input_schema={}, execute=run)
    assert await t.execute({"x": 1}, request_context={"user": "ada"}) == [1, "ada", "ctx"]


def test_invalid_json_schema_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"^invalid JSON Schema: 'strin' is not valid"):
        create_tool(id="t", description="", input_schema={"type": "strin"}, execute=print)


def test_invalid_schema_of_a_known_draft_is_refused_with_the_reason() -> None:
    schema = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "required": 3}
    with pytest.raises(ValueError, match=r"^invalid JSON Schema: 3 is not of type 'array'"):
        create_tool(id="t", description="", input_schema=schema, execute=print)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "[a-"},
        {"type": "object", "properties": {"tags": {"type": "array", "items": {"pattern": "(x"}}}},
        {"type": "object", "patternProperties": {"[a-": {}}},
    ],
)
def test_a_regular_expression_that_does_not_compile_is_refused(schema: dict[str, Any]) -> None:
    # jsonschema-rs's meta-schema check does not look at the "regex" format; jsonschema's does.
    with pytest.raises(ValueError, match=r"^invalid JSON Schema: .* is not a 'regex'"):
        create_tool(id="t", description="", input_schema=schema, execute=print)


def test_an_unknown_dialect_is_never_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    # jsonschema-rs would fetch an unknown $schema over the network to check against it.
    asked: list[Any] = []
    monkeypatch.setattr(jsonschema_rs.meta, "is_valid", lambda schema: asked.append(schema))
    schema = {"$schema": "http://127.0.0.1:9/custom", "type": "object"}
    t = create_tool(id="t", description="", input_schema=schema, execute=print)
    assert asked == []
    create_tool(id="u", description="", input_schema={"type": "object"}, execute=print)
    assert asked == [{"type": "object"}]
    with pytest.raises(ToolValidationError, match="is not of type 'object'"):
        t.validate_input(3)


async def test_tool_decorator_derives_everything_from_the_function() -> None:
    @tool
    async def get_weather(city: str, days: int = 1, *, ctx: ToolContext) -> list[float]:
        """Forecast for a city, in degrees Celsius."""
        return [20.5] * days

    assert isinstance(get_weather, Tool)
    assert get_weather.id == "get_weather"
    assert get_weather.description == "Forecast for a city, in degrees Celsius."
    assert get_weather.input_schema["properties"] == {
        "city": {"title": "City", "type": "string"},
        "days": {"default": 1, "title": "Days", "type": "integer"},
    }
    assert get_weather.input_schema["required"] == ["city"]
    assert get_weather.output_schema == {"items": {"type": "number"}, "type": "array"}
    assert await get_weather.execute({"city": "Oslo", "days": 2}) == [20.5, 20.5]


def test_tool_decorator_with_options() -> None:
    @tool(id="wipe", description="Deletes everything", require_approval=True)
    def wipe_all() -> None:
        pass

    assert (wipe_all.id, wipe_all.description, wipe_all.require_approval) == (
        "wipe",
        "Deletes everything",
        True,
    )
    assert wipe_all.output_schema == {"type": "null"}


def test_dataclass_input_schema() -> None:
    @dataclasses.dataclass
    class Point:
        x: float
        y: float

    t = create_tool(id="p", description="", input_schema=Point, execute=lambda p: p.x + p.y)
    assert t.input_schema["required"] == ["x", "y"]


# -- create_code_mode's contract -------------------------------------------------------------


def _noop(name: str) -> Tool:
    return create_tool(id=name, description=f"{name} tool", input_schema={}, execute=lambda _: None)


def test_sandbox_is_required_with_a_message_saying_how() -> None:
    with pytest.raises(ValueError) as info:
        create_code_mode(tools=[_noop("a")])
    assert "sandbox=DenoSandbox()" in str(info.value)
    assert "sandbox=LocalSandbox()" in str(info.value)


def test_colliding_names_are_refused_naming_both() -> None:
    with pytest.raises(ValueError) as info:
        create_code_mode(
            tools={"get-user": _noop("x"), "get_user": _noop("y")}, sandbox=DenoSandbox()
        )
    assert str(info.value) == (
        "tools 'get-user' and 'get_user' both become external_get_user; rename one of them"
    )


def test_non_tools_are_refused() -> None:
    with pytest.raises(
        TypeError, match=r"tools\['a'\] is builtin_function_or_method, not a Tool; build it with"
    ):
        create_code_mode(tools={"a": print}, sandbox=DenoSandbox())  # type: ignore[dict-item]


@pytest.mark.parametrize("timeout", [0, -5, 1.5, True])
def test_timeout_must_be_positive_milliseconds(timeout: Any) -> None:
    with pytest.raises(ValueError, match="timeout is in milliseconds"):
        create_code_mode(tools=[], sandbox=DenoSandbox(), timeout=timeout)


def test_code_mode_unpacks_and_exposes_tool_and_instructions() -> None:
    tools = {"lookup": _noop("lookup")}
    code_mode = create_code_mode(tools=tools, sandbox=LocalSandbox(), id="ops_code")
    code_tool, instructions = code_mode
    assert code_tool is code_mode.tool
    assert instructions == code_mode.instructions
    assert instructions == create_code_mode_instructions(tools=tools, id="ops_code")
    assert code_tool.id == "ops_code"
    assert code_tool.input_schema["required"] == ["code"]
    assert code_tool.input_schema["properties"]["code"]["type"] == "string"
    assert "/**\n * lookup tool\n */" in instructions or "/** lookup tool */" in instructions
    assert "declare function external_lookup(" in instructions
    assert "`ops_code`" in instructions


async def test_code_tool_rejects_input_without_code() -> None:
    code_tool = create_code_mode(tools=[], sandbox=DenoSandbox()).tool
    result = await code_tool.execute({"program": "return 1"})
    assert result == CodeModeToolResult(
        success=False,
        error=CodeModeError(
            message='Tool input validation failed for execute_typescript: pass {"code": '
            '"<TypeScript program>"} (Field required)',
            name="ValidationError",
        ),
    )


def test_result_dumps_to_the_spec_shape() -> None:
    ok = CodeModeToolResult(success=True, result={"a": None}, logs=["x"])
    assert ok.model_dump(exclude_none=True) == {
        "success": True,
        "result": {"a": None},
        "logs": ["x"],
    }
    failed = CodeModeToolResult(success=False, error=CodeModeError(message="m", name="Error"))
    assert failed.model_dump(exclude_none=True) == {
        "success": False,
        "logs": [],
        "error": {"message": "m", "name": "Error"},
    }


def test_public_names() -> None:
    for name in [
        "create_tool",
        "tool",
        "create_code_mode",
        "create_code_mode_instructions",
        "CodeModeToolResult",
        "DenoSandbox",
        "LocalSandbox",
        "ToolContext",
    ]:
        assert name in codemode.__all__
        assert getattr(codemode, name) is not None


# -- JSON Schema validation: jsonschema-rs decides, jsonschema words the errors ----------------

RECORD = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "tags": {"type": "array", "items": {"type": "string"}},
        "when": {"type": "string", "format": "date-time"},
    },
    "required": ["id"],
    "additionalProperties": False,
}


def test_json_schema_validators_are_compiled_once_per_tool() -> None:
    t = create_tool(id="t", description="", input_schema=RECORD, execute=lambda r: r)
    assert t._input._compiled is not None  # the compiled validator decides on every call
    assert t.validate_input({"id": 1, "tags": ["a"]}) == {"id": 1, "tags": ["a"]}


def test_every_problem_is_listed_with_its_path_in_jsonschema_words() -> None:
    t = create_tool(id="t", description="", input_schema=RECORD, execute=lambda r: r)
    with pytest.raises(ToolValidationError) as info:
        t.validate_input({"id": 0, "tags": ["a", 2], "extra": True})
    assert str(info.value) == (
        "Tool input validation failed for t:\n"
        "- (root): Additional properties are not allowed ('extra' was unexpected)\n"
        "- /id: 0 is less than the minimum of 1\n"
        "- /tags/1: 2 is not of type 'string'"
    )


def test_a_problem_only_the_compiled_validator_sees_is_worded_by_it() -> None:
    # jsonschema checks "date-time" only when an optional library is installed; jsonschema-rs
    # always does. Its message names the value and the path all the same.
    t = create_tool(id="t", description="", input_schema=RECORD, execute=lambda r: r)
    with pytest.raises(ToolValidationError) as info:
        t.validate_input({"id": 1, "when": "yesterday"})
    assert str(info.value) == (
        'Tool input validation failed for t:\n- /when: "yesterday" is not a "date-time"'
    )
    assert t.validate_input({"id": 1, "when": "2026-01-02T03:04:05Z"})["id"] == 1


def test_a_schema_the_compiled_validator_cannot_take_is_validated_by_jsonschema() -> None:
    # A $ref to a remote document: jsonschema-rs would fetch it (it is offline here), so
    # jsonschema validates alone, as before, and fails on the reference only when it needs it.
    remote = {"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}
    t = create_tool(id="t", description="", input_schema=remote, execute=lambda r: r)
    assert t._input._compiled is None
    assert t.validate_input({"b": 1}) == {"b": 1}
    with pytest.raises(ToolValidationError, match=r"^Tool input validation failed for t:\n- "):
        t.validate_input([])


def test_values_that_are_not_json_data_are_judged_by_jsonschema() -> None:
    t = create_tool(id="t", description="", input_schema={"type": "object"}, execute=lambda r: r)
    assert t.validate_input({1: "int keys"}) == {1: "int keys"}  # jsonschema-rs refuses these
