from typing import Any, Literal, Never, NotRequired, TypedDict, overload


async def external_union_array_items(
    *,
    ids: list[str | float],
    matrix: list[list[int | None]] = ...,
) -> Any:
    """Arrays of unions are parenthesised."""
