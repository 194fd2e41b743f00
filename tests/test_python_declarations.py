"""JSON Schema -> Python stubs: exact text for the constructs, golden files for the corpus
cases the TypeScript goldens cover, and proof by Monty's type checker (ty) that the stubs for
every corpus schema accept its valid samples and reject its invalid ones."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from _python_samples import call, literal
from codemode.languages.python._checker import MontyTypeChecker, failure, wrap
from codemode.languages.python._declarations import (
    ToolDeclaration,
    render,
    render_declarations,
    to_identifier,
)

HERE = Path(__file__).parent
SCHEMAS = HERE / "schemas"
GOLDEN = HERE / "golden_python"
UPDATE_GOLDEN = os.environ.get("CODEMODE_UPDATE_GOLDEN") == "1"
IMPORTS = "from typing import Any, Literal, Never, NotRequired, TypedDict, overload\n\n\n"


def tool(
    name: str,
    input_schema: Mapping[str, Any],
    output_schema: Mapping[str, Any] | None = None,
    description: str = "",
) -> ToolDeclaration:
    return ToolDeclaration(name, name, description, input_schema, output_schema)


def stubs(*tools: ToolDeclaration) -> str:
    text = render_declarations(list(tools))
    assert text.startswith(IMPORTS)
    return text[len(IMPORTS) :]


@pytest.fixture(scope="module")
def checker() -> Iterator[MontyTypeChecker]:
    warm = MontyTypeChecker()
    yield warm
    warm.close()


# -- constructs, exact text ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "annotation"),
    [
        (True, "Any"),
        ({}, "Any"),
        ({"type": "integer"}, "int"),
        ({"type": "number"}, "float"),
        ({"type": ["string", "null"]}, "str | None"),
        ({"type": "string", "nullable": True}, "str | None"),
        ({"anyOf": [{"type": "string"}, {"type": "null"}]}, "str | None"),
        ({"enum": ["a", 1, -2.5, True, None]}, 'Literal["a", 1, True] | float | None'),
        ({"const": "v1"}, 'Literal["v1"]'),
        ({"type": "array", "items": {"type": ["string", "number"]}}, "list[str | float]"),
        ({"type": "array"}, "list[Any]"),
        ({"type": "object"}, "dict[str, Any]"),
        ({"type": "object", "additionalProperties": {"type": "integer"}}, "dict[str, int]"),
        ({"type": "object", "additionalProperties": False}, "dict[str, Never]"),
        ({"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}], "items": False},
         "tuple[()] | tuple[str] | tuple[str, float]"),
        ({"type": "array", "prefixItems": [{"type": "string"}], "minItems": 1},
         "tuple[str, *tuple[Any, ...]]"),
        ({"type": "array", "maxItems": 0}, "list[Never]"),
        ({"$ref": "https://example.com/x.json"}, "Any"),
    ],
)  # fmt: skip
def test_type_annotations(schema: Any, annotation: str) -> None:
    text = stubs(tool("t", {"type": "object", "properties": {"v": schema}, "required": ["v"]}))
    assert text.split("\n")[0] in (
        f"async def external_t(*, v: {annotation}) -> Any: ...",
        f"async def external_t(*, v: {annotation}) -> Any:",  # a docstring follows
    )


def test_objects_become_typed_dicts_named_where_they_appear() -> None:
    schema = {
        "type": "object",
        "properties": {
            "location": {
                "type": "object",
                "description": "Where.",
                "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                "required": ["city"],
            }
        },
        "required": ["location"],
    }
    out = {"type": "array", "items": {"type": "object", "properties": {"t": {"type": "number"}}}}
    assert stubs(tool("get_weather", schema, out, "Weather.")) == (
        "class GetWeatherLocation(TypedDict):\n"
        '    """Where."""\n\n'
        "    city: str\n"
        "    zip: NotRequired[str]\n\n\n"
        "class GetWeatherOutputItem(TypedDict):\n"
        "    t: NotRequired[float]\n\n\n"
        "async def external_get_weather(*, location: GetWeatherLocation) -> "
        "list[GetWeatherOutputItem]:\n"
        '    """Weather.\n\n'
        "    Args:\n"
        "        location: Where.\n"
        '    """\n'
    )


