"""The rest of the host: environment variables, subprocesses, FFI, system information and
signals to other processes. All need a permission the program's worker does not have.

Behind the OS wall alone: the environment holds none of the host's variables, seccomp refuses
new processes, no library outside the wall can be loaded, and the host's processes are in no
pid namespace the program can see. What the kernel tells every process (its version, load,
memory, uptime) stays visible."""

from __future__ import annotations

import _ctypes
import os
import platform
import signal

import psutil
import pytest
from _support import (
    HEALTHY,
    HEALTHY_CODE,
    HOST_SECRET,
    NOT_PERMITTED,
    Anything,
    Attack,
    Matches,
    check_attack,
    failed,
    not_capable,
    params,
    run,
    sandbox_process,
    succeeded,
    with_walls,
)

from codemode import CodeModeTool

pytestmark = pytest.mark.asyncio(loop_scope="module")


def env(name: str | None = None) -> str:
    return "env access" if name is None else f'env access to "{name}"'


def sys_info(name: str) -> str:
    return f'sys access to "{name}"'


ENVIRONMENT = [
    Attack("env-get", 'return Deno.env.get("HOME")', not_capable(env("HOME"), "env")),
    Attack("env-all", "return Deno.env.toObject()", not_capable(env(), "env")),
    Attack(
        "env-has",
        'return Deno.env.has("AWS_SECRET_ACCESS_KEY")',
        not_capable(env("AWS_SECRET_ACCESS_KEY"), "env"),
    ),
    Attack("env-set", 'Deno.env.set("PATH", "/tmp"); return 1', not_capable(env("PATH"), "env")),
    # The runner may read the variable that names its socket; the program may not.
    Attack(
        "env-runner-socket",
        'return Deno.env.get("CODEMODE_SOCKET")',
        not_capable(env("CODEMODE_SOCKET"), "env"),
    ),
    Attack("node-process-env", "return process.env.HOME", not_capable(env("HOME"), "env")),
    Attack("node-process-env-keys", "return Object.keys(process.env)", not_capable(env(), "env")),
]

SUBPROCESSES = [
    Attack(
        "command-absolute",
        'return (await new Deno.Command("/bin/sh", { args: ["-c", "id"] }).output()).code',
        not_capable('run access to "/bin/sh"', "run"),
    ),
    Attack(
        "command-sync",
        'return new Deno.Command("/usr/bin/id").outputSync().code',
        not_capable('run access to "/usr/bin/id"', "run"),
    ),
    Attack(
        "command-spawn",
        'new Deno.Command("/bin/sleep", { args: ["100"] }).spawn(); return 1',
        not_capable('run access to "/bin/sleep"', "run"),
    ),
    # The environment is empty (no PATH), so a bare name is not even found.
    Attack(
        "command-on-path",
        'return (await new Deno.Command("id").output()).code',
        failed("Failed to spawn 'id': entity not found", "NotFound"),
    ),
    Attack(
        "node-exec-sync",
        'const cp = await import("node:child_process"); return '
        'cp.execFileSync("/usr/bin/id").toString()',
        not_capable(env(), "env"),
    ),
    Attack(
        "node-spawn",
        'const cp = await import("node:child_process"); cp.spawn("/bin/sh", ["-c", "id"]); '
        "return 1",
        not_capable(env(), "env"),
    ),
]

FFI = [
    Attack(
        "dlopen-libc",
        'Deno.dlopen("libc.so.6", {}); return 1',
        not_capable('ffi access to "libc.so.6"', "ffi"),
    ),
    Attack(
        "dlopen-self", "Deno.dlopen(null, {}); return 1", not_capable('ffi access to "null"', "ffi")
    ),
    Attack(
        "node-dlopen",
        'return process.dlopen({ exports: {} }, "/lib/x86_64-linux-gnu/libc.so.6")',
        not_capable('ffi access to "/lib/x86_64-linux-gnu/libc.so.6"', "ffi"),
    ),
]

