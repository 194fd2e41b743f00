"""Where durable executions wait: the ``ExecutionStore`` protocol and its implementations.

``SqliteStore(path)`` is the default (stdlib ``sqlite3``, WAL, safe across processes on one
host). ``RedisStore(url)`` (extra ``codemode[redis]``) and ``PostgresStore(dsn)`` (extra
``codemode[postgres]``) are shared by the hosts of a deployment; they are imported on first
use, so this package needs neither extra. ``open_store(location)`` picks one from a path or
URL. Pass a store to ``create_code_mode(..., store=...)`` to let executions pause for
approvals and resume later, in this process or another.
"""

from typing import TYPE_CHECKING, Any

from ._base import (
    CallError,
    CallRecord,
    CallState,
    Decision,
    DecisionError,
    ExecutionExpiredError,
    ExecutionNotFoundError,
    ExecutionNotPausedError,
    ExecutionState,
    ExecutionStatus,
    ExecutionStore,
    ExecutionStoreError,
    ExecutionSummary,
    LeaseLostError,
    NewExecution,
    PendingApproval,
    PruneReport,
)
from ._open import open_store
from .sqlite import SqliteStore

if TYPE_CHECKING:
    from .postgres import PostgresStore as PostgresStore
    from .redis import RedisStore as RedisStore

# The stores on a server, by the extra their driver comes from.
_OPTIONAL = {"RedisStore": ("redis", "redis"), "PostgresStore": ("postgres", "postgres")}


def __getattr__(name: str) -> Any:
    """Import ``RedisStore`` / ``PostgresStore`` when first named, with the fix when their
    driver is missing."""
    if name not in _OPTIONAL:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, extra = _OPTIONAL[name]
    try:
        imported = __import__(f"{__name__}.{module}", fromlist=[name])
    except ImportError as exc:
        raise ImportError(
            f"{name} needs the {extra} extra, which is not installed ({exc}); "
            f"pip install 'codemode[{extra}]'"
        ) from exc
    value = getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, *_OPTIONAL])


__all__ = [
    "CallError",
    "CallRecord",
    "CallState",
    "Decision",
    "DecisionError",
    "ExecutionExpiredError",
    "ExecutionNotFoundError",
    "ExecutionNotPausedError",
    "ExecutionState",
    "ExecutionStatus",
    "ExecutionStore",
    "ExecutionStoreError",
    "ExecutionSummary",
    "LeaseLostError",
    "NewExecution",
    "PendingApproval",
    "PruneReport",
    "SqliteStore",
    "open_store",
]
# RedisStore and PostgresStore are left out of __all__ so that `from codemode.stores import *`
# works without their extras.
