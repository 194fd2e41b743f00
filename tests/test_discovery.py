"""Discovery in a code tool: the outline instead of every declaration, byte-stable
instructions, and search/describe inside a program (real Deno), as tools and from Python."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from _catalogs import real_catalog, server_tools
from _helpers import Matches, run
from codemode import (
    CodeModeTool,
    DenoSandbox,
    Tool,
    create_code_mode,
    create_code_mode_instructions,
    create_tool,
)
from codemode.discovery import UnknownToolError
from codemode.languages.typescript._checker import TypeChecker


@pytest.fixture(scope="module")
def catalog() -> dict[str, Tool]:
    return real_catalog()


@pytest.fixture
async def sandbox() -> AsyncIterator[DenoSandbox]:
    async with DenoSandbox(prestart=1) as sandbox:
        yield sandbox


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


def test_auto_declares_a_small_catalog_in_full(catalog: dict[str, Tool]) -> None:
    small = server_tools("git")
    assert create_code_mode_instructions(tools=small) == create_code_mode_instructions(
        tools=small, discovery=False
    )
    assert "codemode.searchTools" not in create_code_mode_instructions(tools=small)
    # the same tools over a small budget get the outline
    tight = create_code_mode_instructions(tools=small, discovery_token_budget=500)
    assert tight == create_code_mode_instructions(tools=small, discovery=True)
    assert "declare function" not in tight


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


async def test_the_description_never_changes(
    catalog: dict[str, Tool], sandbox: DenoSandbox
) -> None:
    tools = dict(catalog)
    code_tool = create_code_mode(tools=tools, sandbox=sandbox).tool
    before = code_tool.description
    assert before == code_tool.instructions
    code_tool.search("create an issue")
    code_tool.describe(["github_create_issue"])
    search, describe = code_tool.discovery_tools
    await search.execute({"query": "list files"})
    await describe.execute({"names": ["git_git_log"]})
    await run(code_tool, 'return await codemode.searchTools("screenshot")')
    code_tool.tools["extra_tool"] = create_tool(
        id="extra_tool", description="Added later.", input_schema={"type": "object"}, execute=dict
    )
    assert code_tool.search("added later").matches[0].name == "extra_tool"
    assert code_tool.description == before and code_tool.instructions == before


# -- inside a program ----------------------------------------------------------------------------


async def test_a_program_searches_describes_and_calls_in_one_go(
    catalog: dict[str, Tool], sandbox: DenoSandbox
) -> None:
    code_tool = create_code_mode(tools=catalog, sandbox=sandbox).tool
    assert code_tool.discovery
    done = await run(
        code_tool,
        """
        const found = await codemode.searchTools("post a message in a slack channel", { limit: 2 });
        const name = found.results[0].name;
        const declaration = await codemode.describeTools([name]);
        const call = (globalThis as any)["external_" + name];
        const sent = await call({ channel_id: "C1", text: "hi" });
        return { found, declaration, sent };
        """,
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
    assert "declare function external_slack_slack_post_message(input: {" in result["declaration"]
    assert result["sent"] == {"echo": {"channel_id": "C1", "text": "hi"}}


async def test_every_tool_is_callable_whether_shown_or_not(
    catalog: dict[str, Tool], sandbox: DenoSandbox
) -> None:
    code_tool = create_code_mode(tools=catalog, sandbox=sandbox).tool
    # never shown in the instructions, never searched
    done = await run(code_tool, 'return await external_git_git_log({ repo_path: "/r" });')
    assert done == {"success": True, "result": {"echo": {"repo_path": "/r"}}, "logs": []}


async def test_a_guessed_name_is_told_to_search(
    catalog: dict[str, Tool], sandbox: DenoSandbox
) -> None:
    code_tool = create_code_mode(tools=catalog, sandbox=sandbox).tool
    done = await run(code_tool, "return await external_github_list_prs({});")
    assert done["error"] == {
        "name": "ReferenceError",
        "message": Matches(
            r"external_github_list_prs is not defined\. 565 functions are available; the "
            r"closest: .*\. Find the one you need with codemode\.searchTools\."
        ),
        "line": 1,
    }


async def test_search_takes_an_options_object_or_one_argument(
    catalog: dict[str, Tool], sandbox: DenoSandbox
) -> None:
    code_tool = create_code_mode(tools=catalog, sandbox=sandbox).tool
    done = await run(
        code_tool,
        """
        const a = await codemode.searchTools({ query: "take a screenshot", limit: 1 });
        const b = await codemode.searchTools("take a screenshot");
        const none = await codemode.searchTools("asdf qwerty zxcv");
        return [a.results.length, b.results.length === Math.min(b.total, 10), none];
        """,
    )
    assert done["result"] == [1, True, {"results": [], "total": 0, "truncated": False}]


async def test_bad_calls_are_errors_the_program_can_catch(
    catalog: dict[str, Tool], sandbox: DenoSandbox
) -> None:
    code_tool = create_code_mode(tools=catalog, sandbox=sandbox).tool
    done = await run(
        code_tool,
        """
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
    )
    assert done["result"] == [
        "ValidationError: Tool input validation failed for codemode.searchTools:\n"
        "- query: Input should be a valid string\n"
        "Expected: codemode.searchTools as your instructions declare it",
        "TypeError: codemode.searchTools(query, options): options must be an object such as "
        "{ limit: 5 }",
        "ValidationError: Tool input validation failed for codemode.searchTools:\n"
        "- limit: Input should be less than or equal to 50\n"
        "Expected: codemode.searchTools as your instructions declare it",
        Matches(
            r"UnknownToolError: no tool is called 'git_git_stats' \(did you mean git_git_status.*"
        ),
    ]


