"""The rest of the host: environment variables, subprocesses, FFI, system information and
signals to other processes. All need a permission the program's worker does not have."""

from __future__ import annotations

import os

import psutil
import pytest
from _support import (
    HEALTHY,
    HEALTHY_CODE,
    Attack,
    check_attack,
    failed,
    not_capable,
    params,
    run,
    succeeded,
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


@pytest.mark.parametrize("attack", params(ENVIRONMENT + SUBPROCESSES + FFI + SYSTEM_INFO + SIGNALS))
async def test_the_host_is_out_of_reach(code_tool: CodeModeTool, attack: Attack) -> None:
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    await check_attack(code_tool, attack)
    started = {child.pid for child in psutil.Process().children(recursive=True)} - before
    # Pool refills start Deno processes; nothing else may appear.
    assert all(psutil.Process(pid).name() == "deno" for pid in started if psutil.pid_exists(pid))


async def test_what_a_program_may_learn_about_the_system(code_tool: CodeModeTool) -> None:
    """Accepted: the CPU count, the platform, Deno's version, its own pid and memory use, and
    whether stdin is a terminal. The pid is its own process's (a child of the host)."""
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
    assert ppid == os.getpid()
    assert psutil.Process(pid).ppid() == os.getpid()
    assert await run(code_tool, HEALTHY_CODE) == HEALTHY
