"""Search, describe and the outline over a catalog, without a sandbox: ranking, the exact-name
fast path, the threshold, a custom search, and a catalog that changes under the index."""

from __future__ import annotations

from typing import Any

import pytest

from _catalogs import echo, real_catalog, server_tools
from codemode import Tool, create_tool
from codemode.discovery import Catalog, UnknownToolError, build_outline
from codemode.discovery._index import Ranking
from codemode.languages import get_language

TS = get_language("typescript")


def make(id: str, description: str, **properties: Any) -> Tool:
    schema = {"type": "object", "properties": properties, "required": list(properties)}
    return create_tool(id=id, description=description, input_schema=schema, execute=echo)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog(real_catalog(), TS)


def names(catalog: Catalog, query: str, limit: int = 5) -> list[str]:
    return [m.name for m in catalog.search(query, limit).matches]


# -- ranking -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "best", "within"),
    [
        ("make a folder called backups", "filesystem_create_directory", 1),
        ("take a screenshot of the page", "playwright_browser_take_screenshot", 1),
        ("post 'deploy done' in the #releases channel", "slack_slack_post_message", 1),
        ("merge PR 42", "github_merge_pull_request", 1),
        ("listPullRequests", "github_list_pull_requests", 1),
        ("scale the web deployment to 5 replicas", "kubernetes_kubectl_scale", 1),
        ("what time is it in Tokyo right now", "time_get_current_time", 2),
        ("delete a kubernetes pod", "kubernetes_kubectl_delete", 3),
    ],
)
def test_a_task_in_words_finds_the_tool(
    catalog: Catalog, query: str, best: str, within: int
) -> None:
    assert best in names(catalog, query)[:within]


def test_results_carry_name_tool_id_description_and_score(catalog: Catalog) -> None:
    found = catalog.search("create an issue on github", limit=3)
    first = found.matches[0]
    assert (first.name, first.tool_id) == ("github_create_issue", "github_create_issue")
    assert first.description.startswith("Create a new issue in a GitHub repository")
    assert 0 < first.score <= 1
    scores = [m.score for m in found.matches]
    assert scores == sorted(scores, reverse=True)
    assert found.total > 3 and found.truncated
    assert found.to_json()["results"][0] == {
        "name": "github_create_issue",
        "description": first.description.split("\n\n")[0][:240].strip(),
        "score": first.score,
    }
    assert set(found.to_json()) == {"results", "total", "truncated"}


def test_an_exact_name_comes_first_with_or_without_external(catalog: Catalog) -> None:
    for query in ("git_git_status", "external_git_git_status", "GIT_GIT_STATUS"):
        found = catalog.search(query, 3)
        assert (found.matches[0].name, found.matches[0].score) == ("git_git_status", 1.0)


def test_a_name_prefix_lists_the_tools_it_begins(catalog: Catalog) -> None:
    found = catalog.search("git_git_diff_", 10)
    prefixed = [m.name for m in found.matches if m.score == 0.9]
    assert prefixed == ["git_git_diff_unstaged", "git_git_diff_staged"]
    assert [m.name for m in catalog.search("google_maps_maps", 3).matches] == [
        "google_maps_maps_geocode",
        "google_maps_maps_reverse_geocode",
        "google_maps_maps_search_places",
    ]
    # a group's name lists its tools
    assert {m.name for m in catalog.search("memory", 20).matches} >= {
        "memory_create_entities",
        "memory_read_graph",
    }


@pytest.mark.parametrize(
    "query",
    [
        "asdf qwerty zxcv",
        "lorem ipsum dolor sit amet",
        "what's the weather going to be like tomorrow in Seattle",
        "tell me a joke about penguins",
        "play some jazz music",
        "what is the capital of Australia",
        "how many calories are in a banana",
        "",
        "the of and",
    ],
)
def test_a_query_that_no_tool_serves_returns_nothing(catalog: Catalog, query: str) -> None:
    found = catalog.search(query)
    assert (found.matches, found.total, found.truncated) == ((), 0, False)


def test_a_tool_that_shares_only_a_generic_verb_does_not_fit() -> None:
    tools = {
        "time_convert_time": make(
            "time_convert_time", "Convert a time between timezones.", time={}, target_timezone={}
        ),
        "github_set_issue_fields": make(
            "github_set_issue_fields", "Set the fields of an issue.", issue={}, fields={}
        ),
        "filesystem_write_file": make(
            "filesystem_write_file", "Write text to a file, replacing it.", path={}, content={}
        ),
        "github_list_issues": make("github_list_issues", "List the issues of a repository."),
    }
    catalog = Catalog(tools, TS)
    # The verb alone matches: the task is about something no tool handles.
    for query in (
        "convert these miles to kilometres",
        "set a reminder for the dentist",
        "write a poem about the sea",
        "upload the holiday video",
    ):
        assert names(catalog, query) == [], query
    # The same verbs with what the tools act on do fit.
    assert names(catalog, "convert this time to another timezone")[:1] == ["time_convert_time"]
    assert names(catalog, "set the fields of issue 7")[:1] == ["github_set_issue_fields"]
    assert names(catalog, "write the notes to a file")[:1] == ["filesystem_write_file"]
    # A query of generic words only still finds what they say.
    assert names(catalog, "list all") == ["github_list_issues"]
    # The rule can be switched off: then the verb's tool is the least bad answer.
    loose = Catalog(tools, TS, ranking=Ranking(object_required=False))
    assert names(loose, "convert these miles to kilometres") == ["time_convert_time"]


