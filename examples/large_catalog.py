"""A large catalog: 565 tools of 25 published MCP servers, outlined instead of declared.

The tools are the real definitions (names, descriptions, input schemas) recorded from the
servers in bench/data/catalogs/; here they answer with canned data instead of calling GitHub,
Slack and the rest. The instructions hold an outline of the catalog, and the program does what
a model would: search for a tool, read its declaration, call it, and return only what it needs.

Run from the repository root: python examples/large_catalog.py
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from codemode import DenoSandbox, Tool, create_code_mode, create_tool
from codemode.discovery import estimate_tokens

CATALOGS = Path(__file__).resolve().parent.parent / "bench" / "data" / "catalogs"

PULL_REQUESTS = [
    {"number": 101, "title": "Fix flaky login test", "draft": False, "user": {"login": "ana"}},
    {"number": 102, "title": "Dark mode", "draft": True, "user": {"login": "bo"}},
    {"number": 103, "title": "Bump vite to 6", "draft": False, "user": {"login": "dependabot"}},
]


def pretend(tool_id: str) -> Any:
    """What a tool answers in this example: pull requests for the one the program uses, an
    acknowledgement for the rest."""

    def execute(arguments: dict[str, Any]) -> Any:
        if tool_id == "github_list_pull_requests":
            return PULL_REQUESTS
        return {"ok": True, "tool": tool_id, "arguments": arguments}

    return execute


def load_catalog() -> dict[str, Tool]:
    tools: dict[str, Tool] = {}
    for path in sorted(CATALOGS.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        for item in record["tools"]:
            tool_id = f"{record['server']}_{item['name']}"
            tool = create_tool(
                id=tool_id,
                description=item.get("description") or "",
                input_schema=item["inputSchema"],
                execute=pretend(tool_id),
            )
            tool.group = record["server"]  # an MCP server is a group of the outline
            tools[tool_id] = tool
    return tools


# What a model writes once it has read the outline: find the tool, check its input, call it.
PROGRAM = """
const found = await codemode.searchTools("list the open pull requests of a repository", {
  limit: 3,
});
console.log(found.results.map((r) => `${r.name} ${r.score}`).join("\\n"));
const declaration = await codemode.describeTools([found.results[0].name]);
console.log(declaration.split("\\n").slice(0, 3).join("\\n"));

const prs = await external_github_list_pull_requests({
  owner: "octocat",
  repo: "hello-world",
  state: "open",
});
return prs.filter((pr) => !pr.draft).map((pr) => `#${pr.number} ${pr.title} (${pr.user.login})`);
"""


async def main() -> None:
    tools = load_catalog()
    async with DenoSandbox() as sandbox:
        code_tool, instructions = create_code_mode(
            tools=tools, sandbox=sandbox, pinned=["github_get_me"]
        )
        print(
            f"{len(tools)} tools; discovery {'on' if code_tool.discovery else 'off'}; "
            f"instructions: about {estimate_tokens(instructions):,} tokens"
        )
        outline = instructions.split("Outline of the catalog", 1)[1].split("\n\n", 1)[0]
        print("Outline of the catalog" + "\n".join(outline.split("\n")[:6]) + "\n  ...")

        # From Python, the host can search too.
        best = code_tool.search("send a message to a slack channel", limit=1).matches[0]
        print(f"\nsearch from Python: {best.name} (score {best.score})")

        result = await code_tool.execute({"code": PROGRAM})
        print("\nlogs:\n" + "\n".join(result.logs))
        print("\nresult:", json.dumps(result.result))


if __name__ == "__main__":
    asyncio.run(main())
