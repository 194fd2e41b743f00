"""Discovery in a code tool: the outline instead of every declaration, byte-stable
instructions, and search/describe inside a program, as tools and from Python. The cases that
run programs run each in both languages (TypeScript in a real Deno, Python in a real Monty)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from _catalogs import real_catalog, server_tools
from _helpers import LANGUAGES, Lang, Matches, channel_program, run, sandbox_for
from codemode import (
    CodeModeTool,
    DenoSandbox,
    MontySandbox,
    Tool,
    create_code_mode,
    create_code_mode_instructions,
    create_tool,
)
from codemode.discovery import UnknownToolError
from codemode.languages.python._checker import MontyTypeChecker
from codemode.languages.typescript._checker import TypeChecker


@pytest.fixture(scope="module")
def catalog() -> dict[str, Tool]:
    return real_catalog()


@pytest.fixture
async def sandbox() -> AsyncIterator[DenoSandbox]:
    async with DenoSandbox(prestart=1) as sandbox:
        yield sandbox


@pytest.fixture(params=LANGUAGES)
async def lang(request: pytest.FixtureRequest) -> AsyncIterator[Lang]:
    async with sandbox_for(request.param, prestart=1) as sandbox:
        yield Lang(request.param, sandbox)


# -- instructions --------------------------------------------------------------------------------


def test_a_large_catalog_gets_an_outline_and_the_pinned_declarations(
    catalog: dict[str, Tool],
) -> None:
    text = create_code_mode_instructions(tools=catalog, pinned=["git_git_status"])
    assert text.startswith("You have a tool named `execute_typescript`")
    assert (
        "Finding functions: there are 565 `external_*` functions, too many to declare here. "
        "The one declared at the end is always there." in text
    )
    assert "`await codemode.searchTools(query: string, options?: { limit?: number })`" in text
    assert "`codemode` exists only inside programs: it is not one of your tools." in text
    assert "the tools `search_tools` and `describe_tools` do the same" in text
    github = "- github_* (114): github_list_issues, github_update_pull_request, github_get_me, …"
    assert github + "\n" in text
    assert "- postgres_* (1): postgres_query\n" in text
    # the pinned tool is declared in full, and no other
    assert text.count("declare function ") == 1
    assert text.endswith(
        "Declared functions:\n\n/** Shows the working tree status */\n"
        "declare function external_git_git_status(input: {\n  repo_path: string;\n}): "
        "Promise<unknown>;\n"
    )


def test_python_gets_the_outline_its_own_search_and_pinned_stubs(
    catalog: dict[str, Tool],
) -> None:
    pinned = ["git_git_status", "github_create_issue"]
    text = create_code_mode_instructions(tools=catalog, language="python", pinned=pinned)
    assert (
        text == create_code_mode(tools=catalog, sandbox=MontySandbox(), pinned=pinned).instructions
    )
    assert text.startswith("You have a tool named `execute_python`")
    assert (
        "Finding functions: there are 565 `external_*` functions, too many to declare here. "
        "The 2 declared at the end are always there." in text
    )
    assert "`await codemode.search_tools(query: str, limit: int = 10)` returns" in text
    assert "`await codemode.describe_tools(names: list[str])` returns the Python stubs" in text
    assert "`codemode` exists only inside programs: it is not one of your tools." in text
    assert "the tools `search_tools` and `describe_tools` do the same" in text
    assert 'found = await codemode.search_tools("list open pull requests", limit=3)\n' in text
    github = "- github_* (114): github_list_issues, github_update_pull_request, github_get_me, …"
    assert github + "\n" in text
    assert "searchTools" not in text and "declare function" not in text
    # the pinned tools are declared in full, and no other
    assert text.count("async def external_") == 2
    assert text.endswith(
        "Declared functions:\n\n```python\n"
        "from typing import Any, Literal, Never, NotRequired, TypedDict, overload\n\n\n"
        'async def external_git_git_status(*, repo_path: str) -> Any:\n    """Shows the working '
        'tree status"""\n\n\nasync def external_github_create_issue(\n    *,\n    owner: str,\n'
        "    repo: str,\n    title: str,\n    body: str = ...,\n) -> Any:\n"
        '    """Create a new issue in a GitHub repository with a title and optional body.\n\n'
        "    Args:\n        owner: Repository owner (username or organization)\n"
        "        repo: Repository name\n        title: Issue title\n"
        '        body: Issue body content (optional)\n    """\n```\n'
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_auto_declares_a_small_catalog_in_full(catalog: dict[str, Tool], language: str) -> None:
    small = server_tools("git")
    full = create_code_mode_instructions(tools=small, language=language, discovery=False)
    assert create_code_mode_instructions(tools=small, language=language) == full
    assert "codemode." not in full
    # the same tools over a small budget get the outline
    tight = create_code_mode_instructions(
        tools=small, language=language, discovery_token_budget=500
    )
    assert tight == create_code_mode_instructions(tools=small, language=language, discovery=True)
    assert "declare function" not in tight and "async def external_" not in tight


