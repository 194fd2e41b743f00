from typing import Any, Literal, Never, NotRequired, TypedDict, overload


class SqlQueryOutput(TypedDict):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


async def external_sql_query(
    *,
    sql: str,
    params: list[str | float | bool | None] = ...,
    database: str = "main",
    timeout_ms: int = ...,
) -> SqlQueryOutput:
    """Run a read-only SQL query.

    Args:
        timeout_ms:
            minimum: 1
    """
