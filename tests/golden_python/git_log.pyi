from typing import Any, Literal, Never, NotRequired, TypedDict, overload


class GitLogOutput(TypedDict):
    commits: list[Commit]


class Commit(TypedDict):
    sha: str
    author: str
    date: str
    """format: date-time"""
    message: str
    parents: list[str]


async def external_git_log(
    *,
    repo_path: str,
    max_count: int = 10,
    since: str | None = None,
) -> GitLogOutput:
    """Shows the commit logs.

    Args:
        max_count:
            minimum: 1
        since:
            format: date
    """