def test_descriptions_defaults_and_constraints_are_docstring_lines() -> None:
    schema = {
        "type": "object",
        "properties": {
            "limit": {
                "type": "integer",
                "description": "Maximum number of results.",
                "default": 10,
                "minimum": 1,
                "maximum": 100,
            },
            "query": {"type": "string", "minLength": 1, "pattern": "^\\S"},
        },
        "required": ["query"],
    }
    assert stubs(tool("search", schema, None, "Search.")) == (
        "async def external_search(*, query: str, limit: int = 10) -> Any:\n"
        '    r"""Search.\n\n'
        "    Args:\n"
        "        query:\n"
        "            minLength: 1\n"
        "            pattern: ^\\S\n"
        "        limit: Maximum number of results.\n"
        "            minimum: 1\n"
        "            maximum: 100\n"
        '    """\n'
    )


def test_refs_are_shared_named_types_and_recursion_refers_to_itself() -> None:
    node = {
        "type": "object",
        "properties": {
            "value": {"type": "integer"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
        },
        "required": ["value"],
    }
    schema = {
        "$defs": {"Node": node},
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/Node"}},
    }
    assert stubs(tool("tree", schema), tool("walk", schema)) == (
        "class Node(TypedDict):\n"
        "    value: int\n"
        "    children: NotRequired[list[Node]]\n\n\n"
        "async def external_tree(*, root: Node = ...) -> Any: ...\n\n\n"
        "async def external_walk(*, root: Node = ...) -> Any: ...\n"
    )


def test_names_that_collide_across_tools_or_with_typing_are_distinct() -> None:
    item = {"type": "object", "properties": {"x": {"$ref": "#/$defs/Item"}}}
    text = stubs(
        tool("get_weather", {**item, "$defs": {"Item": {"type": "string"}}}),
        tool("getWeather", {**item, "$defs": {"Item": {"type": "number"}}}),
        tool("typed", {"type": "object", "properties": {"a": {"$ref": "#/$defs/Any"}},
                       "$defs": {"Any": {"type": "string"}}}),
    )  # fmt: skip
    assert "type Get_weatherItem = str" in text
    assert "type GetWeatherItem = float" in text
    assert "type AnyType = str" in text
    assert "async def external_typed(*, a: AnyType = ...) -> Any: ..." in text


def test_keys_that_are_not_python_names_use_one_input_dict() -> None:
    schema = {
        "type": "object",
        "properties": {"content-type": {"type": "string"}, "class": {"type": "integer"}},
        "required": ["content-type"],
    }
    assert stubs(tool("upload", schema)) == (
        "UploadInput = TypedDict(\n"
        '    "UploadInput",\n'
        "    {\n"
        '        "content-type": str,\n'
        '        "class": NotRequired[int],\n'
        "    },\n"
        ")\n\n\n"
        "async def external_upload(input: UploadInput, /) -> Any: ...\n"
    )


def test_root_alternatives_are_overloads() -> None:
    schema = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "email": {"type": "string"}},
        "anyOf": [{"required": ["id"]}, {"required": ["email"]}],
    }
    assert stubs(tool("find", schema)) == (
        "@overload\n"
        "async def external_find(*, id: str, email: str = ...) -> Any: ...\n\n"
        "@overload\n"
        "async def external_find(*, email: str, id: str = ...) -> Any: ...\n"
    )


def test_typed_extra_keys_are_keyword_arguments_and_extra_items() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "meta": {
                "type": "object",
                "properties": {"v": {"type": "integer"}},
                "additionalProperties": {"type": "string"},
            },
        },
        "required": ["name"],
        "additionalProperties": {"type": "boolean", "description": "Feature flags."},
    }
    assert stubs(tool("put", schema)) == (
        "class PutMeta(TypedDict, extra_items=str):\n"
        "    v: NotRequired[int]\n\n\n"
        "async def external_put(*, name: str, meta: PutMeta = ..., **extra: bool) -> Any:\n"
        '    """Args:\n'
        "        **extra: Feature flags.\n"
        '    """\n'
    )