def test_bad_discovery_arguments_name_the_problem(catalog: dict[str, Tool]) -> None:
    with pytest.raises(ValueError, match=r'discovery must be "auto", True or False, got \'yes\''):
        create_code_mode_instructions(tools=catalog, discovery="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError) as raised:
        create_code_mode_instructions(tools=catalog, discovery=True, pinned=["git_status"])
    assert str(raised.value) == Matches(r"pinned names no tool: 'git_status' \(did you mean .+\?\)")
    with pytest.raises(TypeError, match="pinned must be a list of tool names, not a string"):
        create_code_mode_instructions(tools=catalog, pinned="git_git_status")
    with pytest.raises(ValueError, match="max_model_output_chars must be an int of at least 1000"):
        create_code_mode(tools=catalog, sandbox=DenoSandbox(), max_model_output_chars=10)


async def test_the_description_never_changes(catalog: dict[str, Tool], lang: Lang) -> None:
    tools = dict(catalog)
    code_tool = create_code_mode(tools=tools, sandbox=lang.sandbox).tool
    before = code_tool.description
    assert before == code_tool.instructions
    code_tool.search("create an issue")
    code_tool.describe(["github_create_issue"])
    search, describe = code_tool.discovery_tools
    await search.execute({"query": "list files"})
    await describe.execute({"names": ["git_git_log"]})
    await run(
        code_tool,
        lang(
            {
                "typescript": 'return await codemode.searchTools("screenshot")',
                "python": 'await codemode.search_tools("screenshot")',
            }
        ),
    )
    code_tool.tools["extra_tool"] = create_tool(
        id="extra_tool", description="Added later.", input_schema={"type": "object"}, execute=dict
    )
    assert code_tool.search("added later").matches[0].name == "extra_tool"
    assert code_tool.description == before and code_tool.instructions == before


# -- inside a program ----------------------------------------------------------------------------


async def test_a_program_searches_describes_and_calls_in_one_go(
    catalog: dict[str, Tool], lang: Lang
) -> None:
    code_tool = create_code_mode(tools=catalog, sandbox=lang.sandbox).tool
    assert code_tool.discovery
    done = await run(
        code_tool,
        lang(
            {
                "typescript": """
        const found = await codemode.searchTools("post a message in a slack channel", { limit: 2 });
        const name = found.results[0].name;
        const declaration = await codemode.describeTools([name]);
        const call = (globalThis as any)["external_" + name];
        const sent = await call({ channel_id: "C1", text: "hi" });
        return { found, declaration, sent };
        """,
                "python": """
found = await codemode.search_tools("post a message in a slack channel", limit=2)
name = found["results"][0]["name"]
declaration = await codemode.describe_tools([name])
call = eval("external_" + name)
sent = await call(channel_id="C1", text="hi")
{"found": found, "declaration": declaration, "sent": sent}
""",
            }
        ),
    )
    assert done["success"], done
    result = done["result"]
    assert [r["name"] for r in result["found"]["results"]] == [
        "slack_slack_post_message",
        "slack_slack_get_channel_history",
    ]
    assert result["found"]["total"] >= 2 and result["found"]["truncated"] is (
        result["found"]["total"] > 2
    )
    assert result["found"]["results"][0]["description"] == "Post a new message to a Slack channel"
    assert 0 < result["found"]["results"][0]["score"] <= 1
    assert (
        lang(
            {
                "typescript": "declare function external_slack_slack_post_message(input: {",
                "python": "async def external_slack_slack_post_message(*, channel_id: str, text",
            }
        )
        in result["declaration"]
    )
    assert result["sent"] == {"echo": {"channel_id": "C1", "text": "hi"}}


async def test_every_tool_is_callable_whether_shown_or_not(
    catalog: dict[str, Tool], lang: Lang
) -> None:
    code_tool = create_code_mode(tools=catalog, sandbox=lang.sandbox).tool
    # never shown in the instructions, never searched
    code = lang(
        {
            "typescript": 'return await external_git_git_log({ repo_path: "/r" });',
            "python": 'await external_git_git_log(repo_path="/r")',
        }
    )
    done = await run(code_tool, code)
    assert done == {"success": True, "result": {"echo": {"repo_path": "/r"}}, "logs": []}


async def test_a_guessed_name_is_told_to_search(catalog: dict[str, Tool], lang: Lang) -> None:
    code_tool = create_code_mode(tools=catalog, sandbox=lang.sandbox).tool
    code = lang(
        {
            "typescript": "return await external_github_list_prs({});",
            "python": "await external_github_list_prs()",
        }
    )
    done = await run(code_tool, code)
    assert done["error"] == {
        "name": lang({"typescript": "ReferenceError", "python": "NameError"}),
        "message": Matches(
            lang(
                {
                    "typescript": r"external_github_list_prs is not defined",
                    "python": r"name 'external_github_list_prs' is not defined",
                }
            )
            + r"\. 565 functions are available; the closest: .*\. Find the one you need with "
            + lang(
                {"typescript": r"codemode\.searchTools\.", "python": r"codemode\.search_tools\."}
            )
        ),
        "line": 1,
    }


async def test_search_takes_an_options_object_or_one_argument(
    catalog: dict[str, Tool], lang: Lang
) -> None:
    code_tool = create_code_mode(tools=catalog, sandbox=lang.sandbox).tool
    code = lang(
        {
            "typescript": """
        const a = await codemode.searchTools({ query: "take a screenshot", limit: 1 });
        const b = await codemode.searchTools("take a screenshot");
        const none = await codemode.searchTools("asdf qwerty zxcv");
        return [a.results.length, b.results.length === Math.min(b.total, 10), none];
        """,
            "python": """
a = await codemode.search_tools({"query": "take a screenshot", "limit": 1})
b = await codemode.search_tools("take a screenshot")
c = await codemode.search_tools(query="take a screenshot", limit=2)
d = await codemode.search_tools("take a screenshot", 3)
none = await codemode.search_tools("asdf qwerty zxcv")
[len(a["results"]), len(b["results"]) == min(b["total"], 10), none, len(c["results"]),
 len(d["results"])]
""",
        }
    )
    done = await run(code_tool, code)
    empty = {"results": [], "total": 0, "truncated": False}
    assert done["result"] == lang(
        {"typescript": [1, True, empty], "python": [1, True, empty, 2, 3]}
    )


async def test_bad_calls_are_errors_the_program_can_catch(
    catalog: dict[str, Tool], lang: Lang
) -> None:
    code_tool = create_code_mode(tools=catalog, sandbox=lang.sandbox).tool
    code = lang(
        {
            "typescript": """
        const errors = [];
        for (const call of [
          () => codemode.searchTools(42),
          () => codemode.searchTools("x", 5),
          () => codemode.searchTools("x", { limit: 500 }),
          () => codemode.describeTools(["git_git_stats"]),
        ]) {
          try { await call(); } catch (e) { errors.push(`${e.name}: ${e.message}`); }
        }
        return errors;
        """,
            # Python names the errors by the built-in exception the program catches.
            "python": """
errors = []
for call in [
    lambda: codemode.search_tools(42),
    lambda: codemode.search_tools("x", lmit=5),
    lambda: codemode.search_tools("x", limit=500),
    lambda: codemode.describe_tools(["git_git_stats"]),
]:
    try:
        await call()
    except Exception as e:
        errors.append(f"{type(e).__name__}: {e}")
errors
""",
        }
    )
    done = await run(code_tool, code)
    search = lang({"typescript": "codemode.searchTools", "python": "codemode.search_tools"})
    invalid = lang({"typescript": "ValidationError", "python": "ValueError"})
    assert done["result"] == [
        f"{invalid}: Tool input validation failed for {search}:\n"
        "- query: Input should be a valid string\n"
        f"Expected: {search} as your instructions declare it",
        lang(
            {
                "typescript": "TypeError: codemode.searchTools(query, options): options must be "
                "an object such as { limit: 5 }",
                "python": "TypeError: codemode.search_tools() got an unexpected keyword argument "
                "'lmit': await codemode.search_tools(query, limit=10)",
            }
        ),
        f"{invalid}: Tool input validation failed for {search}:\n"
        "- limit: Input should be less than or equal to 50\n"
        f"Expected: {search} as your instructions declare it",
        Matches(
            lang({"typescript": "UnknownToolError", "python": "LookupError"})
            + r": no tool is called 'git_git_stats' \(did you mean git_git_status.*"
        ),
    ]
    # Uncaught, a describe of a name that is no tool keeps its own name.
    uncaught = await run(
        code_tool,
        lang(
            {
                "typescript": 'return await codemode.describeTools("git_git_stats")',
                "python": 'await codemode.describe_tools("git_git_stats")',
            }
        ),
    )
    assert (uncaught["error"]["name"], uncaught["error"]["line"]) == ("UnknownToolError", 1)


async def test_the_codemode_object_is_frozen_and_locked(
    catalog: dict[str, Tool], sandbox: DenoSandbox
) -> None:
    # (TypeScript: programs share a realm with the object. A Python program holds a host
    # object whose functions Monty hands back to the host by name: see the test below.)
    code_tool = create_code_mode(tools=catalog, sandbox=sandbox).tool
    done = await run(
        code_tool,
        """
        "use strict";
        const out = [Object.isFrozen(codemode)];
        try { (codemode as any).searchTools = () => 1; } catch (e) { out.push(e.name); }
        try { (globalThis as any).codemode = {}; } catch (e) { out.push(e.name); }
        try { delete (globalThis as any).codemode; } catch (e) { out.push(e.name); }
        out.push(typeof (globalThis as any)["external_codemode:search"]);
        return out;
        """,
    )
    assert done["result"] == [True, "TypeError", "TypeError", "TypeError", "undefined"]


async def test_a_python_program_gets_a_fresh_codemode_object_each_run(
    catalog: dict[str, Tool],
) -> None:
    async with MontySandbox(prestart=1) as sandbox:
        code_tool = create_code_mode(tools=catalog, sandbox=sandbox).tool
        # Rebinding or changing it changes only this program's view.
        spoiled = await run(
            code_tool,
            "found = codemode.search_tools\ncodemode.search_tools = None\n"
            "[type(codemode).__name__, (await found('screenshot', limit=1))['total'] > 0]",
        )
        assert spoiled["result"] == ["CodemodeDiscovery", True]
        again = await run(code_tool, "(await codemode.search_tools('screenshot'))['total'] > 0")
        assert again["result"] is True
        # Only the object's two functions reach the host's search and describe.
        other = await run(code_tool, "await codemode.call_tool('git_git_log', {})")
        assert other["error"] == {
            "name": "AttributeError",
            "message": "'CodemodeDiscovery' object has no attribute 'call_tool'",
            "line": 1,
        }


async def test_search_calls_count_against_the_call_limit(
    catalog: dict[str, Tool], lang: Lang
) -> None:
    code_tool = create_code_mode(tools=catalog, sandbox=lang.sandbox, max_tool_calls=3).tool
    code = lang(
        {
            "typescript": 'for (let i = 0; i < 4; i++) await codemode.searchTools("x");\nreturn 1;',
            "python": 'for i in range(4):\n    await codemode.search_tools("x")\n1',
        }
    )
    done = await run(code_tool, code)
    assert done["error"]["name"] == "ToolCallLimitError"


async def test_without_discovery_programs_have_no_codemode_and_cannot_reach_search(
    lang: Lang,
) -> None:
    code_tool = create_code_mode(tools=server_tools("git"), sandbox=lang.sandbox).tool
    assert not code_tool.discovery
    code = lang(
        {
            "typescript": "return typeof codemode;",
            "python": "try:\n    codemode\n    found = 'defined'\n"
            "except NameError as e:\n    found = str(e)\nfound",
        }
    )
    done = await run(code_tool, code)
    assert done["result"] == lang(
        {"typescript": "undefined", "python": "name 'codemode' is not defined"}
    )
    if lang.name == "python":
        return  # a Python program cannot name the reserved calls, nor send a message
    # Calls cross as numbers in the job's list of tools, which holds no reserved names without
    # discovery: a program that forges a call past the list's end (given its channel to the
    # runner, as if it had found it) is refused.
    count = len(server_tools("git"))
    lang.sandbox._expose_channel = True  # type: ignore[attr-defined]
    try:
        forged = await run(
            code_tool,
            channel_program(
                f'self.postMessage(call(1e6, {count}, \'{{"query":"x"}}\')); '
                "return await answer(1e6)"
            ),
        )
    finally:
        lang.sandbox._expose_channel = False  # type: ignore[attr-defined]
    message = f"There is no tool number {count}: the call was forged."
    assert forged["result"] == ["E", {"name": "ReferenceError", "message": message}]


# -- as tools and from Python ------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
async def test_discovery_tools_search_and_describe(catalog: dict[str, Tool], language: str) -> None:
    code_tool = create_code_mode(tools=catalog, sandbox=sandbox_for(language)).tool
    search, describe = code_tool.discovery_tools
    assert (search.id, describe.id) == ("search_tools", "describe_tools")
    assert "This is a tool: call it directly, not from a program. Inside a program, use " in (
        search.description
    )
    found = await search.execute({"query": "read a file from disk", "limit": 2})
    assert [r["name"] for r in found["results"]] == [
        "filesystem_read_file",
        "filesystem_read_multiple_files",
    ]
    assert found["truncated"] is True
    text = await describe.execute({"names": ["filesystem_read_text_file"]})
    assert {
        "typescript": "declare function external_filesystem_read_text_file(input: {",
        "python": "async def external_filesystem_read_text_file(",
    }[language] in text
    inside = {"typescript": "codemode.searchTools", "python": "codemode.search_tools"}[language]
    assert search.description.endswith(f"Inside a program, use {inside} instead.")
    assert await describe.execute({"names": ["filesystem_read"]}) == (
        "no tool is called 'filesystem_read' (did you mean filesystem_read_file, "
        "filesystem_read_text_file, filesystem_edit_file?); use the names that search "
        "returns (search_tools finds them)."
    )


def test_discovery_tools_are_named_after_a_custom_code_tool(catalog: dict[str, Tool]) -> None:
    code_tool = create_code_mode(tools=catalog, sandbox=DenoSandbox(), id="ops_code").tool
    assert [t.id for t in code_tool.discovery_tools] == [
        "search_ops_code_tools",
        "describe_ops_code_tools",
    ]
    assert "`search_ops_code_tools` and `describe_ops_code_tools`" in code_tool.instructions


@pytest.mark.parametrize("language", LANGUAGES)
def test_search_and_describe_from_python(catalog: dict[str, Tool], language: str) -> None:
    sandbox = sandbox_for(language)
    code_tool: CodeModeTool = create_code_mode(tools=catalog, sandbox=sandbox).tool
    found = code_tool.search("send a message to a slack channel", limit=3)
    first = found.matches[0]
    assert (first.name, first.tool_id) == ("slack_slack_post_message", "slack_slack_post_message")
    assert first.description == "Post a new message to a Slack channel"
    assert found.total >= 3
    assert code_tool.describe(["slack_slack_post_message"]).startswith(
        {
            "typescript": "/** Post a new message to a Slack channel */\n"
            "declare function external_slack_slack_post_message(input: {",
            "python": "from typing import Any, Literal, Never, NotRequired, TypedDict, overload"
            "\n\n\nasync def external_slack_slack_post_message(*, channel_id: str, text: str) "
            '-> Any:\n    """Post a new message to a Slack channel',
        }[language]
    )
    with pytest.raises(UnknownToolError):
        code_tool.describe(["slack_post"])


async def test_a_custom_search_serves_programs_too(lang: Lang) -> None:
    async def newest_first(query: str, tools: Any) -> list[str]:
        return list(tools)[::-1][:2]

    code_tool = create_code_mode(
        tools=server_tools("git"), sandbox=lang.sandbox, discovery=True, search=newest_first
    ).tool
    code = lang(
        {
            "typescript": 'return (await codemode.searchTools("x")).results.map(r => r.name)',
            "python": '[r["name"] for r in (await codemode.search_tools("x"))["results"]]',
        }
    )
    done = await run(code_tool, code)
    assert done["result"] == ["git_git_branch", "git_git_show"]


# -- bounded output ------------------------------------------------------------------------------


async def test_a_large_result_reaches_the_model_cut_and_the_host_whole(lang: Lang) -> None:
    code_tool = create_code_mode(
        tools=server_tools("git"), sandbox=lang.sandbox, max_model_output_chars=2_000
    ).tool
    code = lang(
        {
            "typescript": "return Array.from({ length: 10000 }, (_, i) => ({ i }));",
            "python": '[{"i": i} for i in range(10000)]',
        }
    )
    result = await code_tool.execute({"code": code})
    assert len(result.result) == 10_000
    shown = result.to_json()
    assert shown["result"][0] == {"i": 0}
    assert shown["result"][-1] == Matches(r"… \d{1,2},?\d{3} more items")
    assert shown["note"].startswith("The output was cut to fit 2,000 characters")


async def test_typecheck_knows_the_codemode_object(catalog: dict[str, Tool]) -> None:
    async with DenoSandbox(prestart=0) as sandbox, TypeChecker() as checker:
        code_tool = create_code_mode(
            tools=server_tools("git"), sandbox=sandbox, discovery=True, typecheck=checker
        ).tool
        ok = await run(code_tool, 'return (await codemode.searchTools("log")).total;')
        assert ok["success"], ok
        bad = await run(code_tool, "return await codemode.searchTools(1, 2);")
        assert bad["error"]["name"] == "TypeCheckError"
        assert "not assignable to parameter of type 'string'" in bad["error"]["message"]


async def test_the_python_typecheck_knows_the_codemode_object(catalog: dict[str, Tool]) -> None:
    checker = MontyTypeChecker()
    try:
        async with MontySandbox(prestart=0) as sandbox:
            code_tool = create_code_mode(
                tools=server_tools("git"), sandbox=sandbox, discovery=True, typecheck=checker
            ).tool
            ok = await run(
                code_tool,
                'found = await codemode.search_tools("log", limit=2)\n'
                'text = await codemode.describe_tools([r["name"] for r in found["results"]])\n'
                'found["total"] + len(text.splitlines())',
            )
            assert ok["success"], ok
            bad = await run(code_tool, 'x = 1\n(await codemode.search_tools("log"))["count"]')
            assert bad["error"] == {
                "name": "TypeCheckError",
                "message": 'Unknown key "count" for TypedDict `CodemodeSearchResults` '
                "(invalid-key)",
                "line": 2,
            }
    finally:
        checker.close()


def test_the_large_catalog_example_runs() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "examples/large_catalog.py"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("565 tools; discovery on; instructions: about ")
    assert "search from Python: slack_slack_post_message (score " in done.stdout
    assert done.stdout.endswith(
        'result: ["#101 Fix flaky login test (ana)", "#103 Bump vite to 6 (dependabot)"]\n'
    )
