"""Where durable executions wait: the ``ExecutionStore`` protocol and its implementations.

``SqliteStore(path)`` is the default (stdlib ``sqlite3``, WAL, safe across processes on one
host). Pass a store to ``create_code_mode(..., store=...)`` to let executions pause for
approvals and resume later, in this process or another.
"""

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
from .sqlite import SqliteStore

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
]