SYSTEM_INFO = [
    Attack("os-release", "return Deno.osRelease()", not_capable(sys_info("osRelease"), "sys")),
    Attack("hostname", "return Deno.hostname()", not_capable(sys_info("hostname"), "sys")),
    Attack("loadavg", "return Deno.loadavg()", not_capable(sys_info("loadavg"), "sys")),
    Attack(
        "memory-info",
        "return Deno.systemMemoryInfo()",
        not_capable(sys_info("systemMemoryInfo"), "sys"),
    ),
    Attack(
        "network-interfaces",
        "return Deno.networkInterfaces()",
        not_capable(sys_info("networkInterfaces"), "sys"),
    ),
    Attack("uptime", "return Deno.osUptime()", not_capable(sys_info("osUptime"), "sys")),
    Attack("uid", "return Deno.uid()", not_capable(sys_info("uid"), "sys")),
    Attack("gid", "return Deno.gid()", not_capable(sys_info("gid"), "sys")),
    Attack(
        "node-cpus", 'return (await import("node:os")).cpus()', not_capable(sys_info("cpus"), "sys")
    ),
    Attack(
        "node-homedir",
        'return (await import("node:os")).homedir()',
        not_capable(sys_info("homedir"), "sys"),
    ),
    Attack(
        "node-user-info",
        'return (await import("node:os")).userInfo()',
        not_capable(sys_info("uid"), "sys"),
    ),
    Attack(
        "node-tmpdir",
        'return (await import("node:os")).tmpdir()',
        not_capable(env("TMPDIR"), "env"),
    ),
    Attack(
        "console-size",
        "return Deno.consoleSize()",
        failed(
            "Could not get console size: stdin, stdout, and stderr are not connected to a terminal",
            "Error",
        ),
    ),
]

# Signals to any process but its own need --allow-run. SIGCONT is harmless if this ever
# breaks; the host's own pid gets SIGKILL, which would end this test run loudly.
SIGNALS = [
    Attack(
        "kill-host", 'Deno.kill(Deno.ppid, "SIGKILL"); return 1', not_capable("run access", "run")
    ),
    Attack(
        "node-kill-host",
        'process.kill(process.ppid, "SIGKILL"); return 1',
        not_capable("run access", "run"),
    ),
    Attack("kill-init", 'Deno.kill(1, "SIGCONT"); return 1', not_capable("run access", "run")),
    Attack(
        "kill-every-process", 'Deno.kill(-1, "SIGCONT"); return 1', not_capable("run access", "run")
    ),
    Attack(
        "kill-own-group",
        'Deno.kill(-Deno.pid, "SIGCONT"); return 1',
        not_capable("run access", "run"),
    ),
]


HOST_PID = os.getpid()  # this test process: the host of every sandbox here
OUTSIDE_LIBRARY = _ctypes.__file__  # a shared library on the host, outside the wall
FFI.append(
    Attack(
        "dlopen-outside-the-wall",
        f'Deno.dlopen("{OUTSIDE_LIBRARY}", {{}}); return 1',
        not_capable(f'ffi access to "{OUTSIDE_LIBRARY}"', "ffi"),
    )
)
# The host's own pid: SIGCONT, harmless if this ever breaks (the test checks it was not sent).
SIGNALS.append(
    Attack(
        "signal-host-pid",
        f'Deno.kill({HOST_PID}, "SIGCONT"); return 1',
        not_capable("run access", "run"),
    )
)

SCRATCH = r"/tmp/codemode-[a-z0-9_]+"


class SandboxEnvironment:
    """Equal to the variables of a walled sandbox process (an object, or a list of names): what
    the sandbox set, perhaps what Deno's node:process sets in its own process (PATH, the shim
    flag; or a program, env-set), and none of the host's."""

    NAMES = frozenset(
        {
            "CODEMODE_SOCKET",
            "CODEMODE_WORKER_PERMISSIONS",
            "DENO_DIR",
            "DENO_EMIT_CACHE_MODE",
            "DENO_NO_UPDATE_CHECK",
            "NO_COLOR",
            "PWD",
            "TMPDIR",
        }
    )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (dict, list)):
            return False
        names = set(other)
        extra = {"PATH", "DENO_NODE_SHIM_ACTIVE"}
        return self.NAMES <= names <= self.NAMES | extra and HOST_SECRET not in repr(other)

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"SandboxEnvironment({sorted(self.NAMES)}, PATH and the node shim's at most)"


