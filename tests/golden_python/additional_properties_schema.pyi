from typing import Any, Literal, Never, NotRequired, TypedDict, overload


async def external_additional_properties_schema(
    *,
    name: str,
    count: int = ...,
    **extra: bool,
) -> Any:
    """Declared keys plus typed extra keys.

    Args:
        **extra: Feature flags.
    """
