from typing import Any, Literal, Never, NotRequired, TypedDict, overload


class ReadFileOutput(TypedDict):
    content: str


async def external_read_file(*, path: str, head: int = ..., tail: int = ...) -> ReadFileOutput:
    """Read the complete contents of a file from the file system.

    Args:
        path: Absolute path of the file.
        head: Return only the first N lines.
        tail: Return only the last N lines.
    """
