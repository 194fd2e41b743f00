"""JSON Schema -> TypeScript: exact text for the constructs and the anchors' known failures,
golden files, and proof by `deno check` that declarations are valid and say what the schemas
say (a corpus of real-world and edge-case schemas with samples; random schemas)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, TypeAdapter

from codemode.languages.typescript._checker import check_sources_sync, parse_check_output
from codemode.languages.typescript._declarations import (
    ToolDeclaration,
    render_declarations,
    schema_to_typescript,
    to_identifier,
)

HERE = Path(__file__).parent
SCHEMAS = HERE / "schemas"
GOLDEN = HERE / "golden"
UPDATE_GOLDEN = os.environ.get("CODEMODE_UPDATE_GOLDEN") == "1"


def ts(schema: Mapping[str, Any] | bool) -> str:
    return schema_to_typescript(schema)


def tool(
    name: str,
    input_schema: Mapping[str, Any],
    output_schema: Mapping[str, Any] | None = None,
    description: str = "",
) -> ToolDeclaration:
    return ToolDeclaration(name, name, description, input_schema, output_schema)


# --------------------------------------------------------------------------------------------
# The anchors' known failures, one test each.


def test_nullable_is_kept_and_type_arrays_keep_every_member() -> None:
    assert ts({"type": "string", "nullable": True}) == "string | null"
    assert ts({"type": ["string", "null"]}) == "string | null"
    assert ts({"type": ["string", "number", "boolean", "null"]}) == (
        "string | number | boolean | null"
    )
    assert ts({"anyOf": [{"type": "string"}, {"type": "null"}]}) == "string | null"


def test_union_items_are_parenthesised_in_arrays() -> None:
    schema = {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "number"}]}}
    assert ts(schema) == "(string | number)[]"
    assert ts({"type": "array", "items": {"type": ["string", "number"]}}) == "(string | number)[]"
    assert ts({"type": "array", "items": {"enum": [-1, 1]}}) == "(-1 | 1)[]"


def test_root_anyof_next_to_properties_keeps_every_property() -> None:
    schema = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "email": {"type": "string"}},
        "anyOf": [{"required": ["id"]}, {"required": ["email"]}],
    }
    assert ts(schema) == (
        "{\n  id: string;\n  email?: string;\n} | {\n  id?: string;\n  email: string;\n}"
    )


def test_type_names_do_not_collide_after_case_conversion() -> None:
    item = {"type": "object", "properties": {"x": {"$ref": "#/$defs/Item"}}}
    text = render_declarations(
        [
            tool("get_weather", {**item, "$defs": {"Item": {"type": "string"}}}),
            tool("getWeather", {**item, "$defs": {"Item": {"type": "number"}}}),
        ]
    )
    assert text == (
        "type Get_weatherItem = string;\n\n"
        "type GetWeatherItem = number;\n\n"
        "declare function external_get_weather(input: {\n"
        "  x?: Get_weatherItem;\n"
        "}): Promise<unknown>;\n\n"
        "declare function external_getWeather(input: {\n"
        "  x?: GetWeatherItem;\n"
        "}): Promise<unknown>;\n"
    )


def test_recursive_ref_is_a_named_type_that_refers_to_itself() -> None:
    schema = {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                },
                "required": ["value"],
            }
        },
        "$ref": "#/$defs/Node",
    }
    assert render_declarations([tool("tree", schema, schema)]) == (
        "type Node = {\n"
        "  value: number;\n"
        "  children?: Node[];\n"
        "};\n\n"
        "declare function external_tree(input: Node): Promise<Node>;\n"
    )


def test_descriptions_defaults_and_numeric_constraints_are_in_jsdoc() -> None:
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
    assert ts(schema) == (
        "{\n"
        "  /**\n"
        "   * Maximum number of results.\n"
        "   * @minimum 1\n"
        "   * @maximum 100\n"
        "   * @default 10\n"
        "   */\n"
        "  limit?: number;\n"
        "  /**\n"
        "   * @minLength 1\n"
        "   * @pattern ^\\S\n"
        "   */\n"
        "  query: string;\n"
        "}"
    )


# --------------------------------------------------------------------------------------------
# Constructs, exact text.


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (True, "unknown"),
        (False, "never"),
        ({}, "unknown"),
        ({"description": "anything"}, "unknown"),
        ({"type": "integer"}, "number"),
        ({"type": ["integer", "number"]}, "number"),
        ({"type": "null"}, "null"),
        ({"type": "array"}, "unknown[]"),
        ({"type": "object"}, "{ [key: string]: unknown }"),
        ({"type": "object", "additionalProperties": False}, "{ [key: string]: never }"),
        (
            {"type": "object", "additionalProperties": {"type": "integer"}},
            "{ [key: string]: number }",
        ),
        ({"enum": ["a", 1, -2.5, True, None]}, '"a" | 1 | -2.5 | true | null'),
        ({"enum": []}, "never"),
        ({"const": {"k": [1, "x"], "a-b": None}}, '{ k: [1, "x"]; "a-b": null }'),
        ({"const": "line\u2028sep"}, '"line\\u2028sep"'),
        ({"type": "string", "enum": ["x", "y"]}, '"x" | "y"'),
        ({"anyOf": [{"type": "string"}, True]}, "unknown"),
        ({"oneOf": [{"type": "string"}, False]}, "string"),
        ({"allOf": [{"type": "string"}, {"const": "a"}]}, '"a"'),
        ({"allOf": [{"$ref": "#/x"}, {"type": "string"}]}, "string"),
        ({"type": "array", "prefixItems": [{"type": "string"}], "items": False}, "[string?]"),
        (
            {
                "type": "array",
                "prefixItems": [{"type": "string"}, {"type": "number"}],
                "minItems": 1,
            },
            "[string, number?, ...unknown[]]",
        ),
        (
            {"type": "array", "items": [{"type": "string"}], "additionalItems": {"type": "number"}},
            "[string?, ...number[]]",
        ),
        ({"type": "array", "maxItems": 0}, "[]"),
        ({"type": "array", "items": {"type": "array", "items": {"type": "string"}}}, "string[][]"),
        (
            {"type": "array", "items": {"type": "object", "additionalProperties": True}},
            "{ [key: string]: unknown }[]",
        ),
        ({"$ref": "https://example.com/schema.json"}, "unknown"),
        ({"$ref": "#/$defs/Missing"}, "unknown"),
    ],
)
def test_schema_to_typescript(schema: Mapping[str, Any] | bool, expected: str) -> None:
    assert ts(schema) == expected


def test_quoted_keys_required_without_properties_and_boolean_properties() -> None:
    schema = {
        "type": "object",
        "properties": {"content-type": {"type": "string"}, "2fa": True, "ok_id$": False},
        "required": ["content-type", "extra key"],
    }
    assert ts(schema) == (
        "{\n"
        '  "content-type": string;\n'
        '  "2fa"?: unknown;\n'
        "  ok_id$?: never;\n"
        '  "extra key": unknown;\n'
        "}"
    )


def test_additional_properties_schema_widens_index_to_declared_properties() -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "count": {"type": "integer"}},
        "required": ["name"],
        "additionalProperties": {"type": "boolean", "description": "Feature flags."},
    }
    assert ts(schema) == (
        "{\n"
        "  name: string;\n"
        "  count?: number;\n"
        "  /**\n"
        "   * Feature flags.\n"
        "   * Other keys: boolean.\n"
        "   */\n"
        "  [key: string]: boolean | string | number | undefined;\n"
        "}"
    )


def test_pattern_properties_use_template_keys_when_the_pattern_is_a_prefix() -> None:
    schema = {
        "type": "object",
        "properties": {"S_name": {"type": "string"}, "count": {"type": "integer"}},
        "patternProperties": {"^S_": {"type": "string"}, "^x-[a-z]+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    assert ts(schema) == (
        "{\n"
        "  S_name?: string;\n"
        "  count?: number;\n"
        "  /** Keys matching /^S_/: string. */\n"
        "  [key: `S_${string}`]: string | undefined;\n"
        "  /** Keys matching /^x-[a-z]+$/: number. */\n"
        "  [key: `x-${string}`]: number;\n"
        "}"
    )
    unanchored = {"type": "object", "patternProperties": {"[0-9]": {"type": "boolean"}}}
    assert ts(unanchored) == (
        "{\n  /** Keys matching /[0-9]/: boolean. */\n  [key: string]: boolean;\n}"
    )


def test_allof_of_objects_merges_into_one_object() -> None:
    schema = {
        "allOf": [
            {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]},
            {
                "type": "object",
                "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
            },
        ]
    }
    assert ts(schema) == "{\n  id: string;\n  tags?: string[];\n}"


def test_allof_with_a_ref_is_an_intersection() -> None:
    schema = {
        "$defs": {"Base": {"type": "object", "properties": {"id": {"type": "string"}}}},
        "allOf": [{"$ref": "#/$defs/Base"}, {"properties": {"title": {"type": "string"}}}],
    }
    assert ts(schema) == "Base & {\n  title?: string;\n}"


def test_oneof_of_refs_next_to_properties_is_an_intersection() -> None:
    schema = {
        "$defs": {"A": {"type": "string"}, "B": {"type": "number"}},
        "type": "object",
        "properties": {"x": {"type": "string"}},
        "oneOf": [{"$ref": "#/$defs/A"}, {"$ref": "#/$defs/B"}],
    }
    assert ts(schema) == "{\n  x?: string;\n} & (A | B)"


def test_nested_objects_are_indented_and_unions_of_objects_stay_readable() -> None:
    inner: dict[str, Any] = {
        "type": ["object", "null"],
        "properties": {"b": {"type": "object", "properties": {"c": {"type": "string"}}}},
    }
    schema = {"type": "object", "properties": {"a": inner}}
    assert ts(schema) == "{\n  a?: {\n    b?: {\n      c?: string;\n    };\n  } | null;\n}"
    assert ts({"type": "array", "items": inner}) == (
        "({\n  b?: {\n    c?: string;\n  };\n} | null)[]"
    )


def test_comment_terminators_cannot_escape_jsdoc() -> None:
    text = render_declarations(
        [
            tool(
                "evil",
                {
                    "type": "object",
                    "description": "in */ put",
                    "properties": {"a": {"type": "string", "description": "x */ y\r\nz"}},
                },
                {"type": "string", "description": "*/"},
                description="Tool */ declare const pwned: 1; /*",
            )
        ]
    )
    assert text == (
        "/**\n"
        " * Tool *\\/ declare const pwned: 1; /*\n"
        " * @param input in *\\/ put\n"
        " * @returns *\\/\n"
        " */\n"
        "declare function external_evil(input: {\n"
        "  /**\n"
        "   * x *\\/ y\n"
        "   * z\n"
        "   */\n"
        "  a?: string;\n"
        "}): Promise<string>;\n"
    )


def test_jsdoc_documents_item_constraints_examples_deprecation_and_draft4_exclusive() -> None:
    schema = {
        "type": "object",
        "properties": {
            "urls": {
                "type": "array",
                "items": {"type": "string", "format": "uri", "description": "A link."},
                "minItems": 1,
                "uniqueItems": True,
            },
            "old": {"type": "integer", "deprecated": True, "minimum": 0, "exclusiveMinimum": True},
            "q": {"type": "string", "examples": ["cats", {"a": 1}]},
            "note": {
                "anyOf": [{"type": "string", "maxLength": 5}, {"type": "null"}],
                "default": None,
            },
        },
    }
    assert ts(schema) == (
        "{\n"
        "  /**\n"
        "   * Each item: A link.\n"
        "   * @minItems 1\n"
        "   * @uniqueItems\n"
        "   * @items.format uri\n"
        "   */\n"
        "  urls?: string[];\n"
        "  /**\n"
        "   * @exclusiveMinimum 0\n"
        "   * @deprecated\n"
        "   */\n"
        "  old?: number;\n"
        "  /**\n"
        '   * @example "cats"\n'
        '   * @example {"a": 1}\n'
        "   */\n"
        "  q?: string;\n"
        "  /**\n"
        "   * @maxLength 5\n"
        "   * @default null\n"
        "   */\n"
        "  note?: string | null;\n"
        "}"
    )


def test_identical_definitions_are_shared_and_different_ones_all_prefixed() -> None:
    """A bare ``User`` beside ``CToolUser`` would read as shared, so every clashing one is
    prefixed; identical definitions (same content, same referenced types) stay one type."""
    user = {"type": "object", "properties": {"login": {"type": "string"}}, "required": ["login"]}
    schema = {"$defs": {"User": user}, "$ref": "#/$defs/User"}
    other = {"$defs": {"User": {"type": "string"}}, "$ref": "#/$defs/User"}
    text = render_declarations(
        [tool("a", schema, schema), tool("b", schema), tool("c_tool", other)]
    )
    assert text == (
        "type AUser = {\n  login: string;\n};\n\n"
        "type CToolUser = string;\n\n"
        "declare function external_a(input: AUser): Promise<AUser>;\n\n"
        "declare function external_b(input: AUser): Promise<unknown>;\n\n"
        "declare function external_c_tool(input: CToolUser): Promise<unknown>;\n"
    )


def test_definition_names_that_shadow_globals_are_prefixed() -> None:
    schema = {
        "$defs": {"Promise": {"type": "string"}, "Error": {"type": "number"}},
        "type": "object",
        "properties": {"p": {"$ref": "#/$defs/Promise"}, "e": {"$ref": "#/$defs/Error"}},
    }
    text = render_declarations([tool("run", schema)])
    assert text.startswith("type RunPromise = string;\n\ntype RunError = number;\n\n")


def test_root_self_reference_names_the_root() -> None:
    schema = {"type": "object", "properties": {"next": {"$ref": "#"}}}
    assert render_declarations([tool("chain", schema)]) == (
        "type ChainInput = {\n"
        "  next?: ChainInput;\n"
        "};\n\n"
        "declare function external_chain(input: ChainInput): Promise<unknown>;\n"
    )


def test_render_declarations_rejects_invalid_and_duplicate_names() -> None:
    with pytest.raises(ValueError, match="'a-b' is not a valid identifier suffix"):
        render_declarations([tool("a-b", {})])
    with pytest.raises(ValueError, match="tools 'x' and 'y' both map to external_same"):
        render_declarations(
            [ToolDeclaration("same", "x", "", {}, None), ToolDeclaration("same", "y", "", {}, None)]
        )
    assert render_declarations([]) == ""


# --------------------------------------------------------------------------------------------
# Pydantic: validation input (defaults optional), serialisation output (defaults present).


class Pet(BaseModel):
    """A pet."""

    name: str = Field(description="The pet's name.", min_length=1)
    kind: Literal["cat", "dog"] = "cat"
    age: int | None = None
    friends: list[Pet] = []


def test_pydantic_validation_and_serialisation_schemas() -> None:
    text = render_declarations(
        [
            tool(
                "adopt",
                TypeAdapter(Pet).json_schema(mode="validation"),
                TypeAdapter(Pet).json_schema(mode="serialization"),
                description="Adopt a pet.",
            )
        ]
    )
    assert text == (
        "/** A pet. */\n"
        "type PetInput = {\n"
        "  /**\n"
        "   * The pet's name.\n"
        "   * @minLength 1\n"
        "   */\n"
        "  name: string;\n"
        '  /** @default "cat" */\n'
        '  kind?: "cat" | "dog";\n'
        "  /** @default null */\n"
        "  age?: number | null;\n"
        "  /** @default [] */\n"
        "  friends?: PetInput[];\n"
        "};\n\n"
        "/** A pet. */\n"
        "type PetOutput = {\n"
        "  /**\n"
        "   * The pet's name.\n"
        "   * @minLength 1\n"
        "   */\n"
        "  name: string;\n"
        '  /** @default "cat" */\n'
        '  kind: "cat" | "dog";\n'
        "  /** @default null */\n"
        "  age: number | null;\n"
        "  /** @default [] */\n"
        "  friends: PetOutput[];\n"
        "};\n\n"
        "/** Adopt a pet. */\n"
        "declare function external_adopt(input: PetInput): Promise<PetOutput>;\n"
    )


def test_pydantic_plain_output_without_defaults_is_shared_between_sides() -> None:
    class Point(BaseModel):
        x: float
        y: float

    both = TypeAdapter(Point)
    text = render_declarations(
        [
            tool(
                "move",
                both.json_schema(mode="validation"),
                TypeAdapter(list[Point]).json_schema(mode="serialization"),
            )
        ]
    )
    assert text == (
        "type Point = {\n  x: number;\n  y: number;\n};\n\n"
        "declare function external_move(input: {\n"
        "  x: number;\n"
        "  y: number;\n"
        "}): Promise<Point[]>;\n"
    )


# --------------------------------------------------------------------------------------------
# to_identifier.


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("getWeather", "getWeather"),
        ("get_weather", "get_weather"),
        ("github.create-issue", "github_create_issue"),
        ("list files", "list_files"),
        ("2fa", "_2fa"),
        ("", "_"),
        ("$ref", "$ref"),
        ("delete", "delete"),
        ("café", "café"),
        ("天气", "天气"),
        ("a/b:c@d", "a_b_c_d"),
        ("🙂", "_"),
    ],
)
def test_to_identifier(name: str, expected: str) -> None:
    assert to_identifier(name) == expected
    assert f"external_{to_identifier(name)}".isidentifier() or "$" in name


def test_to_identifier_is_deterministic_and_always_valid() -> None:
    for name in ["a b", "x-y-z", "1", "\x00", "-", "ä-ö", "class"]:
        ident = to_identifier(name)
        assert ident == to_identifier(name)
        assert ident.replace("$", "_").isidentifier()


# --------------------------------------------------------------------------------------------
# The corpus: every declaration passes `deno check`; valid samples type-check, invalid fail.


@dataclass(frozen=True)
class Case:
    name: str
    tool: ToolDeclaration
    data: Mapping[str, Any]

    @property
    def valid(self) -> list[Any]:
        return list(self.data["valid"])

    @property
    def invalid(self) -> list[tuple[str, Any]]:
        return [(i["why"], i["input"]) for i in self.data["invalid"]]


@cache
def load_corpus() -> tuple[Case, ...]:
    cases = []
    for path in sorted(SCHEMAS.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        name = to_identifier(data["name"])
        decl = ToolDeclaration(
            name, data["name"], data["description"], data["input_schema"], data.get("output_schema")
        )
        cases.append(Case(path.stem, decl, data))
    return tuple(cases)


CORPUS = load_corpus()


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 40
    assert sum(1 for c in CORPUS if c.data.get("golden")) >= 10


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_corpus_samples_agree_with_the_json_schema(case: Case) -> None:
    """The samples are what they claim to be, so the type check below proves something."""
    if case.data.get("jsonschema", True) is False:
        pytest.skip("schema dialect (OpenAPI nullable, draft-4 exclusive) unknown to jsonschema")
    schema = case.tool.input_schema
    validator_cls = jsonschema.validators.validator_for(schema, jsonschema.Draft202012Validator)
    validator = validator_cls(schema)
    for sample in case.valid:
        validator.validate(sample)
    for why, sample in case.invalid:
        assert not validator.is_valid(sample), why
    if "valid_output" in case.data and case.tool.output_schema is not None:
        out = case.tool.output_schema
        out_cls = jsonschema.validators.validator_for(out, jsonschema.Draft202012Validator)
        out_cls(out).validate(case.data["valid_output"])


def _sample_line(var: str, type_expr: str, value: Any) -> str:
    return f"const {var}: {type_expr} = {json.dumps(value, ensure_ascii=False)};"


class Batch:
    """TypeScript files checked by one ``deno check``; each line is owned by a case name."""

    def __init__(self) -> None:
        self.files: list[list[str]] = []
        self.owners: list[dict[int, str]] = []

    def new_file(self) -> None:
        self.files.append([])
        self.owners.append({})

    def add(self, owner: str, text: str) -> None:
        for line in text.split("\n"):  # not splitlines(): "\x85" or "\u2028" may be in a string
            self.files[-1].append(line)
            self.owners[-1][len(self.files[-1])] = owner

    def check(self) -> tuple[int, str, dict[str, list[str]]]:
        sources = ["\n".join(lines) + "\nexport {};\n" for lines in self.files]
        rc, output, paths = check_sources_sync(sources)
        failures: dict[str, list[str]] = {}
        for path, owners in zip(paths, self.owners, strict=True):
            for d in parse_check_output(output, path):
                owner = owners.get(d.line + 1, "?")
                failures.setdefault(owner, []).append(f"{path.name}:{d.line + 1}: {d.message}")
        if rc != 0 and not failures:
            failures["?"] = [output]
        return rc, output, failures


def _corpus_batch() -> Batch:
    batch = Batch()
    # All tools in one file: names stay unique across tools.
    batch.new_file()
    batch.add("declarations", render_declarations([c.tool for c in CORPUS]))
    for case in CORPUS:
        _add_samples(batch, case, f"v_{case.tool.name}")
    # Each tool alone, as its golden file shows it.
    for case in CORPUS:
        batch.new_file()
        batch.add(case.name, render_declarations([case.tool]))
        _add_samples(batch, case, "v")
    return batch


def _add_samples(batch: Batch, case: Case, var: str) -> None:
    fn = f"external_{case.tool.name}"
    param = f"Parameters<typeof {fn}>[0]"
    for i, sample in enumerate(case.valid):
        batch.add(case.name, _sample_line(f"{var}_ok{i}", param, sample))
    for i, (why, sample) in enumerate(case.invalid):
        batch.add(case.name, f"// @ts-expect-error {why}")
        batch.add(case.name, _sample_line(f"{var}_bad{i}", param, sample))
    if "valid_output" in case.data:
        ret = f"Awaited<ReturnType<typeof {fn}>>"
        batch.add(case.name, _sample_line(f"{var}_out", ret, case.data["valid_output"]))


@pytest.fixture(scope="module")
def corpus_failures() -> dict[str, list[str]]:
    _, _, failures = _corpus_batch().check()
    return failures


def test_corpus_declarations_pass_deno_check(corpus_failures: dict[str, list[str]]) -> None:
    assert corpus_failures.get("declarations") is None
    assert corpus_failures.get("?") is None


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_corpus_samples_type_check_as_expected(
    case: Case, corpus_failures: dict[str, list[str]]
) -> None:
    """Valid samples are accepted and each invalid one is rejected (an unused
    ``@ts-expect-error`` is itself an error), both with all tools and with the tool alone."""
    assert corpus_failures.get(case.name) is None, "\n".join(corpus_failures[case.name])


@pytest.mark.parametrize("case", [c for c in CORPUS if c.data.get("golden")], ids=lambda c: c.name)
def test_golden(case: Case) -> None:
    path = GOLDEN / f"{case.name}.ts"
    text = render_declarations([case.tool])
    if UPDATE_GOLDEN or not path.exists():
        if not UPDATE_GOLDEN:
            pytest.fail(f"{path} is missing; run with CODEMODE_UPDATE_GOLDEN=1 to create it")
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------
# Property: random schemas of the supported constructs render to declarations `deno check`
# accepts, and a value the schema accepts type-checks against them.

Pair = tuple[Any, Any]  # (schema, a value valid against it)

_KEYS = ["a", "b", "id", "c-d", "e f", "default", "1x", "ünï", "$y", "S_x", "__x"]
_json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).filter(lambda f: f != 0.0),
    st.text(max_size=6),
)
_json_value = st.recursive(
    _json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3)
    ),
    max_leaves=5,
)
_DOC = st.fixed_dictionaries(
    {},
    optional={
        "description": st.sampled_from(["Text.", "Has */ inside.", "Two\nlines"]),
        "title": st.just("T"),
        "deprecated": st.booleans(),
        "examples": st.lists(_json_scalar, max_size=2),
    },
)


def _leaf() -> st.SearchStrategy[Pair]:
    typed = st.sampled_from(["string", "integer", "number", "boolean", "null"]).flatmap(
        lambda t: st.tuples(
            st.just({"type": t}),
            {
                "string": st.text(max_size=5),
                "integer": st.integers(-50, 50),
                "number": st.floats(-10, 10, allow_nan=False),
                "boolean": st.booleans(),
                "null": st.none(),
            }[t],
        )
    )
    enum = st.lists(_json_scalar, min_size=1, max_size=4).flatmap(
        lambda vs: st.tuples(st.just({"enum": vs}), st.sampled_from(vs))
    )
    const = _json_value.map(lambda v: ({"const": v}, v))
    anything = st.tuples(st.sampled_from([True, {}]), _json_value)
    multi = st.just(({"type": ["string", "number", "null"]}, None)) | st.just(
        ({"type": ["integer", "string"]}, "s")
    )
    nullable = st.text(max_size=3).map(lambda s: ({"type": "string", "nullable": True}, s))
    return st.one_of(typed, enum, const, anything, multi, nullable)


def _with_doc(pair_st: st.SearchStrategy[Pair]) -> st.SearchStrategy[Pair]:
    return st.tuples(pair_st, _DOC).map(
        lambda p: ({**p[0][0], **p[1]} if isinstance(p[0][0], dict) else p[0][0], p[0][1])
    )


def _extend(children: st.SearchStrategy[Pair]) -> st.SearchStrategy[Pair]:
    @st.composite
    def obj(draw: st.DrawFn) -> Pair:
        props = draw(st.dictionaries(st.sampled_from(_KEYS), children, max_size=4))
        keys = list(props)
        required = [k for k in keys if draw(st.booleans())]
        value = {k: props[k][1] for k in keys if k in required or draw(st.booleans())}
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {k: v[0] for k, v in props.items()},
        }
        if required:
            schema["required"] = required
        extra = draw(st.sampled_from(["absent", "false", "true", "schema", "pattern"]))
        if extra == "false":
            schema["additionalProperties"] = False
        elif extra == "true":
            schema["additionalProperties"] = True
            value["zz_extra"] = draw(_json_value)
        elif extra == "schema":
            extra_schema, extra_value = draw(children)
            schema["additionalProperties"] = extra_schema
            value["zz_extra"] = extra_value
        elif extra == "pattern":
            pattern_schema, pattern_value = draw(children)
            schema["patternProperties"] = {"^p_": pattern_schema}
            value["p_1"] = pattern_value
        return schema, value

    @st.composite
    def array(draw: st.DrawFn) -> Pair:
        item_schema, item_value = draw(children)
        n = draw(st.integers(0, 2))
        return {"type": "array", "items": item_schema}, [item_value] * n

    @st.composite
    def tuple_(draw: st.DrawFn) -> Pair:
        parts = draw(st.lists(children, min_size=1, max_size=3))
        schema = {
            "type": "array",
            "prefixItems": [p[0] for p in parts],
            "minItems": len(parts),
            "maxItems": len(parts),
        }
        return schema, [p[1] for p in parts]

    @st.composite
    def union(draw: st.DrawFn) -> Pair:
        members = draw(st.lists(children, min_size=1, max_size=3))
        chosen = draw(st.sampled_from(members))
        return {"anyOf": [m[0] for m in members]}, chosen[1]

    @st.composite
    def nullable(draw: st.DrawFn) -> Pair:
        inner_schema, inner_value = draw(children)
        value = None if draw(st.booleans()) else inner_value
        return {"anyOf": [inner_schema, {"type": "null"}], "default": None}, value

    @st.composite
    def all_of(draw: st.DrawFn) -> Pair:
        a_schema, a_value = draw(obj())
        b_schema, b_value = draw(obj())
        for s in (a_schema, b_schema):  # two open objects with their own keys
            s.pop("additionalProperties", None)
            s.pop("patternProperties", None)
        a_value = {k: v for k, v in a_value.items() if k in a_schema["properties"]}
        b_value = {k: v for k, v in b_value.items() if k in b_schema["properties"]}
        b_schema["properties"] = {
            k: v for k, v in b_schema["properties"].items() if k not in a_schema["properties"]
        }
        b_schema["required"] = [
            k for k in b_schema.get("required", []) if k in b_schema["properties"]
        ]
        b_value = {k: v for k, v in b_value.items() if k in b_schema["properties"]}
        return {"allOf": [a_schema, b_schema]}, {**a_value, **b_value}

    return _with_doc(st.one_of(obj(), array(), tuple_(), union(), nullable(), all_of()))


_schemas = st.recursive(_with_doc(_leaf()), _extend, max_leaves=8)

_TREE = {
    "type": "object",
    "properties": {
        "v": {"type": "number"},
        "kids": {"type": "array", "items": {"$ref": "#/$defs/Tree"}},
    },
    "required": ["v"],
}


@st.composite
def _tool_schemas(draw: st.DrawFn) -> Pair:
    """A root object whose properties may be moved into ``$defs`` behind ``$ref``s."""
    props = draw(st.dictionaries(st.sampled_from(_KEYS), _schemas, min_size=1, max_size=4))
    schema: dict[str, Any] = {"type": "object", "properties": {}, "required": list(props)}
    defs: dict[str, Any] = {}
    value: dict[str, Any] = {}
    for i, (key, (sub, sub_value)) in enumerate(props.items()):
        value[key] = sub_value
        if draw(st.booleans()):
            name = draw(st.sampled_from(["Item", "item", "Page_Item_", "Promise", f"D{i}"]))
            name = name if name not in defs else f"{name}{i}"
            defs[name] = sub
            schema["properties"][key] = {"$ref": f"#/$defs/{name}"}
        else:
            schema["properties"][key] = sub
    if draw(st.booleans()):
        defs["Tree"] = _TREE
        schema["properties"]["tree"] = {"$ref": "#/$defs/Tree"}
        value["tree"] = {"v": 1, "kids": [{"v": 2, "kids": []}]}
    if defs:
        schema["$defs"] = defs
    return schema, value


def test_random_schemas_render_to_declarations_that_deno_check_accepts() -> None:
    collected: list[Pair] = []

    @settings(
        max_examples=120,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(_tool_schemas())
    def collect(pair: Pair) -> None:
        schema, value = pair
        jsonschema.Draft202012Validator(schema).validate(value)  # the generator is honest
        collected.append(pair)

    collect()
    tools = [tool(f"t{i}_{'x' if i % 2 else 'y_z'}", s, s) for i, (s, _) in enumerate(collected)]
    batch = Batch()
    batch.new_file()
    batch.add("declarations", render_declarations(tools))
    for t, (_, value) in zip(tools, collected, strict=True):
        batch.add(
            t.name, _sample_line(f"v_{t.name}", f"Parameters<typeof external_{t.name}>[0]", value)
        )
    rc, _, failures = batch.check()
    schemas = {t.name: s for t, (s, _) in zip(tools, collected, strict=True)}
    details = {name: (errors, schemas.get(name)) for name, errors in failures.items()}
    assert rc == 0 and not failures, json.dumps(details, indent=1, default=str)[:6000]
