"""Helpers the sandbox tests share: run a program to the user's view of its result, match
text that differs per run, wait for a process to end, and the languages a shared suite runs
each case in."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psutil

from codemode import CodeModeTool, DenoSandbox, MontySandbox, Sandbox

#: The program languages a shared behaviour suite is parametrised over.
LANGUAGES = ["typescript", "python"]


@dataclass(frozen=True)
class Lang:
    """One language under test: its sandbox, and its program for each case
    (``lang({"typescript": ..., "python": ...})`` picks this language's)."""

    name: str
    sandbox: Sandbox

    def __call__(self, programs: Mapping[str, Any]) -> Any:
        return programs[self.name]


def sandbox_for(language: str, **options: Any) -> Sandbox:
    """The sandbox that runs programs in ``language`` (Deno for TypeScript, Monty for Python)."""
    return DenoSandbox(**options) if language == "typescript" else MontySandbox(**options)


class Matches:
    """Equal to any string that ``pattern`` matches in full (for paths, ids and line numbers
    that differ from run to run)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern, re.DOTALL)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.pattern.fullmatch(other) is not None

    def __hash__(self) -> int:
        return hash(self.pattern.pattern)

    def __repr__(self) -> str:
        return f"Matches({self.pattern.pattern!r})"


async def run(tool: CodeModeTool, code: str) -> dict[str, Any]:
    result = await tool.execute({"code": code})
    return result.model_dump(exclude_none=True)


async def process_gone(pid: int, within: float = 3.0) -> bool:
    """Whether process ``pid`` has ended (reaped or a zombie) within ``within`` seconds."""
    for _ in range(int(within / 0.02)):
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        await asyncio.sleep(0.02)
    return False


def sandbox_pid(cwd: str) -> int:
    """The host pid of the sandbox process working in ``cwd``. A program can say its working
    directory (the same path inside the OS wall and out); ``Deno.pid`` is its own pid
    namespace's behind bubblewrap."""
    for child in psutil.Process().children(recursive=True):
        try:
            if child.name() == "deno" and child.cwd() == cwd:
                return child.pid
        except psutil.Error:
            continue
    raise LookupError(f"no sandbox process works in {cwd}")


# The runner's channel to a program's worker (runner.ts, "The channel to the worker"): a
# SharedArrayBuffer with four Int32 slots (UP_TAIL, UP_HEAD, DOWN_TAIL, DOWN_HEAD), then the up
# ring (worker -> runner) and the down ring, each holding [u32 length][record] one after another.
# Records: C (call: id, tool index, input JSON), L (log), P (barrier), R and E (replies). Attacks
# on it run in a sandbox that hands each program its buffer (``expose_channel``), as if it had
# found it; CHANNEL_JS gives them the means to forge records.
CHANNEL_JS = """
const ch = globalThis.__codemodeChannel
const i32 = new Int32Array(ch), u8 = new Uint8Array(ch)
const RING = 65536, UP_TAIL = 0, UP_HEAD = 1, DOWN_TAIL = 2, DOWN_HEAD = 3
const UP_DATA = 64, DOWN_DATA = 64 + RING
const u32 = (n) => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255]
const getU32 = (b, at) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0
function call(id, index, json) {
  const body = new TextEncoder().encode(json)
  const record = new Uint8Array(9 + body.length)
  record[0] = 67
  record.set(u32(id), 1)
  record.set(u32(index), 5)
  record.set(body, 9)
  return record
}
// Writes raw bytes at the up ring's tail and publishes them, as the worker does.
function writeUp(bytes) {
  const tail = Atomics.load(i32, UP_TAIL) >>> 0
  for (let i = 0; i < bytes.length; i++) u8[UP_DATA + ((tail + i) % RING)] = bytes[i]
  Atomics.store(i32, UP_TAIL, (tail + bytes.length) | 0)
  Atomics.notify(i32, UP_TAIL)
}
const inRing = (record) => writeUp([...u32(record.length), ...record])
// Waits until the runner has read everything published in the up ring (the worker writes at
// its own tail, which does not count what the program wrote: it would write over it).
async function taken() {
  while (Atomics.load(i32, UP_HEAD) !== Atomics.load(i32, UP_TAIL)) {
    await new Promise((r) => setTimeout(r, 1))
  }
}
// The reply to call `id` as the runner wrote it in the down ring: [kind, its JSON], or
// "no reply" after a second. (The worker reads the ring too and drops replies to ids it did
// not make; the bytes stay where they are.)
async function answer(id) {
  for (let tries = 0; tries < 100; tries++) {
    const tail = Atomics.load(i32, DOWN_TAIL) >>> 0
    for (let at = 0; at + 4 <= tail && tail <= RING;) {
      const length = getU32(u8, DOWN_DATA + at)
      const record = u8.slice(DOWN_DATA + at + 4, DOWN_DATA + at + 4 + length)
      if (record[0] !== 80 && getU32(record, 1) === id) {
        const json = new TextDecoder().decode(record.slice(5))
        return [String.fromCharCode(record[0]), JSON.parse(json)]
      }
      at += 4 + length
    }
    await new Promise((r) => setTimeout(r, 10))
  }
  return "no reply"
}
"""


def channel_program(body: str) -> str:
    """A program with CHANNEL_JS's means before ``body``."""
    return CHANNEL_JS + body
