"""What is particular to each store beyond the shared contract (tests/test_durable_store.py):
naming a store by path or URL, the optional drivers, Postgres's schema, Redis's key expiry, the
server's clock, and the event loop a store belongs to."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from codemode.stores import ExecutionStore, NewExecution, PruneReport, SqliteStore, open_store
from codemode.stores._base import new_owner
from codemode.stores._remote import ServerClock
from test_durable_store import Clock, call, paused


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )


# -- naming a store ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("location", "kind", "where"),
    [
        ("runs.db", "SqliteStore", "runs.db"),
        ("/var/lib/app/runs.db", "SqliteStore", "/var/lib/app/runs.db"),
        ("sqlite:///var/lib/app/runs.db", "SqliteStore", "/var/lib/app/runs.db"),
        ("sqlite://runs.db", "SqliteStore", "runs.db"),
        ("sqlite:runs.db", "SqliteStore", "runs.db"),
        ("redis://localhost:6379/0", "RedisStore", "codemode"),
        ("rediss://cache.internal/2?prefix=billing", "RedisStore", "billing"),
        ("unix:///run/redis.sock", "RedisStore", "codemode"),
        ("postgresql://app@db/app", "PostgresStore", "codemode"),
        ("postgres://app@db/app?schema=approvals&sslmode=require", "PostgresStore", "approvals"),
    ],
)
async def test_a_store_is_named_by_a_path_or_url(location: str, kind: str, where: str) -> None:
    store = open_store(location)
    try:
        assert type(store).__name__ == kind
        assert isinstance(store, ExecutionStore)
        named = {"SqliteStore": "path", "RedisStore": "prefix", "PostgresStore": "schema"}[kind]
        assert getattr(store, named) == where
    finally:
        await store.aclose()  # nothing connected: closing is all it takes


def test_a_bad_location_says_what_a_location_is() -> None:
    forms = (
        "a path to an SQLite file, sqlite:///absolute/path.db, redis://host:6379/0 (rediss://, "
        "unix://), or postgresql://user@host/db"
    )
    with pytest.raises(ValueError) as err:
        open_store("mysql://db/app")
    assert (
        str(err.value)
        == f"unknown store scheme mysql:// in 'mysql://db/app'; a store location is {forms}"
    )
    with pytest.raises(ValueError, match="names no SQLite file"):
        open_store("sqlite://")
    with pytest.raises(ValueError, match="a store location is a path"):
        open_store(" ")


def test_the_query_options_of_a_url_stay_with_the_driver() -> None:
    store = open_store("postgresql://app@db/app?schema=s1&application_name=x")
    assert store._dsn == "postgresql://app@db/app?application_name=x"  # type: ignore[union-attr]


def test_importing_the_stores_needs_no_driver() -> None:
    done = run_python(
        """
        import sys
        import codemode, codemode.stores
        from codemode.stores import *
        assert "redis" not in sys.modules and "psycopg" not in sys.modules, sorted(sys.modules)
        print(codemode.stores.RedisStore.__module__, codemode.stores.PostgresStore.__module__)
        """
    )
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "codemode.stores.redis codemode.stores.postgres\n",
        "",
    )


@pytest.mark.parametrize(
    ("driver", "store", "extra"),
    [("redis", "RedisStore", "redis"), ("psycopg", "PostgresStore", "postgres")],
)
def test_a_missing_driver_names_the_extra_to_install(driver: str, store: str, extra: str) -> None:
    done = run_python(
        f"""
        import sys
        sys.modules["{driver}"] = None  # as if the extra were not installed
        from codemode.stores import open_store
        try:
            from codemode.stores import {store}
        except ImportError as exc:
            print(exc)
        """
    )
    assert done.stdout.startswith(f"{store} needs the {extra} extra, which is not installed (")
    assert done.stdout.endswith(f"); pip install 'codemode[{extra}]'\n")


# -- the server's clock --------------------------------------------------------------------------
async def test_times_are_the_servers_clock_measured_once_a_while() -> None:
    asked: list[float] = []

    async def server() -> float:
        asked.append(1.0)
        import time

        return time.time() + 3600.0  # the server is an hour ahead of this host

    clock = ServerClock(server, refresh=60.0)
    import time

    first = await clock.now()
    second = await clock.now()
    assert abs(first - (time.time() + 3600.0)) < 1.0
    assert second >= first and len(asked) == 1  # one round trip, not one per operation
    assert await ServerClock(server, lambda: 42.0).now() == 42.0


# -- Postgres ------------------------------------------------------------------------------------
@pytest.fixture
def schema() -> str:
    return f"t{uuid.uuid4().hex[:16]}"


async def test_postgres_creates_its_schema_once_when_hosts_start_together(
    postgres_dsn: str, schema: str
) -> None:
    from codemode.stores import PostgresStore

    stores = [PostgresStore(postgres_dsn, schema=schema) for _ in range(6)]
    try:
        # Each store's first use creates the schema if missing; all at once, under the lock.
        await asyncio.gather(*(s.executions() for s in stores))
        await paused(stores[0])
        assert [e.execution_id for e in await stores[5].executions()] == ["e1"]
    finally:
        for s in stores:
            await s.aclose()
    import psycopg

    async with await psycopg.AsyncConnection.connect(postgres_dsn) as conn:
        cursor = await conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "ORDER BY table_name",
            (schema,),
        )
        assert [r[0] for r in await cursor.fetchall()] == [
            "calls",
            "executions",
            "schema_version",
            "tape",
        ]
        cursor = await conn.execute(f'SELECT version FROM "{schema}".schema_version')
        assert await cursor.fetchall() == [(1,)]


async def test_postgres_refuses_tables_of_a_newer_codemode(postgres_dsn: str, schema: str) -> None:
    from codemode.stores import PostgresStore

    async with PostgresStore(postgres_dsn, schema=schema) as store:
        await store.executions()
    import psycopg

    async with await psycopg.AsyncConnection.connect(postgres_dsn, autocommit=True) as conn:
        await conn.execute(f'UPDATE "{schema}".schema_version SET version = 2')
    async with PostgresStore(postgres_dsn, schema=schema) as store:
        with pytest.raises(RuntimeError) as err:
            await store.executions()
    assert str(err.value) == (
        f"schema {schema} was written by a newer codemode (schema version 2, this one knows 1); "
        "upgrade codemode to use it"
    )


async def test_postgres_says_where_it_could_not_connect() -> None:
    import psycopg

    from codemode.stores import PostgresStore

    async with PostgresStore("postgresql://nobody@127.0.0.1:1/none", connect_timeout=1) as store:
        with pytest.raises(psycopg.OperationalError) as err:
            await store.executions()
        assert 'connection to server at "127.0.0.1", port 1 failed: Connection refused' in str(
            err.value
        )
        with pytest.raises(psycopg.OperationalError):  # tried again on the next use
            await store.executions()


# -- Redis ---------------------------------------------------------------------------------------
async def test_redis_keys_expire_after_the_retention_even_without_prune(redis_url: str) -> None:
    import redis.asyncio as aioredis

    from codemode.stores import RedisStore

    prefix = f"t{uuid.uuid4().hex[:16]}"
    async with RedisStore(redis_url, prefix=prefix, keep_finished=3600) as store:
        await paused(store, "e1", ttl=600)
        owner = new_owner()
        await store.create(NewExecution("e2", "t", "code", "{}", 600), owner=owner, lease=30)
        await store.record("e2", owner=owner, calls=[call(1, "started")], tape=["{}"])
        await store.finish("e2", owner=owner, status="completed", result={"success": True})
    client = aioredis.from_url(redis_url)
    try:
        for key, low, high in [
            (f"{prefix}:x:e1", 600 + 3600 - 5, 600 + 3600),  # waits 600 s, then kept 1 h
            (f"{prefix}:c:e1", 600 + 3600 - 5, 600 + 3600),
            (f"{prefix}:t:e1", 600 + 3600 - 5, 600 + 3600),
            (f"{prefix}:x:e2", 3600 - 5, 3600),  # finished: kept 1 h
            (f"{prefix}:c:e2", 3600 - 5, 3600),
            (f"{prefix}:t:e2", 3600 - 5, 3600),
        ]:
            assert low <= await client.ttl(key) <= high, key
    finally:
        await client.aclose()


async def test_redis_prune_drops_the_index_entries_of_expired_keys(redis_url: str) -> None:
    import redis.asyncio as aioredis

    from codemode.stores import RedisStore

    prefix = f"t{uuid.uuid4().hex[:16]}"
    clock = Clock()
    async with RedisStore(redis_url, prefix=prefix, clock=clock) as store:
        await paused(store, "e1", ttl=60)
        await paused(store, "e2", ttl=60)
        client = aioredis.from_url(redis_url)
        try:  # e1's keys expire in Redis (its TTL) before anyone pruned
            await client.delete(f"{prefix}:x:e1", f"{prefix}:c:e1", f"{prefix}:t:e1")
        finally:
            await client.aclose()
        assert [p.execution_id for p in await store.pending()] == ["e2", "e2"]
        assert [s.execution_id for s in await store.executions()] == ["e2"]
        clock.now += 61
        assert await store.prune() == PruneReport(expired=1, deleted=0)
        client = aioredis.from_url(redis_url, decode_responses=True)
        try:
            keys = sorted(await client.keys(f"{prefix}:*"))
            assert keys == sorted(
                [
                    f"{prefix}:x:e2",
                    f"{prefix}:c:e2",
                    f"{prefix}:t:e2",
                    f"{prefix}:updated",
                    f"{prefix}:status:expired",
                    f"{prefix}:finished",
                ]
            )
            assert await client.zrange(f"{prefix}:updated", 0, -1) == ["e2"]
        finally:
            await client.aclose()


# -- one event loop per store --------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_a_server_store_belongs_to_the_loop_that_first_used_it(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from test_durable_store import store_location

    store: Any = open_store(store_location(kind, request, tmp_path))
    asyncio.run(store.executions())
    with pytest.raises(RuntimeError, match="was opened in another event loop"):
        asyncio.run(store.executions())


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_a_script_that_never_closes_its_store_exits_quietly(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # asyncio.run cancels every task at its end; psycopg's pool workers took that for a failed
    # connection attempt and waited forever (the run hung), or were left pending (stderr noise).
    from test_durable_store import store_location

    script = textwrap.dedent(
        """
        import asyncio, sys
        from codemode.stores import open_store
        async def main(store):  # a burst of uses makes the pool grow: connections in flight
            return await asyncio.gather(*(store.executions() for _ in range(8)))
        for _ in range(3):
            print(len(asyncio.run(main(open_store(sys.argv[1])))))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, store_location(kind, request, tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "8\n" * 3, "")


