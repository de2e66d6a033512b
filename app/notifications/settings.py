"""Managing a project's channels, rules and people's email preferences, and test sends.

The web views call these with plain values; each checks its input and raises
NotificationSettingsError with every problem found, so a form can show them all.
"""

import logging
import re
import uuid

from flask import current_app
from sqlalchemy import select

from app.extensions import db
from app.models import (
    NotificationChannel, NotificationDelivery, NotificationPreference, NotificationRule, Project, User,
)
from app.notifications.channels import Channel, Field, UnknownChannelError, channel_class
from app.notifications.crypto import SecretsError, decrypt_secrets, encrypt_secrets
from app.notifications.delivery import enqueue_deliveries
from app.notifications.events import Event
from app.notifications.message import Message
from app.notifications.plan import insert_delivery

log = logging.getLogger(__name__)

VALID_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
TRUE_WORDS = {"1", "true", "on", "yes"}


class NotificationSettingsError(ValueError):
    """Submitted notification settings are invalid; `problems` lists every problem as a sentence."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


def parse_field(item: Field, raw: str | None):
    """Convert a submitted form value to the field's type; raise ValueError with a sentence if it does not fit."""
    text = (raw or "").strip()
    if item.type == "bool":
        return text.lower() in TRUE_WORDS
    if item.type == "list":
        return [part.strip() for part in re.split(r"[,\n]", text) if part.strip()]
    if not text:
        return item.default if not item.secret else None
    if item.type == "int":
        if not text.isdigit():
            raise ValueError(f"{item.label} must be a whole number, found {text!r}.")
        return int(text)
    if item.type == "select" and text not in item.choices:
        raise ValueError(f"{item.label} {text!r} is invalid: expected one of {', '.join(item.choices)}.")
    if item.type == "url" and not re.match(r"^https?://", text):
        raise ValueError(f"{item.label} must start with http:// or https://, found {text[:40]!r}.")
    return text


def add_channel(project: Project, name: str, kind: str, values: dict[str, str], user_id: int | None) -> NotificationChannel:
    """Create a channel from submitted form values; secrets are encrypted before they are stored."""
    problems = []
    if not VALID_CHANNEL_NAME.match(name or ""):
        problems.append(f"Channel name {name!r} is invalid: use up to 100 ASCII letters, digits, '.', '_' and '-'.")
    elif db.session.scalar(select(NotificationChannel.id).where(NotificationChannel.project_id == project.id,
                                                                 NotificationChannel.name == name)):
        problems.append(f"Project {project.name!r} has a channel named {name!r} already. Choose another name.")
    try:
        kind_class = channel_class(kind)
    except UnknownChannelError as error:
        raise NotificationSettingsError(problems + [f"{error}."]) from error
    settings, secrets = {}, {}
    for item in kind_class.fields:
        try:
            value = parse_field(item, values.get(item.name))
        except ValueError as error:
            problems.append(str(error))
            continue
        if value not in (None, ""):
            (secrets if item.secret else settings)[item.name] = value
    problems += kind_class.validate(settings, secrets)
    if problems:
        raise NotificationSettingsError(problems)

    channel = NotificationChannel(
        project_id=project.id, name=name, kind=kind, settings=settings, enabled=True, created_by_id=user_id,
        secrets=encrypt_secrets(current_app.config["SECRET_KEY"], secrets) if secrets else None,
    )
    db.session.add(channel)
    db.session.commit()
    log.info("project %s: notification channel %s (%s) added by user %s", project.id, channel.id, kind, user_id)
    return channel


def delete_channel(project: Project, channel_id: int) -> None:
    """Delete a channel and its rules; its past deliveries stay, without the channel."""
    channel = _project_row(NotificationChannel, project, channel_id)
    db.session.delete(channel)
    db.session.commit()
    log.info("project %s: notification channel %s deleted", project.id, channel_id)


