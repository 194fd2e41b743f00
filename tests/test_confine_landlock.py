"""The Landlock layer of the OS wall, forced with ``Confinement(layer="landlock")`` on this
machine (where bubblewrap works too): the attacks of ``tests/security`` that reach the operating
system, against Deno with every permission granted, behind Landlock and seccomp alone."""

from __future__ import annotations

import _ctypes
import asyncio
import os
import signal
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from _helpers import Matches, run
from codemode import CodeModeTool, Confinement, LocalSandbox, create_code_mode

pytestmark = pytest.mark.asyncio(loop_scope="module")

HOST_PID = os.getpid()
SECRET = "landlock-test-host-secret"
PROJECT_FILE = Path(__file__).resolve().parents[1] / "pyproject.toml"
PWNED = Path(tempfile.gettempdir()) / "codemode-landlock-pwned"


def refused(message: str, name: str = "PermissionDenied") -> dict[str, Any]:
    return {
        "success": False,
        "logs": [],
        "error": {"message": Matches(message), "name": name, "line": 1},
    }


DENIED = refused(r"Permission denied \(os error 13\).*")  # Landlock
NOT_PERMITTED = refused(r"Operation not permitted \(os error 1\).*")  # seccomp or scope

ATTACKS = {
    "read-passwd": ('return Deno.readTextFileSync("/etc/passwd")', DENIED),
    "read-host-environ": (f'return Deno.readTextFileSync("/proc/{HOST_PID}/environ")', DENIED),
    "read-host-cmdline": (f'return Deno.readTextFileSync("/proc/{HOST_PID}/cmdline")', DENIED),
    "read-host-memory": (f'Deno.openSync("/proc/{HOST_PID}/mem"); return 1', DENIED),
    "list-home": (f'return [...Deno.readDirSync("{Path.home()}")].length', DENIED),
    "read-project": (f'return Deno.readTextFileSync("{PROJECT_FILE}")', DENIED),
    "list-root": ('return [...Deno.readDirSync("/")].length', DENIED),
    "write-outside": (f'Deno.writeTextFileSync("{PWNED}", "x"); return 1', DENIED),
    # What the sandbox set (node:process may add its own, in its own process), nothing else.
    "env": (
        'const names = ["CODEMODE_SOCKET", "CODEMODE_WORKER_PERMISSIONS", "DENO_DIR", '
        '"DENO_NO_UPDATE_CHECK", "NO_COLOR", "TMPDIR", "PATH", "DENO_NODE_SHIM_ACTIVE", '
        '"DENO_EMIT_CACHE_MODE"]; '
        "return Object.entries(Deno.env.toObject()).filter(([k]) => !names.includes(k))",
        {"success": True, "logs": [], "result": []},
    ),
    "env-secret": (
        'return Deno.env.get("CODEMODE_HOST_SECRET") ?? null',
        {"success": True, "result": None, "logs": []},
    ),
    "spawn": (
        'return (await new Deno.Command("/bin/sh", { args: ["-c", "id"] }).output()).code',
        refused(r"Failed to spawn '/bin/sh': Operation not permitted \(os error 1\)"),
    ),
    "spawn-deno": (
        'return (await new Deno.Command(Deno.execPath(), { args: ["--version"] }).output()).code',
        refused(r"Failed to spawn '.*deno': Operation not permitted \(os error 1\)"),
    ),
    # Landlock's signal scope: no signal leaves the sandbox's domain.
    "kill-host": (
        f'Deno.kill({HOST_PID}, "SIGCONT"); return 1',
        refused("EPERM: Operation not permitted"),
    ),
    "dns": (
        'return await Deno.resolveDns("example.com", "A")',
        refused(r"proto error: io error: Permission denied \(os error 13\)", "Error"),
    ),
    "udp": (  # Landlock has no UDP rule: seccomp allows unix sockets only
        'const dgram = await import("node:dgram"); const s = dgram.createSocket("udp4"); '
        'await new Promise((ok, ko) => { s.on("error", ko); s.bind(0, "127.0.0.1", ok) }); '
        "return 1",
        {
            "success": False,
            "logs": [],
            "error": {"message": "bind EPERM 127.0.0.1", "name": "Error"},
        },
    ),
    "ffi-outside": (
        f'Deno.dlopen("{_ctypes.__file__}", {{}}); return 1',
        refused(r"Could not open library: .*Permission denied", "Error"),
    ),
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def tool() -> AsyncIterator[CodeModeTool]:
    os.environ["CODEMODE_HOST_SECRET"] = SECRET
    try:
        async with LocalSandbox(confinement=Confinement(layer="landlock")) as box:
            assert box.confinement_report().layers == ("landlock+seccomp",)
            yield create_code_mode(tools=[], sandbox=box).tool
    finally:
        del os.environ["CODEMODE_HOST_SECRET"]


@pytest.mark.parametrize("name", ATTACKS)
async def test_landlock_alone_holds(tool: CodeModeTool, name: str) -> None:
    code, expected = ATTACKS[name]
    continued: list[int] = []
    previous = signal.signal(signal.SIGCONT, lambda *_: continued.append(1))
    try:
        assert await run(tool, code) == expected
    finally:
        signal.signal(signal.SIGCONT, previous)
    assert continued == []
    assert not PWNED.exists()
    assert await run(tool, "return 6 * 7") == {"success": True, "result": 42, "logs": []}


async def test_a_host_port_is_never_reached(tool: CodeModeTool) -> None:
    connections = 0

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for code in (
            f'await Deno.connect({{ hostname: "127.0.0.1", port: {port} }}); return 1',
            f'return (await fetch("http://127.0.0.1:{port}/")).status',
        ):
            assert (await run(tool, code))["success"] is False
        await asyncio.sleep(0.1)
    finally:
        server.close()
        await server.wait_closed()
    assert connections == 0
