"""Reading, writing and listing host files, and learning host paths.

Every file API, node:fs, fetch(file:) and imports of local files are refused by Deno's
permission checks. Paths are a different matter: a program can learn a few (see
``test_what_a_program_may_learn``), none of which it can open.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from _support import (
    HEALTHY,
    HEALTHY_CODE,
    UUID,
    Attack,
    Matches,
    check_attack,
    failed,
    not_capable,
    params,
    run,
    succeeded,
)

from codemode import CodeModeTool
from codemode.sandboxes.deno import RUNNER, deno_executable

pytestmark = pytest.mark.asyncio(loop_scope="module")

PWNED = Path(tempfile.gettempdir()) / "codemode-security-pwned"


def read(path: str) -> str:
    return f'read access to "{path}"'


def write(path: str) -> str:
    return f'write access to "{path}"'


ATTACKS = [
    Attack(
        "read-sync",
        'return Deno.readTextFileSync("/etc/passwd")',
        not_capable(read("/etc/passwd"), "read"),
    ),
    Attack(
        "read-async",
        'return await Deno.readTextFile("/etc/hostname")',
        not_capable(read("/etc/hostname"), "read"),
    ),
    Attack(
        "read-bytes",
        'return Deno.readFileSync("/etc/shadow").length',
        not_capable(read("/etc/shadow"), "read"),
    ),
    Attack(
        "open",
        'const f = await Deno.open("/etc/passwd"); return 1',
        not_capable(read("/etc/passwd"), "read"),
    ),
    Attack(
        "read-own-environ",
        'return Deno.readTextFileSync("/proc/self/environ")',
        not_capable(read("/proc/self/environ"), "read"),
    ),
    Attack(
        "read-host-cmdline",
        "return Deno.readTextFileSync(`/proc/${Deno.ppid}/cmdline`)",
        not_capable(Matches(r'read access to "/proc/\d+/cmdline"'), "read"),
    ),
    Attack(
        "readlink-exe",
        'return Deno.readLinkSync("/proc/self/exe")',
        not_capable(read("/proc/self/exe"), "read"),
    ),
    Attack(
        "stat", 'return Deno.statSync("/etc/passwd").size', not_capable(read("/etc/passwd"), "read")
    ),
    Attack("realpath-cwd", 'return Deno.realPathSync(".")', not_capable(read("."), "read")),
    Attack(
        "list-root",
        'return [...Deno.readDirSync("/")].map(e => e.name)',
        not_capable(read("/"), "read"),
    ),
    Attack(
        "list-cwd",
        "const names = []; for await (const e of Deno.readDir(Deno.cwd())) names.push(e.name); "
        "return names",
        not_capable(Matches(r'read access to "/.*/codemode-[^/"]+"'), "read"),
    ),
    Attack("chdir", 'Deno.chdir("/"); return Deno.cwd()', not_capable(read("/"), "read")),
    Attack(
        "write",
        f'Deno.writeTextFileSync("{PWNED}", "pwned"); return 1',
        not_capable(write(str(PWNED)), "write"),
    ),
    Attack(
        "write-cwd",
        'await Deno.writeTextFile("./note.txt", "x"); return 1',
        not_capable(write("./note.txt"), "write"),
    ),
    Attack(
        "mkdir", f'Deno.mkdirSync("{PWNED}"); return 1', not_capable(write(str(PWNED)), "write")
    ),
    Attack("remove", 'Deno.removeSync("/tmp"); return 1', not_capable(write("/tmp"), "write")),
    Attack(
        "truncate",
        'Deno.truncateSync("/etc/passwd"); return 1',
        not_capable(write("/etc/passwd"), "write"),
    ),
    Attack(
        "make-temp-dir",
        "return await Deno.makeTempDir()",
        not_capable("write access to <TMP>", "write"),
    ),
    Attack(
        "symlink",
        'Deno.symlinkSync("/etc/passwd", "./passwd"); return 1',
        failed(
            "Deno.symlinkSync() requires unscoped --allow-read and --allow-write permissions; "
            "path-scoped grants (e.g. --allow-write=<path>) are not supported because a "
            "symlink's target is only resolved when the link is traversed",
            "NotCapable",
        ),
    ),
    Attack(
        "hard-link",
        'Deno.linkSync("/etc/passwd", "./passwd"); return 1',
        not_capable(read("/etc/passwd"), "read"),
    ),
    Attack(
        "node-fs-read",
        'const fs = await import("node:fs"); return fs.readFileSync("/etc/passwd", "utf8")',
        not_capable(read("/etc/passwd"), "read"),
    ),
    Attack(
        "node-fs-write",
        f'const fs = await import("node:fs"); fs.writeFileSync("{PWNED}", "x"); return 1',
        not_capable(write(str(PWNED)), "write"),
    ),
    Attack(
        "fetch-file-url",
        'return await (await fetch("file:///etc/passwd")).text()',
        not_capable(read("/etc/passwd"), "read"),
    ),
    # SANDBOX.md: a *main* module's literal imports skip --deny-read. The program is never the
    # main module, so a literal specifier is checked like any other.
    Attack(
        "import-literal-text",
        'return (await import("file:///etc/passwd", { with: { type: "text" } })).default',
        failed(
            Matches(
                r'Requires read access to "/etc/passwd", run again with the --allow-read flag\n'
                rf"    at blob:null/{UUID}:2:\d+"
            ),
            "TypeError",
        ),
    ),
    Attack(
        "import-computed-json",
        'const u = "file:///etc/" + "os-release"; return (await import(u, { with: { type: "json" '
        "} })).default",
        not_capable(read("/etc/os-release"), "read", name="TypeError"),
    ),
    Attack(
        "import-runner-source",
        f'return Object.keys(await import("{RUNNER.as_uri()}"))',
        not_capable(read(str(RUNNER)), "read", name="TypeError"),
    ),
    Attack(
        "import-runner-computed",
        f'const u = "{RUNNER.parent.as_uri()}/" + "runner.ts"; return Object.keys(await import(u))',
        not_capable(read(str(RUNNER)), "read", name="TypeError"),
    ),
    Attack(
        "import-relative",
        'return (await import("../../etc/passwd", { with: { type: "text" } })).default',
        failed(
            Matches(
                rf"invalid URL: relative URL with a cannot-be-a-base base\n    at "
                rf"blob:null/{UUID}:2:\d+\n"
            ),
            "TypeError",
        ),
    ),
    Attack(
        "import-data-url-reads",
        'return (await import("data:application/javascript,export default '
        "Deno.readTextFileSync('/etc/passwd')\")).default",
        not_capable(read("/etc/passwd"), "read", line=None),
    ),
]


@pytest.mark.parametrize("attack", params(ATTACKS))
async def test_host_files_are_out_of_reach(code_tool: CodeModeTool, attack: Attack) -> None:
    await check_attack(code_tool, attack)
    assert not PWNED.exists()


async def test_what_a_program_may_learn(code_tool: CodeModeTool) -> None:
    """Accepted, on purpose: a program can learn its process's working directory (an empty,
    private 0700 temp directory), the Deno binary's path, its pid and parent pid, the CPU
    count, Deno's version and its own memory use. It can open none of these paths, and its
    own module is an anonymous ``blob:`` URL, so stack traces show no host path. Hiding the
    rest would mean patching many APIs (``Deno``, ``process``, error messages) for little."""
    outcome = await run(
        code_tool,
        """
        return {
          cwd: Deno.cwd(),
          execPath: Deno.execPath(),
          args: Deno.args,
          mainModule: Deno.mainModule ?? null,
          url: import.meta.url,
          main: import.meta.main,
          filename: import.meta.filename ?? null,
          stack: new Error("where am I").stack,
          processCwd: process.cwd(),
          argv: process.argv.slice(1),
          cpus: navigator.hardwareConcurrency,
          pidIsNumber: Number.isInteger(Deno.pid) && Number.isInteger(Deno.ppid),
        }
        """,
    )
    cwd = Matches(rf"{tempfile.gettempdir()}/codemode-[a-z0-9_]+")
    assert outcome == succeeded(
        {
            "cwd": cwd,
            "execPath": deno_executable(),
            "args": [],
            "mainModule": None,
            "url": Matches(rf"blob:null/{UUID}"),
            "main": False,
            "filename": None,
            "stack": Matches(
                rf"Error: where am I\n    at __codemode_main__ \(blob:null/{UUID}:\d+:\d+\)\n"
                rf"    at run \(blob:null/{UUID}:\d+:\d+\)"
            ),
            "processCwd": cwd,
            "argv": [Matches(rf"{tempfile.gettempdir()}/codemode-[a-z0-9_]+/\$deno\$node\.mjs")],
            "cpus": os.cpu_count(),
            "pidIsNumber": True,
        }
    )
    assert await run(code_tool, HEALTHY_CODE) == HEALTHY