async def test_sqlite_is_no_server_store(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path / "x.db")), SqliteStore)


# -- connections the server dropped ---------------------------------------------------------------
async def test_postgres_replaces_connections_the_server_dropped(
    postgres_dsn: str, schema: str
) -> None:
    import psycopg

    from codemode.stores import PostgresStore

    async with PostgresStore(postgres_dsn, schema=schema) as store:
        await paused(store)
        async with await psycopg.AsyncConnection.connect(postgres_dsn, autocommit=True) as admin:
            cursor = await admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE pid <> pg_backend_pid() AND datname = current_database()"
            )
            row = await cursor.fetchone()
            assert row is not None and row[0] >= 1  # the store's pooled connection is gone
        state = await store.get("e1")  # a failover or restart costs nobody a failed write
        assert state is not None and state.status == "paused"


async def test_redis_reconnects_after_the_server_dropped_its_clients(redis_url: str) -> None:
    import redis.asyncio as aioredis

    from codemode.stores import RedisStore

    async with RedisStore(redis_url, prefix=f"t{uuid.uuid4().hex[:16]}") as store:
        await paused(store)
        admin = aioredis.from_url(redis_url)
        try:
            await admin.client_kill_filter(_type="normal", skipme=True)
        finally:
            await admin.aclose()
        state = await store.get("e1")
        assert state is not None and state.status == "paused"


async def test_redis_a_record_sent_twice_is_written_once(redis_url: str) -> None:
    """The client sends a command again when its connection dropped before the reply: the
    record script must not append the tape chunk twice."""
    from codemode.stores import RedisStore
    from codemode.stores._remote import call_to_json

    async with RedisStore(redis_url, prefix=f"t{uuid.uuid4().hex[:16]}") as store:
        owner = new_owner()
        await store.create(NewExecution("e1", "t", "code", "{}", 60), owner=owner, lease=30)
        await store.record("e1", owner=owner, tape=["{}"])  # connects, loads the script
        args = [owner, "write-1", 1, 1, call_to_json(call(1, "started")), '{"e":[1]}']
        keys = list(store._keys("e1"))
        assert await store._record_script(keys=keys, args=args) == "ok"
        assert await store._record_script(keys=keys, args=args) == "ok"  # the resend

        state = await store.get("e1")
    assert state is not None
    assert state.tape == ("{}", '{"e":[1]}')
    assert [(c.step, c.state) for c in state.calls] == [(1, "started")]