def test_lazily_built_term_statistics_do_not_depend_on_query_order() -> None:
    tools = real_catalog()
    queries = ["create an issue on github", "list the open pull requests", "delete a pod"]
    first = Catalog(tools, TS)
    forward = [first.search(q, 5).to_json() for q in queries]
    second = Catalog(tools, TS)
    backward = [second.search(q, 5).to_json() for q in reversed(queries)]
    assert forward == backward[::-1]


def test_tools_with_the_same_text_score_alike_until_one_changes() -> None:
    tools = {
        f"{server}_create_issue": make(
            f"{server}_create_issue", "Create an issue in a repository.", title={}, body={}
        )
        for server in ("alpha", "beta")
    }
    catalog = Catalog(tools, TS)
    found = catalog.search("create an issue")
    assert [m.name for m in found.matches] == ["alpha_create_issue", "beta_create_issue"]
    assert found.matches[0].score == found.matches[1].score
    tools["beta_create_issue"] = make(
        "beta_create_issue", "Open a ticket in the help desk.", subject={}
    )
    found = catalog.search("create an issue in a repository")
    assert [m.name for m in found.matches] == ["alpha_create_issue", "beta_create_issue"]
    assert found.matches[0].score > found.matches[1].score
    assert names(catalog, "help desk ticket") == ["beta_create_issue"]


def test_bad_arguments_are_refused() -> None:
    catalog = Catalog({"a": make("a", "A tool.")}, TS)
    with pytest.raises(ValueError, match="limit must be a positive integer, got 0"):
        catalog.search("a", 0)
    with pytest.raises(TypeError, match="the query must be a string, got int"):
        catalog.search(3)  # type: ignore[arg-type]


# -- describe ----------------------------------------------------------------------------------


def item_tool(id: str, **properties: Any) -> Tool:
    schema = {
        "type": "object",
        "properties": {"item": {"$ref": "#/$defs/Item"}},
        "required": ["item"],
        "$defs": {"Item": {"type": "object", "properties": properties}},
    }
    return create_tool(id=id, description=f"{id} tool.", input_schema=schema, execute=echo)


def test_describe_renders_declarations_whose_type_names_never_collide() -> None:
    tools = {
        "orders_add": item_tool("orders_add", sku={"type": "string"}),
        "people_add": item_tool("people_add", age={"type": "integer"}),
    }
    catalog = Catalog(tools, TS)
    # described one at a time, each `Item` keeps a name of its own
    assert catalog.describe(["orders_add"]) == (
        "type OrdersAddItem = {\n  sku?: string;\n};\n\n"
        "/** orders_add tool. */\n"
        "declare function external_orders_add(input: {\n  item: OrdersAddItem;\n}): "
        "Promise<unknown>;\n"
    )
    assert "type PeopleAddItem = {\n  age?: number;\n};" in catalog.describe(["people_add"])
    # the same names as in the whole catalog's declarations (what the type checker reads)
    everything = catalog.declarations()
    assert "type OrdersAddItem = {" in everything and "type PeopleAddItem = {" in everything
    # names as search returns them, with external_, or as tool ids
    assert catalog.describe(["external_orders_add"]) == catalog.describe(["orders_add"])


def inline_tool(id: str, **properties: Any) -> Tool:
    schema = {
        "type": "object",
        "properties": {"item": {"type": "object", "properties": properties}},
        "required": ["item"],
    }
    return create_tool(id=id, description=f"{id} tool.", input_schema=schema, execute=echo)


def test_python_stubs_described_apart_never_give_a_class_two_meanings() -> None:
    # Alone, each of these tools' item class would be called ABItem.
    tools = {"a_b": inline_tool("a_b", x={"type": "string"}), "aB": inline_tool("aB", y={})}
    tools["orders_add"] = item_tool("orders_add", sku={"type": "string"})
    catalog = Catalog(tools, get_language("python"))
    imports = "from typing import Any, Literal, Never, NotRequired, TypedDict, overload\n\n\n"
    assert catalog.describe(["aB"]) == (
        f"{imports}class ABItem(TypedDict):\n    y: NotRequired[Any]\n\n\n"
        'async def external_aB(*, item: ABItem) -> Any:\n    """aB tool."""\n'
    )
    assert catalog.describe(["a_b", "orders_add"]) == (
        f"{imports}class A_bItem(TypedDict):\n    x: NotRequired[str]\n\n\n"
        "class Item(TypedDict):\n    sku: NotRequired[str]\n\n\n"
        'async def external_a_b(*, item: A_bItem) -> Any:\n    """a_b tool."""\n\n\n'
        "async def external_orders_add(*, item: Item) -> Any:\n"
        '    """orders_add tool."""\n'
    )
    # the whole catalog's stubs (what the type checker reads) use the same names
    everything = catalog.declarations()
    for name in ("class ABItem(", "class A_bItem(", "class Item("):
        assert everything.count(name) == 1
    assert catalog.describe(["aB"]) == catalog.describe(["external_aB"])


