from typing import Any, Literal, Never, NotRequired, TypedDict, overload


class RecursiveRootInput(TypedDict):
    name: str
    replies: NotRequired[list[RecursiveRootInput]]


async def external_recursive_root(*, name: str, replies: list[RecursiveRootInput] = ...) -> Any:
    """The root schema references itself (#)."""