NO_SUCH_PROCESS = failed("ESRCH: No such process", "NotFound")
SPAWN_REFUSED = "Failed to spawn '{}': Operation not permitted (os error 1)"
WALLED = {
    # The process's environment: what the sandbox set, and none of the host's variables.
    "env-get": succeeded(None),
    "env-all": succeeded(SandboxEnvironment()),
    "env-has": succeeded(False),
    "env-set": succeeded(1),  # its own process's (seen by later executions in that process)
    "env-runner-socket": succeeded(Matches(rf"{SCRATCH}/host\.sock")),  # long unlinked
    "node-process-env": succeeded(None),
    "node-process-env-keys": succeeded(SandboxEnvironment()),
    # seccomp: no new process, whichever binary.
    "command-absolute": failed(SPAWN_REFUSED.format("/bin/sh"), "PermissionDenied"),
    "command-sync": failed(SPAWN_REFUSED.format("/usr/bin/id"), "PermissionDenied"),
    "command-spawn": failed(SPAWN_REFUSED.format("/bin/sleep"), "PermissionDenied"),
    # Without PATH, or with the PATH a program set in its process (env-set), nothing is found.
    "command-on-path": failed(
        Matches(
            "Failed to spawn 'id': (entity not found|no path to search and provided name is not "
            "an absolute path)"
        ),
        Matches("NotFound|Error"),
    ),
    "node-exec-sync": failed("Command failed: /usr/bin/id", "Error"),
    "node-spawn": succeeded(1),  # the failure is an 'error' event after the program; no process
    # The C library is inside the wall (Deno links it): native code is what the wall contains.
    "dlopen-libc": succeeded(1),
    "dlopen-self": failed(
        "Could not open library: Could not open library: null: cannot open shared object "
        "file: No such file or directory",
        "Error",
    ),
    "node-dlopen": failed(
        f"Unable to find register Node-API module at /lib/{platform.machine()}-linux-gnu/libc.so.6",
        "TypeError",
    ),
    "dlopen-outside-the-wall": failed(
        f"Could not open library: Could not open library: {OUTSIDE_LIBRARY}: cannot open "
        "shared object file: No such file or directory",
        "Error",
    ),
    "os-release": succeeded(platform.release()),
    "hostname": succeeded("codemode"),  # the wall's, not the host's
    "loadavg": succeeded(Anything()),
    "memory-info": succeeded(Anything()),
    "network-interfaces": NOT_PERMITTED,  # netlink: seccomp allows unix sockets only
    "uptime": succeeded(Anything()),
    "uid": succeeded(os.getuid()),
    "gid": succeeded(os.getgid()),
    "node-cpus": succeeded(Anything()),
    "node-homedir": {"success": True, "result": None, "logs": []},  # no HOME, no /etc/passwd
    "node-user-info": failed("Failed to get user info", "NotFound"),
    "node-tmpdir": succeeded(Matches(SCRATCH)),
    # Its parent, as it sees it, is the wall's init: SIGKILL from inside its pid namespace
    # cannot end that. The host is in no namespace it can see.
    "kill-host": succeeded(1),
    "node-kill-host": succeeded(1),
    "kill-init": succeeded(1),
    "kill-every-process": NO_SUCH_PROCESS,
    "kill-own-group": NO_SUCH_PROCESS,
    "signal-host-pid": NO_SUCH_PROCESS,
}
# Both walls: where the operating system answers before Deno asks for a permission.
BOTH = {"command-on-path": WALLED["command-on-path"]}
ATTACKS = with_walls(ENVIRONMENT + SUBPROCESSES + FFI + SYSTEM_INFO + SIGNALS, WALLED, BOTH)


@pytest.mark.parametrize("attack", params(ATTACKS))
async def test_the_host_is_out_of_reach(code_tool: CodeModeTool, attack: Attack) -> None:
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    continued = []  # SIGCONT reaching this process (the host) from a program
    previous = signal.signal(signal.SIGCONT, lambda *_: continued.append(1))
    try:
        await check_attack(code_tool, attack)
    finally:
        signal.signal(signal.SIGCONT, previous)
    assert continued == []
    started = {child.pid for child in psutil.Process().children(recursive=True)} - before
    # Pool refills start Deno processes (and their walls); nothing else may appear.
    assert all(sandbox_process(psutil.Process(pid)) for pid in started if psutil.pid_exists(pid))


async def test_what_a_program_may_learn_about_the_system(code_tool: CodeModeTool) -> None:
    """Accepted: the CPU count, the platform, Deno's version, its own pid and memory use, and
    whether stdin is a terminal. The pid is its own process's (a child of the host), or, behind
    bubblewrap, its pid namespace's (under the wall's init)."""
    outcome = await run(
        code_tool,
        "return [navigator.hardwareConcurrency, Deno.build.os, process.arch, typeof "
        "Deno.version.deno, "
        "Deno.memoryUsage().rss > 0, Deno.stdin.isTerminal(), Deno.pid, Deno.ppid]",
    )
    assert outcome["success"] is True
    *facts, pid, ppid = outcome["result"]
    assert outcome == succeeded([*facts, pid, ppid])
    assert facts == [os.cpu_count(), "linux", "x64", "string", True, False]
    if code_tool.sandbox.confinement_report().os_wall.startswith("bubblewrap"):  # type: ignore[attr-defined]
        assert (pid, ppid) == (2, 1)
    else:
        assert ppid == os.getpid()
        assert psutil.Process(pid).ppid() == os.getpid()
    assert await run(code_tool, HEALTHY_CODE) == HEALTHY
