from typing import Any, Literal, Never, NotRequired, TypedDict, overload


async def external_pattern_properties(
    *,
    S_name: str = ...,
    count: int = ...,
    **extra: str | int,
) -> Any:
    """Keys matching patterns.

    Args:
        **extra: Keys matching /^S_/: str.
            Keys matching /^I_[0-9]+$/: int.
    """
