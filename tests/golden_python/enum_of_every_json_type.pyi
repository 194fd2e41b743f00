from typing import Any, Literal, Never, NotRequired, TypedDict, overload


class EnumOfEveryJsonTypeShape(TypedDict):
    kind: Literal["circle"]
    r: list[Literal[1, 2]]


async def external_enum_of_every_json_type(
    *,
    mode: Literal["fast", "slow", 3, True] | float | None,
    version: Literal["v1"],
    level: Literal[1, 2, 3] = ...,
    shape: EnumOfEveryJsonTypeShape = ...,
) -> Any:
    """Enums and consts of any JSON type."""
