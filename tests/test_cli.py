"""The ``codemode`` command, run as a user runs it: a real subprocess, real tools, real MCP
servers and the real Deno sandbox."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent.parent
SERVERS = Path(__file__).parent / "mcp_servers"
CODEMODE = str(Path(sys.executable).with_name("codemode"))
SHOP = str(ROOT / "examples" / "shop.py")


def codemode(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CODEMODE, *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def write_config(directory: Path, servers: dict[str, Any]) -> Path:
    path = directory / "servers.json"
    path.write_text(json.dumps({"mcpServers": servers}), encoding="utf-8")
    return path


def server(script: str, **env: str) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(SERVERS / script)], "env": env}


def program(directory: Path, code: str) -> str:
    path = directory / "program.ts"
    path.write_text(code, encoding="utf-8")
    return str(path)


# -- help ----------------------------------------------------------------------------------------


def test_help_shows_examples() -> None:
    done = codemode("--help")
    assert done.returncode == 0
    for line in [
        "codemode run examples/shop.ts --tools examples/shop.py",
        "codemode run program.ts --mcp-config servers.json",
        "codemode instructions --mcp-config servers.json",
        "codemode serve --config servers.json --http 8765",
    ]:
        assert f"    {line}\n" in done.stdout


# -- run -----------------------------------------------------------------------------------------


def test_run_prints_the_result_and_exits_0() -> None:
    done = codemode("run", "examples/shop.ts", "--tools", "examples/shop.py")
    assert (done.returncode, done.stderr) == (0, "")
    # not a terminal: one compact line
    assert done.stdout.count("\n") == 1
    assert json.loads(done.stdout) == {
        "success": True,
        "result": [
            {"name": "Espresso machine", "sales": 1520, "averageRating": 4.5},
            {"name": "Burr grinder", "sales": 1310, "averageRating": 3.67},
            {"name": "Milk frother", "sales": 990, "averageRating": 3.5},
            {"name": "Pour-over kettle", "sales": 870, "averageRating": 4.67},
            {"name": "Coffee scale", "sales": 640, "averageRating": 4},
        ],
        "logs": [],
    }


def test_run_reads_stdin_and_exits_1_when_the_program_fails() -> None:
    done = codemode(
        "run", "-", "--tools", SHOP, stdin='console.log("looking")\nthrow new Error("no stock")\n'
    )
    assert done.returncode == 1
    assert json.loads(done.stdout) == {
        "success": False,
        "logs": ["looking"],
        "error": {"message": "no stock", "name": "Error", "line": 2},
    }


def test_run_with_bad_tools_exits_2() -> None:
    done = codemode("run", "examples/shop.ts", "--tools", "examples/nope.py")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "Error: --tools examples/nope.py: no such file\n"


def test_run_calls_python_tools_and_mcp_servers_together(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {"weather": server("weather.py"), "notes": server("notes.py", NOTES_OWNER="Lin")},
    )
    code = program(
        tmp_path,
        """
        const [top, forecast, owner] = await Promise.all([
          external_getTopProducts({ limit: 1 }),
          external_weather_get_forecast({ city: "Oslo" }),
          external_notes_owner({}),
        ])
        return { best: top.products[0].name, oslo: forecast.high_c, owner }
        """,
    )
    done = codemode("run", code, "--tools", SHOP, "--mcp-config", str(config))
    assert (done.returncode, done.stderr) == (0, "")
    assert json.loads(done.stdout) == {
        "success": True,
        "result": {"best": "Espresso machine", "oslo": 9, "owner": "Notes of Lin"},
        "logs": [],
    }


def test_run_reports_a_server_that_fails_to_start_and_uses_the_others(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"broken": server("broken.py"), "notes": server("notes.py")})
    code = program(tmp_path, "return await external_notes_search_notes({ tag: 'home' })")
    done = codemode("run", code, "--mcp-config", str(config))
    assert done.returncode == 0
    assert json.loads(done.stdout)["result"] == [
        {"id": 3, "title": "Water the plants", "tags": ["home"]}
    ]
    assert done.stderr == (
        "codemode: MCP server 'broken' failed to start: it exited before completing the MCP "
        "handshake; its last stderr output:\nbroken: NOTES_API_TOKEN is not set\n"
    )


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ({"git": {"command": 7}}, "mcpServers.git.command must be a string, got a number"),
        (
            {"git": {"command": "uvx", "args": "--x"}},
            "mcpServers.git.args must be an array of strings, got a string",
        ),
    ],
)
def test_run_with_an_invalid_config_exits_2_naming_file_and_key(
    tmp_path: Path, servers: dict[str, Any], message: str
) -> None:
    config = write_config(tmp_path, servers)
    done = codemode("run", "examples/shop.ts", "--mcp-config", str(config))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == f"Error: {config}: {message}\n"


def test_run_with_a_missing_config_exits_2(tmp_path: Path) -> None:
    done = codemode("run", "examples/shop.ts", "--mcp-config", str(tmp_path / "servers.json"))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"Error: {tmp_path / 'servers.json'}: cannot read the file (No such file or directory)\n"
    )


# -- instructions --------------------------------------------------------------------------------


def test_instructions_for_python_tools() -> None:
    done = codemode("instructions", "--tools", "examples/shop.py", "--id", "shop_code")
    assert done.returncode == 0
    assert done.stderr == (
        "codemode: full declarations of 2 tools: about 391 tokens (estimated); "
        "within the budget of 6,000\n"
    )
    assert done.stdout.startswith("You have a tool named `shop_code`")
    assert "declare function external_getTopProducts(input: {" in done.stdout
    assert "declare function external_getProductRatings(input: {" in done.stdout


def test_instructions_for_python_tools_and_mcp_servers(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"weather": server("weather.py")})
    done = codemode("instructions", "--tools", SHOP, "--mcp-config", str(config))
    assert done.returncode == 0
    assert done.stderr == (
        "codemode: full declarations of 4 tools: about 481 tokens (estimated); "
        "within the budget of 6,000\n"
    )
    assert "declare function external_getTopProducts(input: {" in done.stdout
    assert "/** Tomorrow's forecast for a city. */\n" in done.stdout
    assert "declare function external_weather_get_forecast(input: {\n  city: string;\n}" in (
        done.stdout
    )


# -- serve ---------------------------------------------------------------------------------------


def test_serve_without_servers_exits_2() -> None:
    done = codemode("serve")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "Error: serve needs --config servers.json (or --tools MODULE:ATTR)\n"


def test_serve_with_an_invalid_config_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"docs": {"url": "ftp://docs"}})
    done = codemode("serve", "--config", str(config))
    assert (done.returncode, done.stdout) == (2, "")
    assert (
        done.stderr == f"Error: {config}: mcpServers.docs.url must start with http:// or https://\n"
    )


def test_serve_exits_1_when_no_server_starts(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"broken": server("broken.py")})
    done = codemode("serve", "--config", str(config))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (
        "codemode: MCP server 'broken' failed to start: it exited before completing the MCP "
        "handshake; its last stderr output:\nbroken: NOTES_API_TOKEN is not set\n"
        "codemode: no tools to serve: no MCP server started\n"
    )


def test_serve_on_a_port_in_use_exits_1(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"notes": server("notes.py")})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = codemode("serve", "--config", str(config), "--http", str(port))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == f"codemode: cannot listen on 127.0.0.1:{port} (Address already in use)\n"


# -- Python programs -------------------------------------------------------------------------------


def test_run_picks_python_from_the_file_extension() -> None:
    done = codemode("run", "examples/shop_program.py", "--tools", SHOP)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["success"] is True
    assert result["result"][0] == {
        "name": "Espresso machine",
        "sales": 1520.0,
        "averageRating": 4.5,
    }
    assert done.stderr == ""


def test_run_takes_the_language_from_the_option() -> None:
    done = codemode("run", "-", "--language", "python", stdin="print('hi')\n6 * 7")
    assert (done.returncode, json.loads(done.stdout)) == (
        0,
        {"success": True, "result": 42, "logs": ["hi"]},
    )
    failed = codemode("run", "-", "-l", "python", stdin="1 / 0")
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["error"] == {
        "message": "division by zero",
        "name": "ZeroDivisionError",
        "line": 1,
    }


def test_run_with_an_unknown_language_or_local_python_exits_2() -> None:
    unknown = codemode("run", "-", "--language", "ruby", stdin="1")
    assert (unknown.returncode, unknown.stderr) == (
        2,
        "Error: unknown language 'ruby'; choose one of: python, typescript\n",
    )
    local = codemode("run", "-", "--language", "python", "--local", stdin="1")
    assert local.returncode == 2
    assert "--local runs TypeScript with host privileges" in local.stderr


def test_instructions_in_python() -> None:
    done = codemode("instructions", "--tools", SHOP, "--language", "python")
    assert done.returncode == 0
    assert "You have a tool named `execute_python`" in done.stdout
    assert "async def external_getTopProducts(*, limit: int) -> GetTopProductsOutput:" in (
        done.stdout
    )
