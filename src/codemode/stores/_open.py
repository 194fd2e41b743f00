"""A store named by a path or URL, as the CLI and configuration files name one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .postgres import PostgresStore
    from .redis import RedisStore
    from .sqlite import SqliteStore

__all__ = ["open_store"]

_FORMS = (
    "a path to an SQLite file, sqlite:///absolute/path.db, redis://host:6379/0 "
    "(rediss://, unix://), or postgresql://user@host/db"
)


def open_store(location: str, **options: Any) -> SqliteStore | RedisStore | PostgresStore:
    """The store at ``location``: a path or ``sqlite://PATH`` (``SqliteStore``; ``sqlite:///x``
    is the absolute path ``/x``), ``redis://``, ``rediss://`` or ``unix://`` (``RedisStore``,
    needs the ``redis`` extra), ``postgresql://`` or ``postgres://`` (``PostgresStore``, needs
    the ``postgres`` extra). ``options`` go to the store's constructor. Nothing connects until
    the store is first used."""
    if not isinstance(location, str) or not location.strip():
        raise ValueError(f"a store location is {_FORMS}; got {location!r}")
    scheme, sep, rest = location.partition("://")
    if not sep or len(scheme) <= 1:  # no scheme (a drive letter is no scheme either): a path
        if location.startswith("sqlite:"):
            rest = location.removeprefix("sqlite:")
            scheme = "sqlite"
        else:
            scheme, rest = "sqlite", location
    scheme = scheme.lower()
    if scheme == "sqlite":
        from .sqlite import SqliteStore

        if not rest:
            raise ValueError(f"{location!r} names no SQLite file; a store location is {_FORMS}")
        return SqliteStore(rest, **options)
    if scheme in ("redis", "rediss", "unix"):
        from .. import stores  # RedisStore is imported when first named (it needs its extra)

        return stores.RedisStore(location, **options)
    if scheme in ("postgresql", "postgres"):
        from .. import stores

        return stores.PostgresStore(location, **options)
    raise ValueError(
        f"unknown store scheme {scheme}:// in {location!r}; a store location is {_FORMS}"
    )
