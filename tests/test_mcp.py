"""MCP both ways, with real parts: test MCP servers run as subprocesses, the SDK's own client
talks to ``codemode serve`` over stdio and streamable HTTP, and nothing is mocked."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx2
import psutil
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from codemode import CodeModeToolResult
from codemode.integrations.mcp import (
    HttpServerConfig,
    McpConfigError,
    McpToolError,
    StdioServerConfig,
    connect_mcp_servers,
    load_mcp_config,
    parse_mcp_config,
    tools_from_mcp,
)

SERVERS = Path(__file__).parent / "mcp_servers"
CODEMODE = str(Path(sys.executable).with_name("codemode"))


def stdio_config(script: str, **env: str) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(SERVERS / script)], "env": env}


def write_config(directory: Path, servers: dict[str, Any]) -> Path:
    path = directory / "servers.json"
    path.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited before listening"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """Every test ends every process it started."""
    yield
    deadline = time.monotonic() + 10
    while (children := psutil.Process().children(recursive=True)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [c.cmdline() for c in children if c.is_running()] == []


@asynccontextmanager
async def session_to(script: str, **env: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=[str(SERVERS / script)], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def serve(config: Path, errlog: Any, *options: str) -> AsyncIterator[ClientSession]:
    """A real MCP client connected to ``codemode serve --config CONFIG`` over stdio."""
    params = StdioServerParameters(
        command=CODEMODE, args=["serve", "--config", str(config), *options]
    )
    async with (
        stdio_client(params, errlog=errlog) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        # codemode serve, its upstream servers and its sandbox processes (each in a session of
        # its own, so they would survive as orphans if codemode serve left them behind)
        descendants = psutil.Process().children(recursive=True)
        yield session
    _, alive = psutil.wait_procs(descendants, timeout=10)
    assert alive == []


async def execute(session: ClientSession, code: str) -> dict[str, Any]:
    """Call execute_typescript; check the text and structured forms agree and return it."""
    result = await session.call_tool("execute_typescript", {"code": code})
    assert result.structured_content is not None
    assert len(result.content) == 1
    assert json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]
    assert result.is_error is (not result.structured_content["success"])
    return dict(result.structured_content)


# -- consuming: tools_from_mcp -----------------------------------------------------------------


async def test_tools_from_mcp_turns_each_mcp_tool_into_a_tool() -> None:
    async with session_to("weather.py") as session:
        tools = {t.id: t for t in await tools_from_mcp(session, prefix="wx")}
        assert sorted(tools) == ["wx_crash", "wx_get_forecast"]
        forecast = tools["wx_get_forecast"]
        assert forecast.description == "Tomorrow's forecast for a city."
        assert forecast.input_schema["required"] == ["city"]
        assert forecast.output_schema is not None
        assert forecast.output_schema["required"] == ["city", "high_c", "conditions"]
        # structuredContent is what the program receives
        assert await forecast.execute({"city": "Oslo"}) == {
            "city": "Oslo",
            "high_c": 9,
            "conditions": "rain",
        }
        # an isError result raises with the server's own message
        with pytest.raises(McpToolError) as raised:
            await forecast.execute({"city": "Atlantis"})
        assert str(raised.value) == "Error executing tool get_forecast: unknown city: Atlantis"


async def test_tools_from_mcp_unwraps_text_results() -> None:
    async with session_to("notes.py", NOTES_OWNER="Ada") as session:
        tools = {t.id: t for t in await tools_from_mcp(session)}
        assert sorted(tools) == ["note-titles", "owner", "search_notes"]
        # text that is JSON arrives parsed
        assert await tools["search_notes"].execute({"tag": "todo"}) == [
            {"id": 2, "title": "Book hotel in Oslo", "tags": ["travel", "todo"]}
        ]
        # text that is not JSON arrives as the string
        assert await tools["owner"].execute({}) == "Notes of Ada"
        # several text parts arrive as an array, one element per part
        assert await tools["note-titles"].execute({}) == [
            "Pack umbrella",
            "Book hotel in Oslo",
            "Water the plants",
        ]


# -- consuming: servers from a config ----------------------------------------------------------


async def test_connect_mcp_servers_keeps_the_servers_that_start(tmp_path: Path) -> None:
    weather_port = free_port()
    weather_http = subprocess.Popen(
        [sys.executable, str(SERVERS / "weather.py"), "--http", str(weather_port)],
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(weather_port, weather_http)
        config = write_config(
            tmp_path,
            {
                "notes": stdio_config("notes.py", NOTES_OWNER="Grace"),
                "remote": {"url": f"http://127.0.0.1:{weather_port}/mcp"},
                "broken": stdio_config("broken.py"),
                "missing": {"command": "codemode-no-such-command"},
                "down": {"url": f"http://127.0.0.1:{free_port()}/mcp"},
            },
        )
        reports: list[str] = []
        async with connect_mcp_servers(config, report=reports.append) as servers:
            assert sorted(t.id for t in servers.tools) == [
                "notes_note-titles",
                "notes_owner",
                "notes_search_notes",
                "remote_crash",
                "remote_get_forecast",
            ]
            tools = {t.id: t for t in servers.tools}
            assert await tools["notes_owner"].execute({}) == "Notes of Grace"
            assert await tools["remote_get_forecast"].execute({"city": "Lima"}) == {
                "city": "Lima",
                "high_c": 18,
                "conditions": "cloudy",
            }
            failures = servers.failures
        assert sorted(failures) == ["broken", "down", "missing"]
        assert failures["broken"] == (
            "it exited before completing the MCP handshake; its last stderr output:\n"
            "broken: NOTES_API_TOKEN is not set"
        )
        assert (
            failures["missing"]
            == "cannot run 'codemode-no-such-command' (No such file or directory)"
        )
        assert failures["down"].startswith("cannot connect to http://127.0.0.1:")
        assert sorted(reports) == sorted(
            f"MCP server {name!r} failed to start: {failures[name]}" for name in failures
        )
    finally:
        weather_http.terminate()
        weather_http.wait(timeout=10)


async def test_a_server_that_dies_is_reported_and_its_tools_say_so() -> None:
    reports: list[str] = []
    configs = [
        StdioServerConfig("weather", sys.executable, (str(SERVERS / "weather.py"),)),
        StdioServerConfig("notes", sys.executable, (str(SERVERS / "notes.py"),)),
    ]
    async with connect_mcp_servers(configs, report=reports.append) as servers:
        tools = {t.id: t for t in servers.tools}
        with pytest.raises(Exception) as raised:
            await tools["weather_crash"].execute({})
        assert type(raised.value).__name__ == "McpConnectionError"
        assert str(raised.value) == (
            "MCP server 'weather' stopped during the call to crash (its process exited)"
        )
        with pytest.raises(Exception) as raised:
            await tools["weather_get_forecast"].execute({"city": "Paris"})
        assert str(raised.value) == "MCP server 'weather' is not running (its process exited)"
        assert await tools["notes_owner"].execute({}) == "Notes of nobody"
        assert servers.failures == {
            "weather": "its process exited; its last stderr output:\nweather: crashing on purpose"
        }
        assert servers.connections["notes"].running
        assert not servers.connections["weather"].running
    assert reports == [
        "MCP server 'weather' stopped: its process exited; its last stderr output:\n"
        "weather: crashing on purpose"
    ]


async def test_a_server_that_never_answers_times_out() -> None:
    silent = StdioServerConfig("silent", sys.executable, ("-c", "import time; time.sleep(60)"))
    reports: list[str] = []
    async with connect_mcp_servers([silent], startup_timeout=0.5, report=reports.append) as servers:
        assert servers.tools == []
        assert servers.failures == {"silent": "it did not answer the MCP handshake within 0.5 s"}
    assert reports == [
        "MCP server 'silent' failed to start: it did not answer the MCP handshake within 0.5 s"
    ]


async def test_connect_mcp_servers_lets_the_callers_exception_through() -> None:
    configs = [StdioServerConfig("notes", sys.executable, (str(SERVERS / "notes.py"),))]
    with pytest.raises(KeyError, match="mine"):
        async with connect_mcp_servers(configs, report=None):
            raise KeyError("mine")


# -- serving: codemode serve, driven by the SDK's client -----------------------------------------


@pytest.fixture
def serve_config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path,
        {
            "weather": stdio_config("weather.py"),
            "notes": stdio_config("notes.py", NOTES_OWNER="Ada"),
            "broken": stdio_config("broken.py"),
        },
    )


async def test_serve_runs_one_program_across_two_servers(serve_config: Path) -> None:
    with tempfile.TemporaryFile("w+") as errlog:
        async with serve(serve_config, errlog) as session:
            listed = (await session.list_tools()).tools
            assert [t.name for t in listed] == ["execute_typescript"]
            description = listed[0].description or ""
            assert "declare function external_weather_get_forecast(input: {" in description
            assert "declare function external_notes_search_notes(input: {" in description
            assert "external_broken" not in description
            assert listed[0].input_schema["required"] == ["code"]

            outcome = await execute(
                session,
                """
                const [paris, oslo, trips] = await Promise.all([
                  external_weather_get_forecast({ city: "Paris" }),
                  external_weather_get_forecast({ city: "Oslo" }),
                  external_notes_search_notes({ tag: "travel" }),
                ])
                console.log(`${trips.length} travel notes`)
                return {
                  warmest: paris.high_c > oslo.high_c ? paris.city : oslo.city,
                  spread: paris.high_c - oslo.high_c,
                  todo: trips.map(n => n.title),
                  owner: await external_notes_owner({}),
                }
                """,
            )
            # null is a result (structured content and text alike); nothing is no result
            returned_null = await execute(session, "return null")
            returned_nothing = await execute(session, "const x = 1")
            output_schema = listed[0].output_schema
        errlog.seek(0)
        stderr = errlog.read()
    assert returned_null == {"success": True, "result": None, "logs": []}
    assert returned_nothing == {"success": True, "logs": []}
    assert output_schema == CodeModeToolResult.model_json_schema(mode="serialization")
    assert outcome == {
        "success": True,
        "result": {
            "warmest": "Paris",
            "spread": 12,
            "todo": ["Pack umbrella", "Book hotel in Oslo"],
            "owner": "Notes of Ada",
        },
        "logs": ["2 travel notes"],
    }
    assert (
        "codemode: MCP server 'broken' failed to start: it exited before completing the MCP "
        "handshake; its last stderr output:\nbroken: NOTES_API_TOKEN is not set\n"
    ) in stderr


async def test_serve_reports_upstream_errors_to_the_program(serve_config: Path) -> None:
    with tempfile.TemporaryFile("w+") as errlog:
        async with serve(serve_config, errlog) as session:
            caught = await execute(
                session,
                """
                const attempt = async (call) => {
                  try { return { value: await call() } }
                  catch (e) { return { name: e.name, message: e.message } }
                }
                return {
                  toolError: await attempt(() => external_weather_get_forecast({ city: "Rome" })),
                  invalid: await attempt(() => external_weather_get_forecast({})),
                  crash: await attempt(() => external_weather_crash({})),
                  afterCrash: await attempt(() => external_weather_get_forecast({ city: "Paris" })),
                  otherServer: await attempt(() => external_notes_owner({})),
                }
                """,
            )
            uncaught = await execute(
                session, 'const f = await external_weather_get_forecast({ city: "Lima" })\nreturn f'
            )
        errlog.seek(0)
        stderr = errlog.read()
    assert caught == {
        "success": True,
        "result": {
            "toolError": {
                "name": "McpToolError",
                "message": "Error executing tool get_forecast: unknown city: Rome",
            },
            "invalid": {
                "name": "ValidationError",
                "message": "Tool input validation failed for weather_get_forecast:\n"
                "- (root): 'city' is a required property\n"
                "Expected: external_weather_get_forecast(input: { city: string; })",
            },
            "crash": {
                "name": "McpConnectionError",
                "message": "MCP server 'weather' stopped during the call to crash "
                "(its process exited)",
            },
            "afterCrash": {
                "name": "McpConnectionError",
                "message": "MCP server 'weather' is not running (its process exited)",
            },
            "otherServer": {"value": "Notes of Ada"},
        },
        "logs": [],
    }
    assert uncaught == {
        "success": False,
        "logs": [],
        "error": {
            "name": "McpConnectionError",
            "message": "MCP server 'weather' is not running (its process exited)",
            "line": 1,
        },
    }
    assert (
        "codemode: MCP server 'weather' stopped: its process exited; its last stderr output:\n"
        "weather: crashing on purpose\n"
    ) in stderr


async def test_gateway_relays_upstream_progress_and_logs_to_its_client(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"jobs": stdio_config("progress.py")})
    progress: list[tuple[float, float | None, str | None]] = []
    logs: list[tuple[str, str | None, Any]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async def on_log(params: Any) -> None:
        logs.append((params.level, params.logger, params.data))

    params = StdioServerParameters(command=CODEMODE, args=["serve", "--config", str(config)])
    with tempfile.TemporaryFile("w+") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, logging_callback=on_log) as session,
        ):
            await session.initialize()
            result = await session.call_tool(
                "execute_typescript",
                {"code": "return await external_jobs_count({ to: 2 })"},
                progress_callback=on_progress,
            )
    assert result.structured_content == {"success": True, "result": {"result": 2}, "logs": []}
    # one progress value per upstream notification, always growing, saying which call it was
    assert progress == [
        (1, None, "jobs/count: step 1"),
        (2, None, "jobs/count: step 2"),
    ]
    assert logs == [("info", "jobs", "counting to 2")]


async def test_serve_over_streamable_http_until_sigterm(serve_config: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [CODEMODE, "serve", "--config", str(serve_config), "--http", str(port)],
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, server)
        async with (
            streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            assert [t.name for t in (await session.list_tools()).tools] == ["execute_typescript"]
            outcome = await execute(
                session,
                'const f = await external_weather_get_forecast({ city: "Lima" })\n'
                "return `${f.city}: ${f.conditions}`",
            )
        assert outcome == {"success": True, "result": "Lima: cloudy", "logs": []}
        # its upstream servers and sandbox processes run in their own sessions: they must end
        # with it, not linger as orphans
        descendants = psutil.Process(server.pid).children(recursive=True)
        assert len(descendants) >= 3
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=20)
    assert server.returncode == 0
    assert stderr.decode() == (
        "codemode: MCP server 'broken' failed to start: it exited before completing the MCP "
        "handshake; its last stderr output:\nbroken: NOTES_API_TOKEN is not set\n"
        f"codemode: serving execute_typescript on http://127.0.0.1:{port}/mcp over 5 tools\n"
    )
    _, alive = psutil.wait_procs(descendants, timeout=10)
    assert alive == []


class _DropFirstCallStream(httpx2.AsyncBaseTransport):
    """A real HTTP transport that, like a flaky network, ends the first tools/call stream right
    after its first SSE event, and records that event and the reconnections."""

    def __init__(self) -> None:
        self.inner = httpx2.AsyncHTTPTransport()
        self.dropped_after: str | None = None  # the first event of the stream it cut
        self.resumed_from: list[str] = []  # Last-Event-ID of each reconnection

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if "last-event-id" in request.headers:
            self.resumed_from.append(request.headers["last-event-id"])
        response = await self.inner.handle_async_request(request)
        is_sse = response.headers.get("content-type", "").startswith("text/event-stream")
        is_call = request.method == "POST" and b'"tools/call"' in request.content
        if is_sse and is_call and self.dropped_after is None:
            self.dropped_after = ""
            response.stream = _CutAfterFirstEvent(response.stream, self)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class _CutAfterFirstEvent(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, owner: _DropFirstCallStream) -> None:
        self.inner, self.owner = inner, owner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        received = b""
        async for chunk in self.inner:
            received += chunk
            text = received.replace(b"\r\n", b"\n")
            end = text.find(b"\n\n")
            if end >= 0:  # one whole event: pass it on, then the connection "drops"
                self.owner.dropped_after = text[: end + 2].decode()
                yield text[: end + 2]
                return

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_http_streams_are_resumable_with_a_priming_event_and_retry(tmp_path: Path) -> None:
    port = free_port()
    shop = Path(__file__).parent.parent / "examples" / "shop.py"
    server = subprocess.Popen(
        [CODEMODE, "serve", "--tools", str(shop), "--http", str(port)], stderr=subprocess.PIPE
    )
    transport = _DropFirstCallStream()
    try:
        wait_for_port(port, server)
        async with (
            httpx2.AsyncClient(transport=transport, timeout=30) as http,
            streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http) as streams,
            ClientSession(*streams) as session,
        ):
            await session.initialize()
            outcome = await execute(
                session, "await new Promise((r) => setTimeout(r, 300))\nreturn 42"
            )
    finally:
        server.terminate()
        server.communicate(timeout=20)
    assert outcome == {"success": True, "result": 42, "logs": []}
    assert transport.dropped_after  # the call's stream was cut after its first event
    fields = dict(line.split(":", 1) for line in transport.dropped_after.strip().split("\n"))
    assert {k: v.strip() for k, v in fields.items() if k != "id"} == {"retry": "1000", "data": ""}
    assert len(fields["id"].strip()) >= 16  # an id nobody can guess
    # the SDK client lost the stream after the priming event, reconnected from its id, and
    # still received the program's result
    assert transport.resumed_from == [fields["id"].strip()]


def test_serve_over_stdio_stops_on_sigterm(serve_config: Path) -> None:
    server = subprocess.Popen(
        [CODEMODE, "serve", "--config", str(serve_config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert server.stderr is not None
        lines = [server.stderr.readline(), server.stderr.readline(), server.stderr.readline()]
        assert lines[-1] == b"codemode: serving execute_typescript on stdio over 5 tools\n"
        deadline = time.monotonic() + 20
        while True:  # two upstream servers, then the sandbox's warm process(es)
            descendants = psutil.Process(server.pid).children(recursive=True)
            if len(descendants) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert len(descendants) >= 3
    finally:
        server.terminate()
        stdout, _ = server.communicate(timeout=20)
    assert (server.returncode, stdout) == (0, b"")
    _, alive = psutil.wait_procs(descendants, timeout=10)
    assert alive == []


# -- servers.json --------------------------------------------------------------------------------


def test_load_mcp_config_reads_stdio_and_http_servers(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "git": {"command": "uvx", "args": ["mcp-server-git"], "env": {"A": "1"}},
            "docs": {"type": "http", "url": "https://docs.example/mcp", "headers": {"X": "y"}},
            "old": {"command": "old", "disabled": True},
            "quiet": {"command": "quiet", "autoApprove": ["x"]},
        },
    )
    assert load_mcp_config(config) == [
        StdioServerConfig("git", "uvx", ("mcp-server-git",), {"A": "1"}),
        HttpServerConfig("docs", "https://docs.example/mcp", {"X": "y"}),
        StdioServerConfig("quiet", "quiet"),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], 'servers.json: expected a JSON object like {"mcpServers": {...}}, got an array'),
        ({"servers": {}}, "servers.json: mcpServers is missing"),
        (
            {"mcpServers": []},
            "servers.json: mcpServers must be an object of server name -> server, got an array",
        ),
        ({"mcpServers": {}}, "servers.json: mcpServers lists no (enabled) servers"),
        (
            {"mcpServers": {"git": "uvx"}},
            "servers.json: mcpServers.git must be an object, got a string",
        ),
        (
            {"mcpServers": {"git": {}}},
            "servers.json: mcpServers.git needs a command (a server "
            "started over stdio) or a url (a streamable HTTP server)",
        ),
        (
            {"mcpServers": {"git": {"command": 7}}},
            "servers.json: mcpServers.git.command must be a string, got a number",
        ),
        (
            {"mcpServers": {"git": {"command": "uvx", "args": "x"}}},
            "servers.json: mcpServers.git.args must be an array of strings, got a string",
        ),
        (
            {"mcpServers": {"git": {"command": "uvx", "args": ["a", 1]}}},
            "servers.json: mcpServers.git.args[1] must be a string, got a number",
        ),
        (
            {"mcpServers": {"git": {"command": "uvx", "env": {"TOKEN": 1}}}},
            "servers.json: mcpServers.git.env.TOKEN must be a string, got a number",
        ),
        (
            {"mcpServers": {"git": {"command": "uvx", "url": "http://x"}}},
            "servers.json: mcpServers.git has both command and url; keep one",
        ),
        (
            {"mcpServers": {"docs": {"url": "ftp://x"}}},
            "servers.json: mcpServers.docs.url must start with http:// or https://",
        ),
        (
            {"mcpServers": {"docs": {"type": "sse", "url": "http://x/sse"}}},
            "servers.json: "
            "mcpServers.docs.type is sse, which codemode does not support; use a server's "
            "streamable HTTP endpoint (type http)",
        ),
    ],
)
def test_invalid_configs_name_the_file_and_the_key(data: Any, message: str) -> None:
    with pytest.raises(McpConfigError) as raised:
        parse_mcp_config(data, source="servers.json")
    assert str(raised.value).startswith(message)


def test_unreadable_configs_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "servers.json"
    bad.write_text('{"mcpServers": {,}}', encoding="utf-8")
    with pytest.raises(McpConfigError) as raised:
        load_mcp_config(bad)
    assert str(raised.value) == (
        f"{bad}: invalid JSON at line 1, column 17: "
        "Expecting property name enclosed in double quotes"
    )
    with pytest.raises(McpConfigError) as raised:
        load_mcp_config(tmp_path / "nope.json")
    assert (
        str(raised.value)
        == f"{tmp_path / 'nope.json'}: cannot read the file (No such file or directory)"
    )


def test_importing_codemode_does_not_import_mcp() -> None:
    code = "import sys, codemode; print('mcp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "False\n"


async def test_serve_runs_python_programs_with_language_python(serve_config: Path) -> None:
    with tempfile.TemporaryFile("w+") as errlog:
        async with serve(serve_config, errlog, "--language", "python") as session:
            listed = (await session.list_tools()).tools
            assert [t.name for t in listed] == ["execute_python"]
            description = listed[0].description or ""
            assert "async def external_weather_get_forecast(*, city: str)" in description
            result = await session.call_tool(
                "execute_python",
                {
                    "code": "import asyncio\n"
                    "paris, oslo = await asyncio.gather(\n"
                    "    external_weather_get_forecast(city='Paris'),\n"
                    "    external_weather_get_forecast(city='Oslo'),\n"
                    ")\n"
                    "print(oslo['conditions'])\n"
                    "paris['high_c'] - oslo['high_c']"
                },
            )
    assert result.structured_content == {"success": True, "result": 12, "logs": ["rain"]}


INSPECTOR = "@modelcontextprotocol/inspector@2.12.0"


@pytest.mark.slow
def test_the_official_inspector_lints_the_served_tool_clean(tmp_path: Path) -> None:
    """The MCP Inspector's --strict schema lint reports nothing (needs npm and the registry;
    installs the Inspector into a cache directory on first use)."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed")
    cache = Path.home() / ".cache" / "codemode-test" / "inspector"
    inspector = cache / "node_modules" / ".bin" / "mcp-inspector"
    if not inspector.exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([npm, "install", "--silent", "--prefix", str(cache), INSPECTOR], check=True)
    shop = Path(__file__).parent.parent / "examples" / "shop.py"
    done = subprocess.run(
        [
            str(inspector),
            "--cli",
            "--method",
            "tools/list",
            "--strict",
            "--",
            CODEMODE,
            "serve",
            "--tools",
            str(shop),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tools"][0]["name"] == "execute_typescript"
    assert "warning" not in done.stderr.lower() and "error" not in done.stderr.lower()
