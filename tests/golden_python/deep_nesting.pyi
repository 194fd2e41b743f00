from typing import Any, Literal, Never, NotRequired, TypedDict, overload


class DeepNestingABCDItem(TypedDict):
    e: str


class DeepNestingABC(TypedDict):
    d: list[DeepNestingABCDItem]


class DeepNestingAB(TypedDict):
    c: DeepNestingABC


class DeepNestingA(TypedDict):
    b: DeepNestingAB


async def external_deep_nesting(*, a: DeepNestingA) -> Any:
    """Nested objects render as indented blocks."""
