"""Real Redis and Postgres servers for the store tests, started by the tests themselves: each
on a free loopback port, with its files in a temporary directory, stopped (and the directory
removed) at the end. Where a server cannot run here, ``ServerMissing`` says what is missing.

Postgres refuses to run as root, so under root (CI) the cluster runs as an unprivileged user:
``postgres`` when the Debian package made it, else ``nobody``.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PostgresServer", "RedisServer", "ServerMissing", "postgres_server", "redis_server"]

START_TIMEOUT_S = 60.0
INSTALL = "apt-get install redis-server postgresql (as .ci/run does)"


class ServerMissing(Exception):
    """A server these tests need cannot run on this machine; the message says why."""


@dataclass(frozen=True)
class RedisServer:
    url: str


@dataclass(frozen=True)
class PostgresServer:
    dsn: str  # postgresql://postgres@127.0.0.1:PORT/postgres


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    """In the child: be sent SIGTERM if the test process dies, so no server outlives it."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def _stop(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


# -- Redis ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def redis_server(*, durable: bool = False) -> Iterator[RedisServer]:
    """A throwaway redis-server. ``durable``: its append-only file synced on every write (as a
    deployment that must not lose a recorded call runs it), else no persistence (tests)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerMissing(f"redis-server is not installed; {INSTALL}")
    directory = Path(tempfile.mkdtemp(prefix="codemode-redis-"))
    try:
        for _attempt in range(5):  # another run may take the free port first: pick again
            port = _free_port()
            log = directory / "redis.log"
            process = subprocess.Popen(
                [
                    binary,
                    "--port", str(port),
                    "--bind", "127.0.0.1",
                    "--dir", str(directory),
                    "--save", "",
                    "--appendonly", "yes" if durable else "no",
                    "--appendfsync", "always",
                    "--logfile", str(log),
                    "--daemonize", "no",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )  # fmt: skip
            try:
                if _wait_until_up(process, port):
                    yield RedisServer(f"redis://127.0.0.1:{port}/0")
                    return
            finally:
                _stop(process, signal.SIGTERM)
        raise ServerMissing(f"redis-server did not start: {_tail(directory / 'redis.log')}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _wait_until_up(
    process: subprocess.Popen[bytes], port: int, ready: Callable[[], bool] | None = None
) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if _accepts(port) and (ready is None or ready()):
            return True
        time.sleep(0.02)
    return False


# -- Postgres ------------------------------------------------------------------------------------
def _postgres_binaries() -> tuple[str, str]:
    """initdb and postgres: on PATH, or where Debian's packages put them (not on PATH)."""
    initdb, postgres = shutil.which("initdb"), shutil.which("postgres")
    if initdb and postgres:
        return initdb, postgres

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if os.access(f"{bindir}/initdb", os.X_OK) and os.access(f"{bindir}/postgres", os.X_OK):
            return f"{bindir}/initdb", f"{bindir}/postgres"
    raise ServerMissing(f"PostgreSQL's initdb and postgres are not installed; {INSTALL}")


def _answers(dsn: str) -> bool:
    """Whether the server takes queries (it accepts connections while still starting up)."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def _unprivileged_user() -> pwd.struct_passwd | None:
    """Whom to run Postgres as: None (this user) unless this is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise ServerMissing("running as root, and there is no postgres or nobody user to run as")


@contextlib.contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[PostgresServer]:
    """A throwaway Postgres cluster. ``durable``: fsync on, as any deployment runs it; else
    off (tests: nothing need survive the machine)."""
    initdb, postgres = _postgres_binaries()
    user = _unprivileged_user()
    directory = Path(tempfile.mkdtemp(prefix="codemode-pg-"))
    as_user: dict[str, int] = {}
    if user is not None:
        os.chown(directory, user.pw_uid, user.pw_gid)
        as_user = {"user": user.pw_uid, "group": user.pw_gid}
    data, log = directory / "data", directory / "postgres.log"
    env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TZ": "UTC"}
    try:
        done = subprocess.run(
            [initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            capture_output=True,
            env=env,
            cwd=directory,
            extra_groups=[] if user is not None else None,
            check=False,
            **as_user,  # type: ignore[arg-type]
        )
        if done.returncode != 0:
            raise ServerMissing(f"initdb failed: {done.stderr.decode(errors='replace')[-2000:]}")
        for _attempt in range(5):
            port = _free_port()
            with open(log, "ab") as out:
                process = subprocess.Popen(
                    [
                        postgres,
                        "-D", str(data),
                        "-p", str(port),
                        "-c", "listen_addresses=127.0.0.1",
                        "-c", f"unix_socket_directories={directory}",
                        "-c", f"fsync={'on' if durable else 'off'}",
                        "-c", f"full_page_writes={'on' if durable else 'off'}",
                        "-c", "max_connections=200",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=directory,
                    preexec_fn=_die_with_parent,
                    extra_groups=[] if user is not None else None,
                    **as_user,  # type: ignore[arg-type]
                )  # fmt: skip
            dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            try:
                if _wait_until_up(process, port, functools.partial(_answers, dsn)):
                    yield PostgresServer(dsn)
                    return
            finally:
                _stop(process, signal.SIGINT)  # "fast" shutdown: disconnect clients, stop
        raise ServerMissing(f"postgres did not start: {_tail(log)}")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
