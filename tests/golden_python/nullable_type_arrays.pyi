from typing import Any, Literal, Never, NotRequired, TypedDict, overload


async def external_nullable_type_arrays(
    *,
    name: str | None,
    value: str | float | None,
    flag: bool = ...,
) -> Any:
    """Type arrays keep every member.

    Args:
        name: May be null.
    """
