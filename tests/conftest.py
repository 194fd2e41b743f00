"""Shared fixtures: a real DenoSandbox, a census of what sandboxes could leave behind (Deno
processes, file descriptors, temp directories), and a sampler of the host's own memory."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from codemode import DenoSandbox


@pytest.fixture
async def deno_sandbox() -> AsyncIterator[DenoSandbox]:
    """A ``DenoSandbox`` with default settings, closed after the test."""
    async with DenoSandbox() as sandbox:
        yield sandbox


@dataclass(frozen=True)
class Resources:
    """What this test process holds that a sandbox could leak."""

    deno_pids: frozenset[int]  # zombies included: an unreaped process leaks too
    fds: frozenset[str]  # "fd -> what it is open on"
    temp_dirs: frozenset[str]  # sandbox working directories (the shared DENO_DIR excluded)


def open_fds() -> frozenset[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            found.add(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
    return frozenset(found)


class Census:
    """Counts the Deno processes this process started, its open file descriptors and the
    sandbox directories under ``temp_root``."""

    def __init__(self, temp_root: Path) -> None:
        self.temp_root = temp_root

    def deno_processes(self) -> list[psutil.Process]:
        found = []
        for child in psutil.Process().children(recursive=True):
            try:
                if child.name() == "deno":
                    found.append(child)
            except psutil.NoSuchProcess:
                pass
        return found

    def now(self) -> Resources:
        dirs = frozenset(
            path.name
            for path in self.temp_root.glob("codemode-*")
            if not path.name.startswith("codemode-deno-")
        )
        pids = frozenset(process.pid for process in self.deno_processes())
        return Resources(deno_pids=pids, fds=open_fds(), temp_dirs=dirs)

    async def settled(self, expected: Resources, within: float = 5.0) -> Resources:
        """The census once it equals ``expected`` (reaping is asynchronous) or after
        ``within`` seconds: compare the result with ``expected``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while (now := self.now()) != expected and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return now


@pytest.fixture
def census(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Census]:
    """A census over a temp directory of this test's own: every sandbox created during the
    test puts its files there, so no other test run on the machine can disturb the count
    (the path is short: unix socket paths are limited to 108 bytes)."""
    tmp_path_factory.getbasetemp()  # pytest's own temp root stays where it belongs
    root = Path(tempfile.mkdtemp(prefix="cm-"))
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    yield Census(root)
    shutil.rmtree(root, ignore_errors=True)


class HostMemory:
    """Samples this process's RSS from a thread (a busy event loop cannot hide a peak) while
    the ``with`` block runs; ``growth_mb`` is the peak over the RSS at the start."""

    def __init__(self, interval: float = 0.01) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.start = self.peak = 0

    def _sample(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> HostMemory:
        self.start = self.peak = self._process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


@pytest.fixture
def host_memory() -> type[HostMemory]:
    """``with host_memory() as memory: ...`` then check ``memory.growth_mb``."""
    return HostMemory


# -- real database servers for the stores (tests/_servers.py) -------------------------------------
def _server_or_skip(start: Any) -> Iterator[Any]:
    """A server started for one test module, or a skip that says what is missing (a failure
    when CODEMODE_TEST_SERVERS=required, as in CI, where a skip would hide a broken install).

    Module scope, not session: the servers are children of this process, and modules that
    check that their tests leave no process behind (test_mcp.py) must not see them."""
    from _servers import ServerMissing

    try:
        with start() as server:
            yield server
    except ServerMissing as exc:
        if os.environ.get("CODEMODE_TEST_SERVERS") == "required":
            pytest.fail(f"a database server is required here: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """The URL of a real redis-server started for this module (on a free loopback port)."""
    from _servers import redis_server

    for server in _server_or_skip(redis_server):
        yield server.url


@pytest.fixture(scope="module")
def postgres_dsn() -> Iterator[str]:
    """The DSN of a real throwaway Postgres cluster started for this module (initdb + postgres
    on a free loopback port, as an unprivileged user when the tests run as root)."""
    from _servers import postgres_server

    for server in _server_or_skip(postgres_server):
        yield server.dsn
