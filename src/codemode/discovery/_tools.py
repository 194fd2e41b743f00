"""Search and describe as tools: for programs (answered by the bridge, like any tool call) and
for the model itself (plain tools beside the code tool, e.g. served by the MCP gateway).

A program's ``codemode.searchTools``/``describeTools`` reach the host as calls to reserved
names that are not identifiers, so no tool can be called that way and no tool's name can
collide with them. They go through the same channel, allow-list and limits as tool calls.
"""

from __future__ import annotations

from typing import Any, Final

import pydantic

from .._model_output import bound_text, json_size
from .._tools import Tool, create_tool
from ._discovery import DEFAULT_LIMIT, Catalog, UnknownToolError

__all__ = [
    "DESCRIBE_CALL",
    "MAX_LIMIT",
    "SEARCH_CALL",
    "discovery_tool_names",
    "fit_search_result",
    "make_discovery_tools",
    "program_handlers",
]

#: The names a program's search and describe calls travel under (runner.ts knows them).
SEARCH_CALL: Final = "codemode:search"
DESCRIBE_CALL: Final = "codemode:describe"
#: At most this many results per search, and tools per description, for a program or a model.
MAX_LIMIT: Final = 50


class SearchInput(pydantic.BaseModel):
    """What a search takes."""

    query: str = pydantic.Field(
        min_length=1,
        description="The task in words, e.g. 'create an issue in a repository'.",
    )
    limit: int = pydantic.Field(
        default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="How many results at most."
    )


class DescribeInput(pydantic.BaseModel):
    """What a description takes."""

    names: list[str] = pydantic.Field(
        min_length=1,
        max_length=MAX_LIMIT,
        description="Function names as search returns them (without external_).",
    )


class SearchOutput(pydantic.BaseModel):
    """What a search returns."""

    class Result(pydantic.BaseModel):
        name: str
        description: str
        score: float

    results: list[Result]
    total: int
    truncated: bool


def program_handlers(discovery: Catalog, functions: tuple[str, str]) -> dict[str, Tool]:
    """The tools the bridge runs for a program's search and describe calls, keyed by the
    reserved call names; ``functions`` are their names in the program's language."""

    async def search(args: SearchInput) -> dict[str, Any]:
        return (await discovery.asearch(args.query, args.limit)).to_json()

    async def describe(args: DescribeInput) -> str:
        return discovery.describe(args.names)

    return {
        SEARCH_CALL: create_tool(
            id=functions[0], description="", input_schema=SearchInput, execute=search
        ),
        DESCRIBE_CALL: create_tool(
            id=functions[1], description="", input_schema=DescribeInput, execute=describe
        ),
    }


def fit_search_result(found: dict[str, Any], max_chars: int) -> dict[str, Any]:
    """A search result that fits ``max_chars``: the last results are dropped (``truncated``
    says more exist), so the value keeps its declared shape."""
    results = list(found["results"])
    while results and json_size({**found, "results": results}) > max_chars:
        results.pop()
    if len(results) == len(found["results"]):
        return found
    return {**found, "results": results, "truncated": True}


def discovery_tool_names(code_tool_id: str, default_id: str) -> tuple[str, str]:
    """``search_tools``/``describe_tools`` for the language's default code tool; otherwise
    named after the code tool, so that several code tools can serve theirs side by side."""
    if code_tool_id == default_id:
        return ("search_tools", "describe_tools")
    return (f"search_{code_tool_id}_tools", f"describe_{code_tool_id}_tools")


def make_discovery_tools(
    discovery: Catalog,
    *,
    names: tuple[str, str],
    code_tool_id: str,
    functions: tuple[str, str] | None,
    max_chars: int,
) -> list[Tool]:
    """``search_tools(query, limit)`` and ``describe_tools(names)`` as plain tools a model
    calls directly; their output is bounded by ``max_chars``."""
    inside = f" Inside a program, use {functions[0]} instead." if functions is not None else ""
    inside_describe = (
        f" Inside a program, use {functions[1]} instead." if functions is not None else ""
    )

    async def search(args: SearchInput) -> dict[str, Any]:
        found = await discovery.asearch(args.query, args.limit)
        return fit_search_result(found.to_json(), max_chars)

    async def describe(args: DescribeInput) -> str:
        try:
            text = discovery.describe(args.names)
        except UnknownToolError as exc:
            return f"{exc} ({names[0]} finds them)."
        return bound_text(text, max_chars, advice="describe fewer functions at a time")

    return [
        create_tool(
            id=names[0],
            description=(
                f"Search the functions that programs run by `{code_tool_id}` can call: the best "
                "fits for a task described in words, best first, each called in a program as "
                "external_<name>(input). No results means that no function fits. This is a "
                f"tool: call it directly, not from a program.{inside}"
            ),
            input_schema=SearchInput,
            output_schema=SearchOutput,
            execute=search,
        ),
        create_tool(
            id=names[1],
            description=(
                f"The declarations (input and output types) of functions that programs run by "
                f"`{code_tool_id}` can call, by the names {names[0]} returns. This is a tool: "
                f"call it directly, not from a program.{inside_describe}"
            ),
            input_schema=DescribeInput,
            output_schema=str,
            execute=describe,
        ),
    ]