def test_describe_names_what_is_not_a_tool() -> None:
    catalog = Catalog(server_tools("git"), TS)
    with pytest.raises(UnknownToolError) as raised:
        catalog.describe(["git_git_stats", "nope"])
    assert str(raised.value) == (
        "no tool is called 'git_git_stats' (did you mean git_git_status, git_git_reset, "
        "git_git_add?), 'nope'; "
        "use the names that search returns"
    )


# -- a catalog that changes ----------------------------------------------------------------------


def test_the_index_is_rebuilt_when_the_catalog_changes() -> None:
    tools = {"weather_forecast": make("weather_forecast", "Tomorrow's forecast.", city={})}
    catalog = Catalog(tools, TS)
    assert names(catalog, "send an invoice") == []
    assert catalog.rebuilds == 1
    names(catalog, "forecast")
    assert catalog.rebuilds == 1  # nothing changed, nothing rebuilt

    tools["billing_send_invoice"] = make("billing_send_invoice", "Email an invoice.", to={})
    assert names(catalog, "send an invoice") == ["billing_send_invoice"]
    assert catalog.rebuilds == 2

    # a tool replaced by one with a new schema: describe never shows the old one
    tools["weather_forecast"] = make("weather_forecast", "Tomorrow's forecast.", lat={}, lon={})
    described = catalog.describe(["weather_forecast"])
    assert "lat: unknown;" in described and "city" not in described
    assert catalog.rebuilds == 3

    # a new description is searchable at once
    tools["weather_forecast"].description = "Tide tables for a harbour."
    assert names(catalog, "tide tables") == ["weather_forecast"]
    del tools["billing_send_invoice"]
    assert names(catalog, "send an invoice") == []


# -- a custom search -----------------------------------------------------------------------------


def test_a_custom_search_ranks_instead_of_the_lexical_index() -> None:
    tools = server_tools("time")
    seen: list[tuple[str, list[str]]] = []

    def by_length(query: str, catalog: Any) -> list[Any]:
        seen.append((query, list(catalog)))
        return [("time_convert_time", 0.75), "time_get_current_time"]

    catalog = Catalog(tools, TS, search=by_length)
    found = catalog.search("anything", limit=1)
    assert seen == [("anything", ["time_get_current_time", "time_convert_time"])]
    assert [(m.name, m.score) for m in found.matches] == [("time_convert_time", 0.75)]
    assert (found.total, found.truncated) == (2, True)


async def test_an_async_custom_search_needs_asearch() -> None:
    async def embedded(query: str, catalog: Any) -> list[str]:
        return ["time_convert_time"]

    catalog = Catalog(server_tools("time"), TS, search=embedded)
    assert [m.name for m in (await catalog.asearch("convert")).matches] == ["time_convert_time"]
    with pytest.raises(TypeError, match=r"the search= function is async: use `await"):
        catalog.search("convert")


def test_a_custom_search_that_returns_an_unknown_name_is_an_error() -> None:
    catalog = Catalog(server_tools("time"), TS, search=lambda q, c: ["time_nope"])
    with pytest.raises(ValueError, match="the search= function returned 'time_nope', which is"):
        catalog.search("x")


# -- the outline ---------------------------------------------------------------------------------


def test_the_outline_groups_by_server_with_counts_and_examples() -> None:
    tools = {**server_tools("git"), **server_tools("memory"), **server_tools("time")}
    outline = Catalog(tools, TS).outline()
    assert outline.total == 23
    assert [(g.name, g.count) for g in outline.groups] == [("git", 12), ("memory", 9), ("time", 2)]
    assert outline.groups[0].examples == ("git_git_diff", "git_git_create_branch", "git_git_add")
    assert all(len(g.examples) <= 3 for g in outline.groups)
    assert (outline.hidden_groups, outline.hidden_tools) == ((), 0)


def test_without_groups_a_shared_leading_word_is_a_group_and_a_verb_is_not() -> None:
    tools = {
        name: make(name, f"{name}.")
        for name in [
            "billing_refund", "billing_charge", "billing_invoice",
            "get_user", "get_team", "get_org",
            "ping",
        ]
    }  # fmt: skip
    outline = Catalog(tools, TS).outline()
    assert [(g.name, g.count) for g in outline.groups] == [("billing", 3), (None, 4)]


def test_a_large_outline_stays_bounded() -> None:
    tools: dict[str, Tool] = {}
    for copy in range(40):
        for name, tool in server_tools("time", group=f"time{copy}").items():
            tools[name] = tool
    outline = build_outline(Catalog(tools, TS).entries, max_groups=24)
    assert len(outline.groups) == 24
    assert (len(outline.hidden_groups), outline.hidden_tools) == (16, 32)