def add_rule(project: Project, channel_id: str | int | None, events: list[str], branches: str) -> NotificationRule:
    """Create a rule sending the chosen events on branches matching the globs to one channel."""
    problems = []
    channel = None
    try:
        channel = _project_row(NotificationChannel, project, int(channel_id or 0))
    except (LookupError, ValueError):
        problems.append("Choose one of the project's channels.")
    unknown = [event for event in events if event not in Event.__members__.values()]
    if unknown:
        problems.append(f"Event {unknown[0]!r} is invalid: expected one of {', '.join(Event)}.")
    if not events:
        problems.append("Choose at least one event.")
    if problems:
        raise NotificationSettingsError(problems)

    patterns = [part.strip() for part in re.split(r"[,\n]", branches or "") if part.strip()]
    rule = NotificationRule(project_id=project.id, channel_id=channel.id, events=sorted(set(events)),
                            branches=patterns, enabled=True)
    db.session.add(rule)
    db.session.commit()
    log.info("project %s: notification rule %s added for channel %s", project.id, rule.id, channel.id)
    return rule


def delete_rule(project: Project, rule_id: int) -> None:
    """Delete one rule of the project."""
    db.session.delete(_project_row(NotificationRule, project, rule_id))
    db.session.commit()


def _project_row(model, project: Project, row_id: int):
    row = db.session.get(model, row_id)
    if row is None or row.project_id != project.id:
        raise LookupError(f"Project {project.name!r} has no {model.__tablename__[:-1].replace('_', ' ')} {row_id}.")
    return row


def email_enabled(user_id: int, project_id: int) -> bool:
    """Return whether the person gets the project's email notifications (on unless they turned it off)."""
    preference = db.session.scalar(select(NotificationPreference).where(
        NotificationPreference.user_id == user_id, NotificationPreference.project_id == project_id))
    return preference is None or preference.email_enabled


def set_email_enabled(user_id: int, project_id: int, enabled: bool) -> None:
    """Turn the person's email notifications for the project on or off."""
    preference = db.session.scalar(select(NotificationPreference).where(
        NotificationPreference.user_id == user_id, NotificationPreference.project_id == project_id))
    if preference is None:
        preference = NotificationPreference(user_id=user_id, project_id=project_id)
        db.session.add(preference)
    preference.email_enabled = enabled
    db.session.commit()
    log.info("user %s: email notifications for project %s turned %s", user_id, project_id, "on" if enabled else "off")


def send_test(project: Project, channel_id: int, user: User) -> int:
    """Queue a test message to a channel (for email, to the person asking); return the delivery id."""
    channel = _project_row(NotificationChannel, project, channel_id)
    recipient = None
    if channel_class(channel.kind).per_recipient:
        recipient = user.email or next(iter(channel.settings.get("to") or []), None)
        if not recipient:
            raise NotificationSettingsError(["Add an email address to your account, or to the channel's recipients."])
    message = Message(
        event="test", title=f"Test notification for {project.name}", status="test", project=project.name,
        url=f"{current_app.config['BASE_URL'].rstrip('/')}/projects/{project.name}/notifications",
        reason=f"Sent from the notification settings by {user.username}",
    )
    key = f"test:{uuid.uuid4()}"
    insert_delivery(project.id, key, message, event="test", source="test", channel_id=channel.id, run_id=None,
                    recipient=recipient)
    db.session.commit()
    delivery_id = db.session.scalar(select(NotificationDelivery.id).where(NotificationDelivery.dedupe_key == key))
    enqueue_deliveries([delivery_id])
    return delivery_id


def describe_channel(channel: NotificationChannel) -> str:
    """Return where the channel sends, without secrets, or why that cannot be shown."""
    try:
        kind_class = channel_class(channel.kind)
        secrets = decrypt_secrets(current_app.config["SECRET_KEY"], channel.secrets)
    except (UnknownChannelError, SecretsError) as error:
        return str(error)
    instance: Channel = kind_class(settings=channel.settings, secrets=secrets)
    return instance.describe()
