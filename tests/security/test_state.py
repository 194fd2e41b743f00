"""State surviving from one execution to the next, in the same process.

Each execution gets a fresh realm, so globals, patched prototypes, timers and module state
die with it. What a process shares across realms is closed separately: localStorage and the
Cache API cannot be created (``location_data`` in the private DENO_DIR is a file), files are
denied, BroadcastChannel only reaches live realms, and the blob store (a hole: blob URLs and
blob data outlived their realm) gets no blob URLs from programs, loses the program's own
module URL once imported, and a process left holding much memory is retired, not reused.
"""

from __future__ import annotations

from typing import Any

import pytest
from _support import (
    HEALTHY,
    HEALTHY_CODE,
    NOT_FOUND,
    Matches,
    Recorder,
    failed,
    not_capable,
    run,
    succeeded,
    walls_of,
)

from codemode import CodeModeTool, DenoSandbox, Tool, create_code_mode

pytestmark = pytest.mark.asyncio(loop_scope="module")

CACHE_REFUSED = failed(
    Matches(
        r"Failed to create cache storage directory "
        r"/.*/codemode-deno-\d+/location_data/web_cache/[0-9a-f]+"
    ),
    "Error",
)
NO_BLOB_URLS = failed(
    "URL.createObjectURL is not available in the sandbox: a blob URL outlives the program.",
    "TypeError",
)

# (first program, its result, a later program, its result): the later one runs in the same
# process and must find nothing of the first.
PAIRS: dict[str, tuple[str, dict[str, Any], str, dict[str, Any]]] = {
    "globals": (
        'globalThis.leak = "secret"; globalThis.runs = (globalThis.runs ?? 0) + 1; return runs',
        succeeded(1),
        "return [typeof leak, globalThis.runs ?? null]",
        succeeded(["undefined", None]),
    ),
    "prototypes": (
        "Array.prototype.leak = 1; Object.prototype.leak = 2; return 1",
        succeeded(1),
        "return [[].leak ?? null, ({}).leak ?? null]",
        succeeded([None, None]),
    ),
    "error-settings": (
        "Error.stackTraceLimit = 0; Error.prepareStackTrace = () => 'x'; return 1",
        succeeded(1),
        "return [Error.stackTraceLimit, typeof Error.prepareStackTrace]",
        succeeded([10, "undefined"]),
    ),
    "local-storage": (
        'localStorage.setItem("k", "v"); return 1',
        failed("localStorage is not defined", "ReferenceError"),
        "return [typeof localStorage, typeof sessionStorage, typeof indexedDB, typeof Deno.openKv]",
        succeeded(["undefined", "undefined", "undefined", "undefined"]),
    ),
    "cache-api": (
        'await (await caches.open("c")).put("/k", new Response("v")); return 1',
        CACHE_REFUSED,
        'return await caches.has("c")',
        CACHE_REFUSED,
    ),
    "files": (
        'Deno.writeTextFileSync("state.txt", "v"); return 1',
        not_capable('write access to "state.txt"', "write"),
        'return Deno.readTextFileSync("state.txt")',
        not_capable('read access to "state.txt"', "read"),
    ),
    "blob-urls": (
        'return URL.createObjectURL(new Blob(["kept"]))',
        NO_BLOB_URLS,
        'return URL.createObjectURL.toString().includes("not available")',
        succeeded(True),
    ),
    "broadcast-channel": (
        'const c = new BroadcastChannel("leak"); setInterval(() => c.postMessage("still here"), '
        "5); return 1",
        succeeded(1),
        'const c = new BroadcastChannel("leak"); let heard = 0; c.onmessage = () => { heard += 1 '
        "}; "
        "await new Promise(r => setTimeout(r, 300)); c.close(); return heard",
        succeeded(0),
    ),
    "shared-array-buffer": (
        "globalThis.sab = new SharedArrayBuffer(8); new Int32Array(sab)[0] = 42; "
        "self.postMessage(sab); return 1",
        succeeded(1),
        "return typeof globalThis.sab",
        succeeded("undefined"),
    ),
    "timers": (
        'setTimeout(() => console.log("late"), 50); setInterval(() => external_echo({ late: true '
        "}), 5); "
        'setTimeout(() => { throw new Error("late error") }, 60); return "early"',
        succeeded("early"),
        'await new Promise(r => setTimeout(r, 300)); return "second"',
        succeeded("second"),
    ),
    "performance-entries": (
        'performance.mark("x"); return performance.getEntries().length',
        succeeded(1),
        "return performance.getEntries().length",
        succeeded(0),
    ),
}


# Behind the OS wall alone (Deno granting everything): the scratch directory takes the file, and
# is emptied before the next execution.
WALLED_PAIRS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "files": (succeeded(1), NOT_FOUND),
}


@pytest.fixture(scope="module")
def same_process_tool(one_process: DenoSandbox, echo_tool: Tool) -> CodeModeTool:
    return create_code_mode(tools=[echo_tool], sandbox=one_process).tool


async def pid(tool: CodeModeTool) -> str:
    """Which process runs ``tool``'s programs: its working directory, unique to each (``Deno.pid``
    is its pid namespace's behind bubblewrap, the same in every process)."""
    outcome = await run(tool, "return Deno.cwd()")
    assert outcome["success"] is True
    return str(outcome["result"])


@pytest.mark.parametrize("name", PAIRS)
async def test_nothing_survives_into_the_next_execution(
    same_process_tool: CodeModeTool, calls: Recorder, name: str
) -> None:
    first, first_result, later, later_result = PAIRS[name]
    process = await pid(same_process_tool)
    if walls_of(same_process_tool) == "wall":
        first_result, later_result = WALLED_PAIRS.get(name, (first_result, later_result))
    assert await run(same_process_tool, first) == first_result
    calls.calls.clear()
    assert await run(same_process_tool, later) == later_result
    assert calls.calls == []
    assert await pid(same_process_tool) == process  # it really was the same process
    assert await run(same_process_tool, HEALTHY_CODE) == HEALTHY


async def test_the_previous_program_source_is_gone(same_process_tool: CodeModeTool) -> None:
    """A program's module is a blob URL; once imported it is revoked, so a later program that
    learned the URL cannot read the source (which may hold data from the conversation)."""
    first = await run(same_process_tool, 'const secret = "s3cr3t"; return import.meta.url')
    assert first == succeeded(Matches(r"blob:null/[0-9a-f-]{36}"))
    url = first["result"]
    later = await run(
        same_process_tool,
        f'return [await fetch("{url}").then(r => r.text(), e => e.message), '
        f'await import("{url}").then(() => "imported", e => e.message)]',
    )
    assert later == succeeded(["Blob for the given URL not found.", f'Module not found "{url}".'])


async def test_memory_left_behind_is_not_inherited(same_process_tool: CodeModeTool) -> None:
    """Blob data outlives its realm in the process's blob store. A process left holding it
    is retired, so the next program starts with its whole memory budget."""
    before = await pid(same_process_tool)
    held = await run(
        same_process_tool,
        "const parts = []; for (let i = 0; i < 4; i++) parts.push(new Uint8Array(50 << "
        "20).fill(1)); "
        "globalThis.kept = new Blob(parts); return Deno.memoryUsage().rss > 400 * 2 ** 20",
    )
    assert held == succeeded(True)
    after = await run(
        same_process_tool, "return [Deno.pid, Deno.memoryUsage().rss < 100 * 2 ** 20]"
    )
    assert after["success"] is True
    assert after["result"][0] != before
    assert after == succeeded([after["result"][0], True])
