from typing import Any, Literal, Never, NotRequired, TypedDict, overload


async def external_constraints_in_jsdoc(
    *,
    code: str,
    limit: int = 10,
    ratio: float = ...,
    tags: list[str] = ...,
    old: int = ...,
) -> Any:
    """Constraints the type cannot express go into JSDoc.

    Args:
        code:
            minLength: 3
            maxLength: 8
            pattern: ^[A-Z]+$
        limit: Page size.
            minimum: 1
            maximum: 100
        ratio:
            exclusiveMinimum: 0
            exclusiveMaximum: 1
            multipleOf: 0.01
        tags:
            minItems: 1
            maxItems: 5
            uniqueItems
            items.maxLength: 20
        old:
            exclusiveMinimum: 0
    """
