"""Notification channels and the registry that maps a kind ("email", "slack", …) to its class.

A plugin adds a channel by subclassing Channel and either calling register_channel
on it, or naming it in its package's entry points under the group
`deno_ci.notification_channels`. Entry points load the first time a kind is looked up.
"""

import logging
from importlib.metadata import entry_points

from app.notifications.channels.base import Channel, DeliveryResult, Field
from app.notifications.channels.discord import DiscordChannel
from app.notifications.channels.email import EmailChannel
from app.notifications.channels.slack import SlackChannel
from app.notifications.channels.teams import TeamsChannel
from app.notifications.channels.webhook import WebhookChannel

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "deno_ci.notification_channels"

_registry: dict[str, type[Channel]] = {}
_entry_points_loaded = False


class UnknownChannelError(LookupError):
    """No channel class is registered for a kind."""


def register_channel(channel_class: type[Channel]) -> type[Channel]:
    """Register a Channel subclass under its `kind`; usable as a class decorator. A later one replaces an earlier one."""
    if not (isinstance(channel_class, type) and issubclass(channel_class, Channel)):
        raise TypeError(f"Cannot register {channel_class!r}: it is not a subclass of Channel")
    if not getattr(channel_class, "kind", None):
        raise TypeError(f"Cannot register {channel_class.__name__}: it has no `kind`")
    _registry[channel_class.kind] = channel_class
    return channel_class


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            register_channel(entry_point.load())
        except Exception:  # noqa: BLE001  (a broken plugin must not take the built-in channels down)
            log.exception("cannot load notification channel plugin %r", entry_point.value)


def channel_class(kind: str) -> type[Channel]:
    """Return the class registered for `kind`; raise UnknownChannelError if there is none."""
    _load_entry_points()
    try:
        return _registry[kind]
    except KeyError:
        raise UnknownChannelError(
            f"Notification channel kind {kind!r} is not registered: expected one of {', '.join(sorted(_registry))}"
        ) from None


def channel_kinds() -> dict[str, type[Channel]]:
    """Return every registered kind with its class, sorted by kind."""
    _load_entry_points()
    return dict(sorted(_registry.items()))


for _builtin in (EmailChannel, SlackChannel, TeamsChannel, DiscordChannel, WebhookChannel):
    register_channel(_builtin)

__all__ = ["Channel", "DeliveryResult", "Field", "UnknownChannelError", "channel_class", "channel_kinds",
           "register_channel"]
