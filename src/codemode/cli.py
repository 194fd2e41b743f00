"""The ``codemode`` command: run a program against tools, print the instructions, or serve one
code tool over MCP.

Tools come from Python (``--tools``) and from MCP servers (``--mcp-config servers.json``). The
MCP SDK is imported only when a config is given, so the rest works without the ``mcp`` extra.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from ._code_mode import (
    DEFAULT_TIMEOUT_MS,
    DiscoveryMode,
    InstructionsPlan,
    create_code_mode,
    plan_instructions,
)
from ._loading import ToolsSpecError, load_tools
from ._result import CodeModeToolResult
from ._tools import Tool
from .discovery import DEFAULT_TOKEN_BUDGET, estimate_tokens
from .integrations.mcp.config import McpConfigError, McpServerConfig, load_mcp_config
from .languages import Language, get_language, known_languages, language_for_file
from .sandboxes import DenoSandbox, LocalSandbox, MontySandbox, Sandbox

app = typer.Typer(
    name="codemode",
    help="""Run model-written programs against your tools in a sandbox (TypeScript in Deno,
Python in Monty), or serve them to any MCP client as one code tool.

Tools come from Python (--tools) and from MCP servers (--mcp-config); a program calls
them as external_<name>(input), an MCP tool as external_<server>_<tool>(input).

Examples:

\b
  codemode run examples/shop.ts --tools examples/shop.py
  codemode run examples/shop_program.py --tools examples/shop.py
  codemode run program.ts --mcp-config servers.json
  codemode instructions --tools examples/shop.py
  codemode instructions --mcp-config servers.json
  codemode instructions --mcp-config servers.json --discovery on --pin git_git_status
  codemode serve --config servers.json
  codemode serve --config servers.json --http 8765
  codemode serve --config servers.json --language python

servers.json has the shape MCP clients share:

\b
  {"mcpServers": {
    "git": {"command": "uvx", "args": ["mcp-server-git"], "env": {}},
    "docs": {"url": "http://127.0.0.1:9000/mcp"}}}
""",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ToolsOption = Annotated[
    list[str],
    typer.Option(
        "--tools",
        "-t",
        help="Tools as MODULE[:ATTR] or FILE.py[:ATTR] (ATTR defaults to `tools`: a list or "
        "dict of Tool). Repeat for several.",
    ),
]

McpConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--mcp-config",
        help='MCP servers whose tools to use: a servers.json ({"mcpServers": {...}}). Each tool '
        "is called as external_<server>_<tool>. Needs the mcp extra.",
    ),
]


DiscoveryOption = Annotated[
    str,
    typer.Option(
        "--discovery",
        metavar="auto|on|off",
        help="Declare every tool (off), or give an outline of the catalog and let programs "
        "search it (on); auto: on when the full declarations would pass --token-budget.",
    ),
]

PinOption = Annotated[
    list[str],
    typer.Option(
        "--pin",
        help="With discovery on, declare this tool in full anyway (repeat for several).",
    ),
]

TokenBudgetOption = Annotated[
    int,
    typer.Option(
        "--token-budget",
        min=1,
        help="With --discovery auto: the most (estimated) tokens of full declarations.",
    ),
]

LanguageOption = Annotated[
    str | None,
    typer.Option(
        "--language",
        "-l",
        help="The program language: typescript (Deno) or python (Monty). "
        "Default: typescript, or what the program file's extension says for `run`.",
    ),
]


def _discovery_mode(value: str) -> DiscoveryMode:
    modes: dict[str, DiscoveryMode] = {"auto": "auto", "on": True, "off": False}
    if value not in modes:
        raise _fail_usage(f"--discovery must be auto, on or off, got {value!r}")
    return modes[value]


def _language(name: str | None, file: Path | None = None) -> Language:
    """The language asked for, else the file's (by extension), else TypeScript."""
    if name is not None:
        try:
            return get_language(name.lower())
        except ValueError:
            raise _fail_usage(
                f"unknown language {name!r}; choose one of: {', '.join(known_languages())}"
            ) from None
    found = language_for_file(str(file)) if file is not None else None
    return found or get_language("typescript")


def _sandbox(language: Language, *, local: bool = False, prestart: int = 2) -> Sandbox:
    """The sandbox that runs programs in ``language``."""
    if language.name == "python":
        if local:
            raise _fail_usage("--local runs TypeScript with host privileges; Python runs in Monty")
        return MontySandbox(prestart=prestart)
    return LocalSandbox(prestart=prestart) if local else DenoSandbox(prestart=prestart)


class _UsageError(Exception):
    """Bad usage found while running; the command exits with code 2 and this message."""


