from typing import Any, Literal, Never, NotRequired, TypedDict, overload


async def external_comment_injection(*, a: str, b: str = "/* x */") -> Any:
    r"""A description with */ inside cannot end the comment. */ declare const x: 1; /*

    Args:
        a: Closes early */ const oops = 1; /* and
            spans lines */
        b:
            pattern: ^/\*.*\*/$
    """
