from typing import Any, Literal, Never, NotRequired, TypedDict, overload


class EditFileEditsItem(TypedDict):
    oldText: str
    """Text to search for - must match exactly"""
    newText: str
    """Text to replace with"""


async def external_edit_file(
    *,
    path: str,
    edits: list[EditFileEditsItem],
    dryRun: bool = False,
) -> Any:
    """Make line-based edits to a text file.

    Args:
        dryRun: Preview changes using git-style diff format
    """