async def test_the_codemode_object_is_frozen_and_locked(
    catalog: dict[str, Tool], sandbox: DenoSandbox
) -> None:
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


async def test_search_calls_count_against_the_call_limit(
    catalog: dict[str, Tool], sandbox: DenoSandbox
) -> None:
    code_tool = create_code_mode(tools=catalog, sandbox=sandbox, max_tool_calls=3).tool
    done = await run(
        code_tool, 'for (let i = 0; i < 4; i++) await codemode.searchTools("x");\nreturn 1;'
    )
    assert done["error"]["name"] == "ToolCallLimitError"


async def test_without_discovery_programs_have_no_codemode_and_cannot_reach_search(
    sandbox: DenoSandbox,
) -> None:
    code_tool = create_code_mode(tools=server_tools("git"), sandbox=sandbox).tool
    assert not code_tool.discovery
    done = await run(code_tool, "return typeof codemode;")
    assert done["result"] == "undefined"
    # a program that forges the reserved call name is refused by the runner
    forged = await run(
        code_tool,
        """
        return await new Promise((resolve) => {
          const previous = (globalThis as any).onmessage;
          (globalThis as any).onmessage = (event: MessageEvent) => {
            if (event.data.t === "ret" && event.data.c === 999) resolve(event.data.e);
            else previous(event);
          };
          const call = { t: "call", c: 999, n: "codemode:search", a: '{"query":"x"}' };
          (globalThis as any).postMessage(call);
        });
        """,
    )
    assert forged["result"] == {
        "name": "ReferenceError",
        "message": "external_codemode:search is not defined",
    }


# -- as tools and from Python ------------------------------------------------------------------


async def test_discovery_tools_search_and_describe(catalog: dict[str, Tool]) -> None:
    code_tool = create_code_mode(tools=catalog, sandbox=DenoSandbox()).tool
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
    assert "declare function external_filesystem_read_text_file(input: {" in text
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


def test_search_and_describe_from_python(catalog: dict[str, Tool]) -> None:
    code_tool: CodeModeTool = create_code_mode(tools=catalog, sandbox=DenoSandbox()).tool
    found = code_tool.search("send a message to a slack channel", limit=3)
    first = found.matches[0]
    assert (first.name, first.tool_id) == ("slack_slack_post_message", "slack_slack_post_message")
    assert first.description == "Post a new message to a Slack channel"
    assert found.total >= 3
    assert code_tool.describe(["slack_slack_post_message"]).startswith(
        "/** Post a new message to a Slack channel */\n"
        "declare function external_slack_slack_post_message(input: {"
    )
    with pytest.raises(UnknownToolError):
        code_tool.describe(["slack_post"])


async def test_a_custom_search_serves_programs_too(sandbox: DenoSandbox) -> None:
    async def newest_first(query: str, tools: Any) -> list[str]:
        return list(tools)[::-1][:2]

    code_tool = create_code_mode(
        tools=server_tools("git"), sandbox=sandbox, discovery=True, search=newest_first
    ).tool
    done = await run(code_tool, 'return (await codemode.searchTools("x")).results.map(r => r.name)')
    assert done["result"] == ["git_git_branch", "git_git_show"]


# -- bounded output ------------------------------------------------------------------------------


async def test_a_large_result_reaches_the_model_cut_and_the_host_whole(
    sandbox: DenoSandbox,
) -> None:
    code_tool = create_code_mode(
        tools=server_tools("git"), sandbox=sandbox, max_model_output_chars=2_000
    ).tool
    result = await code_tool.execute(
        {"code": "return Array.from({ length: 10000 }, (_, i) => ({ i }));"}
    )
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
