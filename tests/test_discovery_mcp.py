"""The MCP gateway with a large catalog: `codemode serve` in front of real MCP servers (recorded
catalogs of published servers), a real MCP client over stdio, discovery switched on by "auto",
for programs in each language."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from _catalogs import CATALOGS
from _helpers import LANGUAGES, Lang, Matches

SERVERS = Path(__file__).parent / "mcp_servers"
CODEMODE = str(Path(sys.executable).with_name("codemode"))


def catalog_server(name: str) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": [str(SERVERS / "catalog.py")],
        "env": {"CATALOG": str(CATALOGS / f"{name}.json")},
    }


@pytest.fixture
def config(tmp_path: Path) -> Path:
    servers = {name: catalog_server(name) for name in ("github", "git", "slack", "time")}
    path = tmp_path / "servers.json"
    path.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    return path


@pytest.mark.parametrize("language", LANGUAGES)
async def test_the_gateway_serves_search_and_describe_beside_the_code_tool(
    config: Path, language: str
) -> None:
    lang = Lang(language, None)  # type: ignore[arg-type]  # (the gateway has the sandbox)
    code_tool = f"execute_{language}"
    params = StdioServerParameters(
        command=CODEMODE, args=["serve", "--config", str(config), "--language", language]
    )
    with tempfile.TemporaryFile("w+") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            # codemode serve, its upstream servers and its sandbox processes (each in a
            # session of its own, so they would survive as orphans if it left them behind)
            (serve,) = [p for p in psutil.Process().children() if str(config) in p.cmdline()]
            descendants = [serve, *serve.children(recursive=True)]
            listed = {t.name: t for t in (await session.list_tools()).tools}
            assert sorted(listed) == ["describe_tools", code_tool, "search_tools"]
            description = listed[code_tool].description or ""
            assert "there are 136 `external_*` functions, too many to declare here" in description
            assert "- github_* (114): " in description
            assert "declare function" not in description and "async def" not in description
            assert listed["search_tools"].output_schema is not None
            assert listed["describe_tools"].output_schema is None

            # the model searches and describes with plain tool calls
            found = await session.call_tool(
                "search_tools", {"query": "post a message to a slack channel", "limit": 2}
            )
            assert found.is_error is not True
            assert found.structured_content is not None
            names = [r["name"] for r in found.structured_content["results"]]
            assert names[0] == "slack_slack_post_message"
            assert json.loads(found.content[0].text) == found.structured_content  # type: ignore[union-attr]
            described = await session.call_tool(
                "describe_tools", {"names": ["slack_slack_post_message"]}
            )
            text = described.content[0].text  # type: ignore[union-attr]
            assert (
                lang(
                    {
                        "typescript": "declare function external_slack_slack_post_message(input: {",
                        "python": "async def external_slack_slack_post_message(*, channel_id",
                    }
                )
                in text
            )
            assert lang({"typescript": "channel_id: string;", "python": "channel_id: The ID"}) in (
                text
            )

            # or a program does it all in one go, calling the upstream server
            code = lang(
                {
                    "typescript": """
                    const found = await codemode.searchTools("show the commit log", { limit: 1 });
                    const fn = (globalThis as any)["external_" + found.results[0].name];
                    return await fn({ repo_path: "/repo", max_count: 3 });
                    """,
                    "python": """
found = await codemode.search_tools("show the commit log", limit=1)
fn = eval("external_" + found["results"][0]["name"])
await fn(repo_path="/repo", max_count=3)
""",
                }
            )
            result = await session.call_tool(code_tool, {"code": code})
            assert result.structured_content == {
                "success": True,
                "result": {"tool": "git_log", "arguments": {"repo_path": "/repo", "max_count": 3}},
                "logs": [],
            }

            bad = await session.call_tool("search_tools", {"query": ""})
            assert bad.is_error is True
            assert bad.content[0].text.startswith(  # type: ignore[union-attr]
                "Tool input validation failed for search_tools:\n- query: String should have"
            )
        _, alive = psutil.wait_procs(descendants, timeout=10)
        assert alive == []
        errlog.seek(0)
        assert (
            f"codemode: serving {code_tool} (with search_tools, describe_tools: the catalog "
            "is outlined) on stdio over 136 tools" in errlog.read()
        )


def test_codemode_instructions_shows_what_would_be_used_and_its_tokens(config: Path) -> None:
    import subprocess

    def instructions(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CODEMODE, "instructions", "--mcp-config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )

    outlined = instructions("--pin", "git_git_status")
    assert outlined.returncode == 0, outlined.stderr
    assert "Outline of the catalog (group: how many functions, a few of their names):\n" in (
        outlined.stdout
    )
    assert outlined.stdout.count("declare function ") == 1
    assert outlined.stderr == Matches(
        r"codemode: outline of 136 tools: about \d{3} tokens \(estimated\); the full "
        r"declarations would be about \d\d,\d{3} tokens, over the budget of 6,000\n"
    )
    full = instructions("--discovery", "off")
    assert full.stdout.count("declare function ") == 136
    assert full.stderr == Matches(
        r"codemode: full declarations of 136 tools: about \d\d,\d{3} tokens \(estimated\); "
        r"--discovery off\n"
    )
    wrong = instructions("--pin", "git_stat")
    assert wrong.returncode == 2
    assert wrong.stderr == Matches(r"Error: pinned names no tool: 'git_stat' \(did you mean .*\)\n")
