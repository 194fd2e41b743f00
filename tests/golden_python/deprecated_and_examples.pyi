from typing import Any, Literal, Never, NotRequired, TypedDict, overload


async def external_deprecated_and_examples(*, q: str, page: int = ..., cursor: str = ...) -> Any:
    '''Deprecated fields and examples.

    Args:
        q:
            example: "cats"
            example: "dogs"
        page: Use cursor instead.
            deprecated
        cursor:
            example: "abc=="
    '''
