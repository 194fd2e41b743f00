from typing import Any, Literal, Never, NotRequired, TypedDict, overload


class OutputTypesOutput(TypedDict):
    """The stored record."""

    id: str
    size: int
    meta: dict[str, str] | None


async def external_output_types(*, id: str) -> OutputTypesOutput:
    """Output schemas give the return type.

    Returns:
        The stored record.
    """