def _fail_usage(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(2)


def _collect_tools(specs: list[str]) -> dict[str, Tool]:
    tools: dict[str, Tool] = {}
    for spec in specs:
        try:
            loaded = load_tools(spec)
        except ToolsSpecError as exc:
            raise _fail_usage(str(exc)) from None
        for key, value in loaded.items():
            if key in tools:
                raise _fail_usage(f"two tools are named {key!r} (from --tools {spec})")
            tools[key] = value
    return tools


def _read_mcp_config(path: Path | None) -> list[McpServerConfig] | None:
    """The servers of ``path``, checked before anything starts (a bad config is bad usage)."""
    if path is None:
        return None
    try:
        configs = load_mcp_config(path)
    except McpConfigError as exc:
        raise _fail_usage(str(exc)) from None
    _require_mcp()
    return configs


def _require_mcp() -> None:
    try:
        import codemode.integrations.mcp.client  # noqa: F401
    except ImportError as exc:
        raise _fail_usage(
            f"MCP servers need the MCP SDK, which is not installed ({exc}); "
            "pip install 'codemode[mcp]'"
        ) from None


@asynccontextmanager
async def _all_tools(
    named: dict[str, Tool], configs: Sequence[McpServerConfig] | None
) -> AsyncIterator[dict[str, Tool]]:
    """``named`` plus the tools of the MCP servers in ``configs``, connected for the block.

    Servers that fail to start are reported on stderr and left out.
    """
    if configs is None:
        yield named
        return
    from .integrations.mcp import connect_mcp_servers

    async with connect_mcp_servers(configs) as servers:
        tools = dict(named)
        for server, connection in servers.connections.items():
            for item in connection.tools:
                if item.id in tools:
                    raise _UsageError(
                        f"two tools are named {item.id!r} (from --tools and MCP server {server!r})"
                    )
                tools[item.id] = item
        yield tools


def _print_json(value: Any) -> None:
    pretty = sys.stdout.isatty()
    typer.echo(json.dumps(value, indent=2 if pretty else None, ensure_ascii=False))


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="The program, .ts or .py (`-` for stdin).")],
    tools: ToolsOption = [],  # noqa: B006 - typer reads the default
    mcp_config: McpConfigOption = None,
    language: LanguageOption = None,
    timeout: Annotated[int, typer.Option(help="Timeout in milliseconds.")] = DEFAULT_TIMEOUT_MS,
    local: Annotated[
        bool, typer.Option("--local", help="Use LocalSandbox (host privileges; trusted code only).")
    ] = False,
) -> None:
    """Run FILE against the tools and print the result as JSON. Exit code 0 when the program
    succeeded, 1 when it failed, 2 on bad usage."""
    if str(file) == "-":
        code = sys.stdin.read()
    else:
        try:
            code = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise _fail_usage(f"cannot read {file}: {exc.strerror}") from None
    lang = _language(language, None if str(file) == "-" else file)
    named = _collect_tools(tools)
    configs = _read_mcp_config(mcp_config)
    sandbox = _sandbox(lang, local=local, prestart=0)

    async def main() -> CodeModeToolResult:
        async with _all_tools(named, configs) as available:
            try:
                code_tool = create_code_mode(tools=available, sandbox=sandbox, timeout=timeout).tool
            except (ValueError, TypeError) as exc:
                raise _UsageError(str(exc)) from None
            async with sandbox:
                return await code_tool.execute({"code": code})

    try:
        result = asyncio.run(main())
    except _UsageError as exc:
        raise _fail_usage(str(exc)) from None
    _print_json(result.to_json(max_chars=None))  # for whoever runs it: the whole value
    raise typer.Exit(0 if result.success else 1)


@app.command()
def instructions(
    tools: ToolsOption = [],  # noqa: B006 - typer reads the default
    mcp_config: McpConfigOption = None,
    id: Annotated[
        str | None,
        typer.Option(help="The code tool's id (default: execute_typescript or execute_python)."),
    ] = None,
    language: LanguageOption = None,
    discovery: DiscoveryOption = "auto",
    pin: PinOption = [],  # noqa: B006 - typer reads the default
    token_budget: TokenBudgetOption = DEFAULT_TOKEN_BUDGET,
) -> None:
    """Print the instructions the model receives: the usage contract and a typed declaration
    for each tool, or (with discovery on) an outline of the catalog. How many tokens they
    cost, and why discovery is on or off, goes to stderr."""
    lang = _language(language)
    named = _collect_tools(tools)
    configs = _read_mcp_config(mcp_config)
    mode = _discovery_mode(discovery)

    def plan(available: dict[str, Tool]) -> tuple[InstructionsPlan, int]:
        try:
            chosen = plan_instructions(
                tools=available,
                id=id,
                language=lang,
                discovery=mode,
                pinned=pin,
                discovery_token_budget=token_budget,
            )
            full = chosen.tokens
            if full is None:  # discovery on: what declaring everything would have cost
                everything = plan_instructions(
                    tools=available, id=id, language=lang, discovery=False
                )
                full = everything.tokens or 0
        except (ValueError, TypeError) as exc:
            raise _UsageError(str(exc)) from None
        return chosen, full

    async def main() -> tuple[InstructionsPlan, int, int]:
        async with _all_tools(named, configs) as available:
            return (*plan(available), len(available))

    try:
        if configs is not None:
            chosen, full, count = asyncio.run(main())
        else:
            chosen, full = plan(named)
            count = len(named)
    except _UsageError as exc:
        raise _fail_usage(str(exc)) from None
    typer.echo(chosen.instructions)
    typer.echo(_instructions_report(chosen, full, count, mode), err=True)


