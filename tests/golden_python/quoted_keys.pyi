from typing import Any, Literal, Never, NotRequired, TypedDict, overload


QuotedKeysInput = TypedDict(
    "QuotedKeysInput",
    {
        "content-type": str,
        "x y": NotRequired[float],
        "2fa": NotRequired[bool],
        "default": str,
        "$ref_like": NotRequired[str],
        "ünïcode": NotRequired[str],
        "a\"b": NotRequired[str],
    },
)


async def external_quoted_keys(input: QuotedKeysInput, /) -> Any:
    """Property names that are not identifiers are quoted."""
