from typing import Any, Literal, Never, NotRequired, TypedDict, overload


@overload
async def external_root_anyof_with_properties(
    *,
    id: str,
    email: str = ...,
    include_deleted: bool = False,
) -> Any:
    """Look up a user by id or by email.

    Args:
        id: User id.
        email:
            format: email
    """

@overload
async def external_root_anyof_with_properties(
    *,
    email: str,
    id: str = ...,
    include_deleted: bool = False,
) -> Any: ...
