from typing import Any, Literal, Never, NotRequired, TypedDict, overload


class Node(TypedDict):
    """A tree node."""

    label: str
    children: NotRequired[list[Node]]


async def external_recursive_tree(*, root: Node) -> Any:
    """A tree references itself by name."""
