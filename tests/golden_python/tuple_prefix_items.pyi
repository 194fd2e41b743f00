from typing import Any, Literal, Never, NotRequired, TypedDict, overload


async def external_tuple_prefix_items(
    *,
    point: tuple[float, float],
    range: tuple[int] | tuple[int, int] = ...,
    row: tuple[str, *tuple[float, ...]] = ...,
) -> Any:
    """Tuples from prefixItems (2020-12)."""
