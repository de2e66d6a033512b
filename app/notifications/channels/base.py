"""The interface every notification channel implements, and the result of one send.

A channel is constructed per delivery from the channel row's settings and decrypted
secrets, and `send` makes one attempt. `send` never raises for a delivery failure: it
returns a DeliveryResult whose outcome states whether a retry may succeed. Retrying is
the caller's job (app.notifications.delivery), so a channel never loops or sleeps.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from app.models import AttemptOutcome
from app.notifications.message import Message

# Characters of a response body or reply kept in the attempt record.
RESPONSE_TEXT_LIMIT = 500


@dataclass(frozen=True)
class Field:
    """One setting of a channel kind, as the settings form shows it and validation checks it."""

    name: str
    label: str
    # Secret values are stored encrypted and never shown again.
    secret: bool = False
    required: bool = True
    # "text", "url", "int", "bool", "select" or "list" (comma-separated).
    type: str = "text"
    choices: tuple[str, ...] = ()
    default: str | int | bool | None = None
    help: str = ""


@dataclass
class DeliveryResult:
    """The outcome of one attempt (delivered, retryable or permanent failure) with the receiver's response."""

    outcome: AttemptOutcome
    response_code: int | None = None
    response_text: str | None = None
    error: str | None = None
    # Seconds the receiver asked us to wait (HTTP Retry-After), if it did.
    retry_after: float | None = None

    def __post_init__(self) -> None:
        if self.response_text is not None:
            self.response_text = self.response_text[:RESPONSE_TEXT_LIMIT]

    @classmethod
    def delivered(cls, code: int | None = None, text: str | None = None) -> "DeliveryResult":
        return cls(AttemptOutcome.DELIVERED, code, text)

    @classmethod
    def retryable(cls, error: str, code: int | None = None, text: str | None = None,
                  retry_after: float | None = None) -> "DeliveryResult":
        return cls(AttemptOutcome.RETRYABLE, code, text, error, retry_after)

    @classmethod
    def permanent(cls, error: str, code: int | None = None, text: str | None = None) -> "DeliveryResult":
        return cls(AttemptOutcome.PERMANENT, code, text, error)

    @property
    def ok(self) -> bool:
        return self.outcome == AttemptOutcome.DELIVERED


@dataclass
class Channel(ABC):
    """A way of sending a Message somewhere. Subclasses set `kind`, `label` and `fields` and implement `send`.

    Contract of `send(message)`:
    - makes exactly one attempt and gives up after `timeout` seconds of network silence;
    - returns DeliveryResult.delivered when the receiver accepted the message;
    - returns DeliveryResult.retryable for failures a later attempt may get past (timeouts,
      refused or dropped connections, HTTP 408, 429 with its Retry-After, 5xx, SMTP 4xx);
    - returns DeliveryResult.permanent for failures only a settings change fixes (HTTP 4xx
      such as 401, 403, 404, SMTP 5xx, rejected credentials, invalid settings);
    - never raises for those; an exception that escapes is a bug and is recorded as permanent.
    """

    kind: ClassVar[str]
    label: ClassVar[str]
    fields: ClassVar[tuple[Field, ...]] = ()
    # True for channels that send one message per person (email); the planner then fills `recipient`.
    per_recipient: ClassVar[bool] = False

    settings: dict
    secrets: dict = field(default_factory=dict)
    timeout: float = 10.0
    recipient: str | None = None
    # The delivery's id, which receivers can use to drop a message they already have.
    delivery_id: int | None = None

    @classmethod
    def validate(cls, settings: dict, secrets: dict) -> list[str]:
        """Return every problem with the given settings, as sentences (empty when they are valid)."""
        problems = []
        for item in cls.fields:
            value = (secrets if item.secret else settings).get(item.name)
            if item.required and value in (None, "", []):
                problems.append(f"{item.label} is missing.")
        return problems

    def describe(self) -> str:
        """Return where this channel sends, for the settings page; must not reveal secrets."""
        return self.label

    @abstractmethod
    def send(self, message: Message) -> DeliveryResult:
        """Make one attempt at delivering `message`; see the class docstring for the outcomes."""
