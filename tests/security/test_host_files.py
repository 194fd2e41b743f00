"""Reading, writing and listing host files, and learning host paths.

Every file API, node:fs, fetch(file:) and imports of local files are refused by Deno's
permission checks. Paths are a different matter: a program can learn a few (see
``test_what_a_program_may_learn``), none of which it can open.

Behind the OS wall alone, the same APIs find a filesystem holding nothing of the host's: no
``/etc``, home, project or host process, a read-only root and ``/tmp``, and one scratch directory
(the working directory) that is emptied after each execution.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from _support import (
    HEALTHY,
    HEALTHY_CODE,
    HOST_SECRET,
    NOT_FOUND,
    NOT_PERMITTED,
    READ_ONLY,
    UUID,
    Attack,
    Lacks,
    Matches,
    check_attack,
    failed,
    not_capable,
    os_refused,
    params,
    run,
    succeeded,
    with_walls,
)

from codemode import CodeModeTool
from codemode.sandboxes.deno import RUNNER, deno_executable

pytestmark = pytest.mark.asyncio(loop_scope="module")

PWNED = Path(tempfile.gettempdir()) / "codemode-security-pwned"
HOST_PID = os.getpid()  # this test process: the host of every sandbox here
HOME = str(Path.home())
PROJECT_FILE = str(Path(__file__).resolve().parents[2] / "pyproject.toml")
SCRATCH = rf"{tempfile.gettempdir()}/codemode-[a-z0-9_]+"


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
        f'const u = "{RUNNER.parent.as_uri()}/" + "{RUNNER.name}"; '
        "return Object.keys(await import(u))",
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


ATTACKS += [
    # What the host holds: its own process, the user's home and the project.
    Attack(
        "read-host-environ",
        f'return Deno.readTextFileSync("/proc/{HOST_PID}/environ")',
        not_capable(read(f"/proc/{HOST_PID}/environ"), "read"),
    ),
    Attack(
        "read-host-cmdline-by-pid",
        f'return Deno.readTextFileSync("/proc/{HOST_PID}/cmdline")',
        not_capable(read(f"/proc/{HOST_PID}/cmdline"), "read"),
    ),
    Attack(
        "read-host-memory",
        f'const f = Deno.openSync("/proc/{HOST_PID}/mem"); return 1',
        not_capable(read(f"/proc/{HOST_PID}/mem"), "read"),
    ),
    Attack(
        "list-home",
        f'return [...Deno.readDirSync("{HOME}")].map(e => e.name)',
        not_capable(read(HOME), "read"),
    ),
    Attack(
        "read-project-file",
        f'return Deno.readTextFileSync("{PROJECT_FILE}")',
        not_capable(read(PROJECT_FILE), "read"),
    ),
]

# Behind the OS wall alone: Deno would allow every one of these; the operating system refuses
# them, or they find only the wall's own empty filesystem. The scratch directory is writable.
WALLED = {
    "read-sync": NOT_FOUND,
    "read-async": NOT_FOUND,
    "read-bytes": NOT_FOUND,
    "open": NOT_FOUND,
    "read-own-environ": succeeded(Lacks(HOST_SECRET)),  # its own, holding no host variable
    # Its parent is the wall's own init (pid 1 of its pid namespace): bubblewrap's command line.
    "read-host-cmdline": succeeded(Matches(r".*bwrap\x00--unshare-user\x00.*")),
    "readlink-exe": succeeded(deno_executable()),
    "stat": NOT_FOUND,
    "realpath-cwd": succeeded(Matches(SCRATCH)),
    "list-root": os_refused("Permission denied", "PermissionDenied"),
    "list-cwd": succeeded([]),
    "chdir": NOT_PERMITTED,  # seccomp: the working directory stays the scratch directory
    "write": READ_ONLY,
    "write-cwd": succeeded(1),  # the scratch directory; see test_state for the next execution
    "mkdir": READ_ONLY,
    "remove": READ_ONLY,
    "truncate": NOT_FOUND,
    "make-temp-dir": succeeded(Matches(rf"{SCRATCH}/[0-9a-f]+")),  # TMPDIR is the scratch
    "symlink": succeeded(1),  # in the scratch, to a file the wall does not hold
    "hard-link": NOT_FOUND,
    "node-fs-read": failed("ENOENT: no such file or directory, open '/etc/passwd'", "Error"),
    "node-fs-write": failed(f"EROFS: read-only file system, open '{PWNED}'", "Error"),
    "fetch-file-url": failed(
        "Error fetching file 'file:///etc/passwd': No such file or directory (os error 2)",
        "TypeError",
    ),
    "import-literal-text": failed(
        Matches(rf'Module not found "file:///etc/passwd".\n    at blob:null/{UUID}:2:\d+'),
        "TypeError",
    ),
    "import-computed-json": failed('Module not found "file:///etc/os-release".', "TypeError"),
    # The runner is in the wall, read-only; run again, it finds its host socket long gone.
    "import-runner-source": failed("No such file or directory (os error 2)", "NotFound", None),
    "import-runner-computed": failed("No such file or directory (os error 2)", "NotFound", None),
    "import-data-url-reads": os_refused("No such file or directory", "NotFound", None),
    "read-host-environ": NOT_FOUND,  # the host is in no pid namespace the program can see
    "read-host-cmdline-by-pid": NOT_FOUND,
    "read-host-memory": NOT_FOUND,
    "list-home": NOT_FOUND,
    "read-project-file": NOT_FOUND,
}
ATTACKS = with_walls(ATTACKS, WALLED)


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
    cwd = Matches(SCRATCH)
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
