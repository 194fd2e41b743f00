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
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ._code_mode import (
    DEFAULT_PAUSE_TTL,
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
from .stores import (
    ExecutionState,
    ExecutionStatus,
    ExecutionStoreError,
    PendingApproval,
    open_store,
)
from .stores._remote import not_found
from .stores._rules import when

T = TypeVar("T")

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
  codemode run program.ts --tools tools.py --store runs.db
  codemode executions list --store runs.db
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

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="CODEMODE_STORE",
        help="Where durable executions are kept, so programs can pause for approvals: an SQLite "
        "file (a path or sqlite:///path), redis://host:6379/0, or postgresql://user@host/db. "
        "Default: $CODEMODE_STORE.",
    ),
]

PauseTtlOption = Annotated[
    float,
    typer.Option(
        "--pause-ttl",
        metavar="SECONDS",
        min=1,
        help="How long a paused execution may wait for decisions (with --store).",
    ),
]

DEFAULT_PAUSE_TTL_S = DEFAULT_PAUSE_TTL.total_seconds()
EXIT_PAUSED = 3  # the program waits for approvals: not a success, not a failure

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
    store: StoreOption = None,
    pause_ttl: PauseTtlOption = DEFAULT_PAUSE_TTL_S,
) -> None:
    """Run FILE against the tools and print the result as JSON. Exit code 0 when the program
    succeeded, 1 when it failed, 2 on bad usage, 3 when it paused for approvals (with --store:
    see `codemode executions`)."""
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
        async with _all_tools(named, configs) as available, _opened(store) as opened:
            try:
                code_tool = create_code_mode(
                    tools=available,
                    sandbox=sandbox,
                    timeout=timeout,
                    store=opened,
                    pause_ttl=pause_ttl,
                ).tool
            except (ValueError, TypeError) as exc:
                raise _UsageError(str(exc)) from None
            async with sandbox:
                return await code_tool.execute({"code": code})

    try:
        result = asyncio.run(main())
    except _UsageError as exc:
        raise _fail_usage(str(exc)) from None
    _print_json(result.to_json(max_chars=None))  # for whoever runs it: the whole value
    raise typer.Exit(_exit_code(result))


def _exit_code(result: CodeModeToolResult) -> int:
    if result.status == "paused":
        return EXIT_PAUSED
    return 0 if result.success else 1


@asynccontextmanager
async def _opened(location: str | None) -> AsyncIterator[Any]:
    """The store at ``location`` (None: no store), closed after the block."""
    if location is None:
        yield None
        return
    try:
        store = open_store(location)
    except (ValueError, ImportError) as exc:
        raise _UsageError(f"--store {location}: {exc}") from None
    async with store:
        yield store


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
    store: StoreOption = None,
    pause_ttl: PauseTtlOption = DEFAULT_PAUSE_TTL_S,
    language: LanguageOption = None,
    discovery: DiscoveryOption = "auto",
    pin: PinOption = [],  # noqa: B006 - typer reads the default
    token_budget: TokenBudgetOption = DEFAULT_TOKEN_BUDGET,
) -> None:
    """Serve one code tool over MCP whose programs call every tool of the upstream servers
    (and of --tools). Upstream servers that fail to start are reported on stderr and left
    out; the others keep working. With discovery on (by default when the catalog is large),
    search_tools and describe_tools are served beside the code tool. Calls that need approval
    are asked of the client's user when the client supports elicitation; with --store, a call
    nobody decided pauses the program and a resume_execution tool continues it."""
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
        async with _all_tools(named, configs) as available, _opened(store) as opened:
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
                    store=opened,
                    pause_ttl=pause_ttl,
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