def test_docstrings_cannot_be_closed_early() -> None:
    text = stubs(
        tool(
            "evil",
            {"type": "object", "properties": {"a": {"type": "string", "description": 'x """ y'}}},
            None,
            'Tool """ print("pwned") """',
        )
    )
    namespace: dict[str, Any] = {}
    exec(compile(IMPORTS + text, "<stubs>", "exec"), namespace)  # valid Python, nothing runs
    assert namespace["external_evil"].__doc__.startswith('Tool """ print("pwned") """')


def test_render_rejects_invalid_and_duplicate_names() -> None:
    with pytest.raises(ValueError, match="not a valid identifier suffix"):
        render([tool("a-b", {})])
    with pytest.raises(ValueError, match="both map to external_a"):
        render([tool("a", {}), ToolDeclaration("a", "other", "", {}, None)])
    assert to_identifier("get-weather.v2") == "get_weather_v2"
    assert to_identifier("ünï") == "ünï"


def test_the_checker_reports_the_program_line() -> None:
    wrapped = wrap("x = 1\nreturn x")
    assert wrapped == "async def __codemode_program__():\n    x = 1\n    return x\n    pass\n"
    found = failure(
        "main.py:3:5: error[invalid-assignment] Bad\nmain.py:2:1: error[unresolved-reference] "
        "Name `y` used when not defined\n",
        2,
    )
    assert (found.line, found.message) == (
        1,
        "Name `y` used when not defined (unresolved-reference)\nline 2: Bad (invalid-assignment)",
    )


# -- the corpus ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    name: str
    tool: ToolDeclaration
    data: Mapping[str, Any]


@cache
def load_corpus() -> tuple[Case, ...]:
    cases = []
    for path in sorted(SCHEMAS.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        decl = ToolDeclaration(
            to_identifier(data["name"]),
            data["name"],
            data["description"],
            data["input_schema"],
            data.get("output_schema"),
        )
        cases.append(Case(path.stem, decl, data))
    return tuple(cases)


CORPUS = load_corpus()

# Invalid samples Python's types cannot reject: they are documented, not hidden.
PYTHON_CANNOT_SAY = {
    ("nullable_type_arrays", "value is boolean"): "bool is a subtype of int and float",
    ("union_array_items", "ids has a boolean"): "bool is a subtype of int",
    ("pattern_properties", "S_ key holds a number"): "keyword arguments have no key patterns",
}


def _valid_program(case: Case, fn: Any) -> str:
    lines = [call(fn, sample, case.tool.input_schema) for sample in case.data["valid"]]
    if "valid_output" in case.data and case.tool.output_schema is not None:
        out = literal(case.data["valid_output"], case.tool.output_schema, case.tool.output_schema)
        lines.append(f"out: {fn.returns} = {out}")
    return "\n".join(lines)


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_corpus_stubs_accept_valid_samples_and_reject_invalid_ones(
    case: Case, checker: MontyTypeChecker
) -> None:
    rendered = render([case.tool])
    fn = rendered.functions[case.tool.name]
    accepted = checker.check_sync(_valid_program(case, fn), rendered.text)
    assert accepted is None, accepted.message
    for invalid in case.data["invalid"]:
        why = invalid["why"]
        code = call(fn, invalid["input"], case.tool.input_schema)
        rejected = checker.check_sync(code, rendered.text)
        if (case.name, why) in PYTHON_CANNOT_SAY:
            assert rejected is None, "a known gap closed: remove it from PYTHON_CANNOT_SAY"
        else:
            assert rejected is not None, f"{why}: {code}"
            assert rejected.line == 1


def test_all_corpus_tools_together_type_check(checker: MontyTypeChecker) -> None:
    """Names stay unique across every tool of the corpus at once."""
    rendered = render([c.tool for c in CORPUS])
    program = "\n".join(
        _valid_program(c, rendered.functions[c.tool.name]).replace("out: ", f"out_{i}: ")
        for i, c in enumerate(CORPUS)
    )
    assert checker.check_sync(program, rendered.text) is None


@pytest.mark.parametrize("case", [c for c in CORPUS if c.data.get("golden")], ids=lambda c: c.name)
def test_golden(case: Case) -> None:
    path = GOLDEN / f"{case.name}.pyi"
    text = render_declarations([case.tool])
    if UPDATE_GOLDEN or not path.exists():
        if not UPDATE_GOLDEN:
            pytest.fail(f"{path} is missing; run with CODEMODE_UPDATE_GOLDEN=1 to create it")
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")
