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

from ._code_mode import DEFAULT_TIMEOUT_MS, create_code_mode, create_code_mode_instructions
from ._loading import ToolsSpecError, load_tools
from ._result import CodeModeToolResult
from ._tools import Tool
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


LanguageOption = Annotated[
    str | None,
    typer.Option(
        "--language",
        "-l",
        help="The program language: typescript (Deno) or python (Monty). "
        "Default: typescript, or what the program file's extension says for `run`.",
    ),
]


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
    _print_json(result.to_json())
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
) -> None:
    """Print the instructions the model receives: the usage contract and a typed declaration
    for each tool."""
    lang = _language(language)
    named = _collect_tools(tools)
    configs = _read_mcp_config(mcp_config)

    async def main() -> str:
        async with _all_tools(named, configs) as available:
            try:
                return create_code_mode_instructions(tools=available, id=id, language=lang)
            except (ValueError, TypeError) as exc:
                raise _UsageError(str(exc)) from None

    try:
        text = asyncio.run(main()) if configs is not None else _sync_instructions(named, id, lang)
    except _UsageError as exc:
        raise _fail_usage(str(exc)) from None
    typer.echo(text)


def _sync_instructions(named: dict[str, Tool], id: str | None, language: Language) -> str:
    try:
        return create_code_mode_instructions(tools=named, id=id, language=language)
    except (ValueError, TypeError) as exc:
        raise _UsageError(str(exc)) from None


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
) -> None:
    """Serve one code tool over MCP whose programs call every tool of the upstream servers
    (and of --tools). Upstream servers that fail to start are reported on stderr and left
    out; the others keep working."""
    if config is None and not tools:
        raise _fail_usage("serve needs --config servers.json (or --tools MODULE:ATTR)")
    lang = _language(language)
    named = _collect_tools(tools)
    configs = _read_mcp_config(config)
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
                    tools=available, sandbox=_sandbox(lang), timeout=timeout, id=id
                )
            except (ValueError, TypeError) as exc:
                raise _UsageError(str(exc)) from None

            def ready(where: str) -> None:
                typer.echo(
                    f"codemode: serving {code_mode.tool.id} on {where} over {len(available)} tools",
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
