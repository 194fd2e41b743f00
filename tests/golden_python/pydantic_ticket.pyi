from typing import Any, Literal, Never, NotRequired, TypedDict, overload


class PydanticTicketOutput(TypedDict):
    id: int
    ticket: Ticket
    created: str
    """format: date-time"""
    watchers: list[str]
    """default: []"""
    url: str


type Priority = Literal["low", "high"]


class EmailInput(TypedDict):
    kind: NotRequired[Literal["email"]]
    '''default: "email"'''
    address: str


class SmsInput(TypedDict):
    kind: NotRequired[Literal["sms"]]
    '''default: "sms"'''
    phone: str
    r"""pattern: ^\+[0-9]+$"""


class CommentInput(TypedDict):
    """A comment on a ticket; replies nest."""

    author: str
    body: str
    """Markdown body.
    maxLength: 2000
    """
    replies: NotRequired[list[CommentInput]]
    """default: []"""


class Ticket(TypedDict):
    """Create a support ticket."""

    title: str
    """Short summary.
    minLength: 1
    """
    priority: Priority
    '''default: "low"'''
    due: str | None
    """format: date-time
    default: null
    """
    estimate_hours: float | None
    """minimum: 0
    maximum: 1000
    default: null
    """
    budget: str
    '''default: "0"'''
    tags: list[str]
    """default: []"""
    notify: EmailOutput | SmsOutput
    thread: list[CommentOutput]
    """default: []"""
    coords: tuple[float, float] | None
    """default: null"""
    extra: dict[str, int]
    """default: {}"""


class EmailOutput(TypedDict):
    kind: Literal["email"]
    '''default: "email"'''
    address: str


class SmsOutput(TypedDict):
    kind: Literal["sms"]
    '''default: "sms"'''
    phone: str
    r"""pattern: ^\+[0-9]+$"""


class CommentOutput(TypedDict):
    """A comment on a ticket; replies nest."""

    author: str
    body: str
    """Markdown body.
    maxLength: 2000
    """
    replies: list[CommentOutput]
    """default: []"""


async def external_pydantic_ticket(
    *,
    title: str,
    notify: EmailInput | SmsInput,
    priority: Priority = ...,
    due: str | None = None,
    estimate_hours: float | None = None,
    budget: float | str = "0",
    tags: list[str] = [],
    thread: list[CommentInput] = [],
    coords: tuple[float, float] | None = None,
    extra: dict[str, int] = ...,
) -> PydanticTicketOutput:
    """Create a support ticket (pydantic models).

    Create a support ticket.

    Args:
        title: Short summary.
            minLength: 1
        priority:
            default: "low"
        due:
            format: date-time
        estimate_hours:
            minimum: 0
            maximum: 1000
        extra:
            default: {}
    """
