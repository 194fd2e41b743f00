from typing import Any, Literal, Never, NotRequired, TypedDict, overload


class Query(TypedDict):
    all: NotRequired[list[Filter | Query]]
    any: NotRequired[list[Filter | Query]]


class Filter(TypedDict):
    field: str
    op: Literal["=", "!=", "~", "in"]
    value: str | float | list[str]


async def external_search_issues(*, query: Query, limit: int = 20) -> Any:
    """Search issues with a query, across trackers."""