# -- executions: the operator's view of durable executions -------------------------------------
executions_app = typer.Typer(
    name="executions",
    help="""Look at and decide durable executions in a store (--store or $CODEMODE_STORE): what
waits for approval, approve or deny a call, resume a paused program.

\b
  codemode executions list --store runs.db
  codemode executions pending --store redis://localhost:6379/0
  codemode executions show EXECUTION_ID --store runs.db
  codemode executions approve EXECUTION_ID CALL_ID --store runs.db
  codemode executions deny EXECUTION_ID CALL_ID --reason "over budget" --store runs.db
  codemode executions resume EXECUTION_ID --store runs.db --tools tools.py

A decision is recorded at once; the program continues when it is resumed (resume needs the
tools the program paused with: the same --tools and --mcp-config as when it ran).
""",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
app.add_typer(executions_app)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _with_store(location: str | None, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(store)`` against the store at ``location``; a store's refusal (unknown
    execution, not paused, expired, a bad decision) is printed and exits 1."""
    if location is None:
        raise _fail_usage("name the store with --store (or $CODEMODE_STORE)")

    async def main() -> T:
        async with _opened(location) as store:
            return await work(store)

    try:
        return asyncio.run(main())
    except _UsageError as exc:
        raise _fail_usage(str(exc)) from None
    except ExecutionStoreError as exc:
        typer.echo(f"Error: {exc.message}", err=True)
        raise typer.Exit(1) from None


def _time(value: float | None) -> str:
    return "-" if value is None else when(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        typer.echo("  ".join(cells).rstrip())


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."


@executions_app.command("list")
def list_executions(
    store: StoreOption = None,
    status: Annotated[
        str | None,
        typer.Option(help="Only this status: running, paused, completed, failed or expired."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 100,
    as_json: JsonOption = False,
) -> None:
    """Executions, most recently updated first."""
    statuses = ("running", "paused", "completed", "failed", "expired")
    if status is not None and status not in statuses:
        raise _fail_usage(f"--status is one of {', '.join(statuses)}, not {status!r}")
    chosen: ExecutionStatus | None = status  # type: ignore[assignment]
    found = _with_store(store, lambda s: s.executions(status=chosen, limit=limit))
    if as_json:
        _print_json([_summary_json(e) for e in found])
        return
    if not found:
        typer.echo("No executions.")
        return
    _table(
        ["EXECUTION", "STATUS", "WAITING", "PASSES", "UPDATED", "EXPIRES"],
        [
            [
                e.execution_id,
                e.status + (" (abandoned)" if e.abandoned else ""),
                str(e.waiting),
                str(e.passes),
                _time(e.updated_at),
                _time(e.expires_at),
            ]
            for e in found
        ],
    )


def _summary_json(summary: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(summary)


@executions_app.command("pending")
def pending_calls(
    store: StoreOption = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The approval queue: every call waiting for a decision, oldest first."""
    queue: list[PendingApproval] = _with_store(store, lambda s: s.pending(limit=limit))
    if as_json:
        _print_json(
            [
                {
                    "execution_id": p.execution_id,
                    "code_mode_id": p.code_mode_id,
                    "call": p.call.model_dump(mode="json"),
                    "since": p.since,
                    "expires_at": p.expires_at,
                }
                for p in queue
            ]
        )
        return
    if not queue:
        typer.echo("Nothing waits for a decision.")
        return
    _table(
        ["EXECUTION", "CALL", "KIND", "TOOL", "INPUT", "EXPIRES"],
        [
            [
                p.execution_id,
                p.call.call_id,
                p.call.kind,
                p.call.tool_id,
                _short(p.call.input),
                _time(p.expires_at),
            ]
            for p in queue
        ],
    )


@executions_app.command("show")
def show_execution(
    execution_id: Annotated[str, typer.Argument(help="The execution's id.")],
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """One execution: its status, its program, and every call it made or waits on."""

    async def read(s: Any) -> ExecutionState:
        state: ExecutionState | None = await s.get(execution_id)
        if state is None:
            raise not_found(execution_id)
        return state

    state = _with_store(store, read)
    waiting = {call.call_id for call in state.waiting()}
    if as_json:
        _print_json(_state_json(state, waiting))
        return
    status = state.status + (" (abandoned: its host stopped)" if state.abandoned else "")
    typer.echo(f"execution  {state.execution_id}")
    typer.echo(f"tool       {state.code_mode_id}")
    typer.echo(f"status     {status}")
    typer.echo(f"created    {_time(state.created_at)}")
    typer.echo(f"updated    {_time(state.updated_at)}")
    if state.status == "paused":
        typer.echo(f"expires    {_time(state.expires_at)}")
    if state.finished_at is not None:
        typer.echo(f"finished   {_time(state.finished_at)}")
    typer.echo(f"passes     {state.passes}")
    typer.echo("")
    if state.calls:
        _table(
            ["STEP", "CALL", "TOOL", "STATE", "DECISION", "INPUT"],
            [
                [
                    str(call.step),
                    call.call_id,
                    call.tool_id or call.name,
                    _call_state(call, waiting),
                    _decision(call.approved, call.reason),
                    _short(call.input()),
                ]
                for call in state.calls
            ],
        )
    else:
        typer.echo("No tool calls.")
    if state.result is not None and state.status != "paused":
        typer.echo("")
        typer.echo("result")
        typer.echo(json.dumps(state.result, indent=2, ensure_ascii=False))
    typer.echo("")
    typer.echo("program")
    for line in state.code.splitlines():
        typer.echo(f"  {line}")


def _call_state(call: Any, waiting: set[str]) -> str:
    if call.call_id in waiting and call.state == "started":
        return "in_doubt"
    return str(call.state)


def _decision(approved: bool | None, reason: str | None) -> str:
    if approved is None:
        return "-"
    if approved:
        return "approved"
    return f"denied: {reason}" if reason else "denied"


def _state_json(state: ExecutionState, waiting: set[str]) -> dict[str, Any]:
    return {
        "execution_id": state.execution_id,
        "code_mode_id": state.code_mode_id,
        "status": state.status,
        "abandoned": state.abandoned,
        "created_at": state.created_at,
        "updated_at": state.updated_at,
        "expires_at": state.expires_at,
        "finished_at": state.finished_at,
        "passes": state.passes,
        "code": state.code,
        "result": state.result,
        "calls": [
            {
                "step": call.step,
                "call_id": call.call_id,
                "tool_id": call.tool_id or call.name,
                "input": call.input(),
                "line": call.line,
                "state": _call_state(call, waiting),
                "waiting": call.call_id in waiting,
                "approved": call.approved,
                "reason": call.reason,
                **({"value": call.value} if call.state == "ok" else {}),
                **(
                    {"error": {"name": call.error.name, "message": call.error.message}}
                    if call.error is not None
                    else {}
                ),
            }
            for call in state.calls
        ],
    }


def _decide(location: str | None, execution_id: str, call_id: str, decision: bool | str) -> None:
    decided = _with_store(location, lambda s: s.decide(execution_id, call_id, decision))
    what = "Approved" if decided.approved else "Denied"
    reason = f" ({decided.reason})" if decided.reason else ""
    typer.echo(
        f"{what} call {call_id} of execution {execution_id}: {decided.tool_id or decided.name} "
        f"{_short(decided.input())}{reason}. It takes effect when the execution is resumed: "
        f"codemode executions resume {execution_id} --tools ..."
    )


@executions_app.command("approve")
def approve_call(
    execution_id: Annotated[str, typer.Argument(help="The execution's id.")],
    call_id: Annotated[str, typer.Argument(help="The waiting call's id (see `pending`).")],
    store: StoreOption = None,
) -> None:
    """Approve a waiting call (a call in doubt: run it again)."""
    _decide(store, execution_id, call_id, True)


@executions_app.command("deny")
def deny_call(
    execution_id: Annotated[str, typer.Argument(help="The execution's id.")],
    call_id: Annotated[str, typer.Argument(help="The waiting call's id (see `pending`).")],
    reason: Annotated[
        str | None,
        typer.Option(help="Why; the program gets it with ApprovalDeniedError."),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Deny a waiting call: the program gets ApprovalDeniedError (with the reason) on resume."""
    _decide(store, execution_id, call_id, reason if reason is not None else False)


@executions_app.command("resume")
def resume_execution(
    execution_id: Annotated[str, typer.Argument(help="The execution's id.")],
    tools: ToolsOption = [],  # noqa: B006 - typer reads the default
    mcp_config: McpConfigOption = None,
    store: StoreOption = None,
    timeout: Annotated[int, typer.Option(help="Timeout in milliseconds.")] = DEFAULT_TIMEOUT_MS,
    local: Annotated[
        bool, typer.Option("--local", help="Use LocalSandbox (host privileges; trusted code only).")
    ] = False,
    language: LanguageOption = None,
) -> None:
    """Continue a paused execution with the decisions recorded for it (approve, deny), with the
    tools it paused with, and print its result as JSON: exit 0 when it completed, 1 when it
    failed or cannot resume, 3 when it paused again (calls still undecided). The program's
    language is --language, else the one its code tool is named after (execute_python)."""
    named = _collect_tools(tools)
    configs = _read_mcp_config(mcp_config)
    if store is None:
        raise _fail_usage("name the store with --store (or $CODEMODE_STORE)")

    async def main() -> CodeModeToolResult:
        async with AsyncExitStack() as stack:
            opened = await stack.enter_async_context(_opened(store))
            state = await opened.get(execution_id)
            code_mode_id = state.code_mode_id if state is not None else None
            sandbox = _sandbox(_resumed_language(language, code_mode_id), local=local, prestart=0)
            available = await stack.enter_async_context(_all_tools(named, configs))
            try:
                code_tool = create_code_mode(
                    tools=available, sandbox=sandbox, timeout=timeout, store=opened, id=code_mode_id
                ).tool
            except (ValueError, TypeError) as exc:
                raise _UsageError(str(exc)) from None
            async with sandbox:
                return await code_tool.resume(execution_id)
        raise AssertionError("unreachable")

    try:
        result = asyncio.run(main())
    except _UsageError as exc:
        raise _fail_usage(str(exc)) from None
    _print_json(result.to_json(max_chars=None))  # for whoever runs it: the whole value
    raise typer.Exit(_exit_code(result))


def _resumed_language(name: str | None, code_mode_id: str | None) -> Language:
    """--language, else the language whose default code tool ran the execution, else
    TypeScript."""
    if name is None:
        for known in known_languages():
            if get_language(known).default_tool_id == code_mode_id:
                return get_language(known)
    return _language(name)


@executions_app.command("prune")
def prune_executions(
    store: StoreOption = None,
    keep_finished: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            min=0.001,
            help="Delete finished executions older than this (default: the store's, 7 days).",
        ),
    ] = None,
) -> None:
    """Mark executions past their expiry expired, and delete finished ones past retention."""
    report = _with_store(store, lambda s: s.prune(keep_finished=keep_finished))
    typer.echo(f"Expired {report.expired}, deleted {report.deleted}.")


def _cancel_on_sigterm() -> None:
    """Stop on SIGTERM by unwinding, as on Ctrl-C, so that the upstream servers and sandbox
    processes (each in a session of its own) are closed rather than orphaned."""
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def main() -> None:
    """Console-script entry point."""
    app()