def _instructions_report(
    plan: InstructionsPlan, full_tokens: int, count: int, mode: DiscoveryMode
) -> str:
    tokens = estimate_tokens(plan.instructions)
    tools = f"{count} tool" + ("" if count == 1 else "s")
    if plan.discovery:
        why = (
            f"the full declarations would be about {full_tokens:,} tokens, over the budget of "
            f"{plan.token_budget:,}"
            if mode == "auto"
            else f"--discovery on; the full declarations would be about {full_tokens:,} tokens"
        )
        return f"codemode: outline of {tools}: about {tokens:,} tokens (estimated); {why}"
    why = f"within the budget of {plan.token_budget:,}" if mode == "auto" else "--discovery off"
    return f"codemode: full declarations of {tools}: about {tokens:,} tokens (estimated); {why}"


@app.command()
def serve(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "--mcp-config",
            help='The upstream MCP servers: a servers.json ({"mcpServers": {...}}).',
        ),
    ] = None,
    tools: ToolsOption = [],  # noqa: B006 - typer reads the default
    http: Annotated[
        int | None,
        typer.Option(
            "--http",
            metavar="PORT",
            min=1,
            max=65535,
            help="Serve streamable HTTP at http://127.0.0.1:PORT/mcp instead of stdio.",
        ),
    ] = None,
    id: Annotated[
        str | None,
        typer.Option(help="The code tool's id (default: execute_typescript or execute_python)."),
    ] = None,
    timeout: Annotated[
        int, typer.Option(help="Timeout of one program, in milliseconds.")
    ] = DEFAULT_TIMEOUT_MS,
    language: LanguageOption = None,
    discovery: DiscoveryOption = "auto",
    pin: PinOption = [],  # noqa: B006 - typer reads the default
    token_budget: TokenBudgetOption = DEFAULT_TOKEN_BUDGET,
) -> None:
    """Serve one code tool over MCP whose programs call every tool of the upstream servers
    (and of --tools). Upstream servers that fail to start are reported on stderr and left
    out; the others keep working. With discovery on (by default when the catalog is large),
    search_tools and describe_tools are served beside the code tool."""
    if config is None and not tools:
        raise _fail_usage("serve needs --config servers.json (or --tools MODULE:ATTR)")
    lang = _language(language)
    named = _collect_tools(tools)
    configs = _read_mcp_config(config)
    mode = _discovery_mode(discovery)
    _require_mcp()
    from .integrations.mcp import serve_code_mode

    async def main() -> int:
        _cancel_on_sigterm()
        async with _all_tools(named, configs) as available:
            if not available:
                typer.echo("codemode: no tools to serve: no MCP server started", err=True)
                return 1
            try:
                code_mode = create_code_mode(
                    tools=available,
                    sandbox=_sandbox(lang),
                    timeout=timeout,
                    id=id,
                    discovery=mode,
                    pinned=pin,
                    discovery_token_budget=token_budget,
                )
            except (ValueError, TypeError) as exc:
                raise _UsageError(str(exc)) from None

            def ready(where: str) -> None:
                served = code_mode.tool.id
                if code_mode.tool.discovery:
                    names = ", ".join(t.id for t in code_mode.tool.discovery_tools)
                    served += f" (with {names}: the catalog is outlined)"
                typer.echo(
                    f"codemode: serving {served} on {where} over {len(available)} tools",
                    err=True,
                )

            if http is None:
                await serve_code_mode(code_mode, transport="stdio", on_ready=ready)
                return 0
            try:
                await serve_code_mode(
                    code_mode, transport="streamable-http", port=http, on_ready=ready
                )
            except OSError as exc:
                typer.echo(f"codemode: {exc.strerror or exc}", err=True)
                return 1
            return 0

    try:
        code = asyncio.run(main())
    except _UsageError as exc:
        raise _fail_usage(str(exc)) from None
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C or SIGTERM: a normal stop
        code = 0
    raise typer.Exit(code)


def _cancel_on_sigterm() -> None:
    """Stop on SIGTERM by unwinding, as on Ctrl-C, so that the upstream servers and sandbox
    processes (each in a session of its own) are closed rather than orphaned."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def main() -> None:
    """Console-script entry point."""
    app()
