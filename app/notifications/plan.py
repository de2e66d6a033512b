"""Deciding who hears about a finished run or a deployment: rules, pipeline entries and email preferences.

Planning only writes delivery rows; sending is app.notifications.delivery's job. Each
row's `dedupe_key` is unique per (run or deployment, channel, event, recipient). Rows
are inserted with ON CONFLICT DO NOTHING, so planning twice (a retried RQ job) adds
nothing. A rule and a pipeline entry that name the same channel therefore send once.

A pipeline's own entries (`plan["notifications"]`) may only use what the project
configured, so a pipeline cannot send run details to an address of its choosing:
- `channel` names a channel of the project, by its name or by its kind (then every
  enabled channel of that kind); a URL or unknown name is rejected;
- `to` is accepted only for email, and only addresses of project members or addresses
  the email channel already lists; other channels send where they are configured.
A rejected entry is recorded as a failed delivery with the reason, visible on the
project's notification settings page.
"""

import logging
from dataclasses import dataclass
from fnmatch import fnmatchcase

from flask import current_app
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from app.extensions import db
from app.models import (
    DeliveryStatus, Membership, NotificationChannel, NotificationDelivery, NotificationPreference, NotificationRule,
    Run, User,
)
from app.models._columns import utcnow
from app.notifications.channels import UnknownChannelError, channel_class
from app.notifications.events import Event, pipeline_events, run_events
from app.notifications.message import Message, run_message
from app.status import TERMINAL_RUN

log = logging.getLogger(__name__)


@dataclass
class Target:
    """One channel that should hear about one event, maybe restricted to some recipients."""

    channel: NotificationChannel
    event: Event
    source: str
    # For email: the addresses a pipeline entry chose; None means the channel's own recipients.
    recipients: list[str] | None = None


def branch_matches(patterns: list[str], branch: str | None) -> bool:
    """Return True if a rule with these branch globs covers `branch`; no patterns covers every run."""
    if not patterns:
        return True
    return branch is not None and any(fnmatchcase(branch, pattern) for pattern in patterns)


def plan_run(run_id: int) -> list[int]:
    """Create the deliveries for a finished run; return the ids of its deliveries still waiting to be sent."""
    run = db.session.get(Run, run_id)
    if run is None or run.status not in TERMINAL_RUN:
        log.info("run %s: no notifications planned, the run is missing or has not ended", run_id)
        return []
    events = run_events(run)
    base_url = current_app.config["BASE_URL"]
    if events:
        targets = rule_targets(run.project_id, events, run.branch) + pipeline_targets(run, events)
        for target in targets:
            message = run_message(run, target.event, base_url)
            _insert_target(target, message, key_prefix=f"run:{run.id}", run_id=run.id)
        db.session.commit()
    return waiting_deliveries(NotificationDelivery.run_id == run.id)


def plan_deployment(project_id: int, event: Event, deployment_id: int | str, message: Message,
                    branch: str | None) -> list[int]:
    """Create the deliveries for one deployment event; return the ids still waiting to be sent."""
    key_prefix = f"deployment:{deployment_id}"
    for target in rule_targets(project_id, [event], branch):
        _insert_target(target, message, key_prefix=key_prefix, run_id=message.run_id)
    db.session.commit()
    return waiting_deliveries(NotificationDelivery.dedupe_key.startswith(key_prefix + ":"))


def waiting_deliveries(condition) -> list[int]:
    return list(db.session.scalars(
        select(NotificationDelivery.id).where(condition, NotificationDelivery.status == DeliveryStatus.PENDING)
        .order_by(NotificationDelivery.id)
    ))


def rule_targets(project_id: int, events: list[Event], branch: str | None) -> list[Target]:
    """Return a target per enabled rule that matches the branch, with the most specific event it subscribes to."""
    rules = db.session.scalars(
        select(NotificationRule).join(NotificationRule.channel)
        .where(NotificationRule.project_id == project_id, NotificationRule.enabled, NotificationChannel.enabled)
        .order_by(NotificationRule.id)
    ).all()
    targets = []
    for rule in rules:
        event = next((event for event in events if event in rule.events), None)
        if event is not None and branch_matches(rule.branches, branch):
            targets.append(Target(rule.channel, event, "rule"))
    return targets


def pipeline_targets(run: Run, events: list[Event]) -> list[Target]:
    """Return the targets of the run's pipeline entries; record every rejected entry as a failed delivery."""
    entries = (run.plan or {}).get("notifications") or []
    if not isinstance(entries, list):
        _reject(run, 0, f"'notifications' must be a list, found {type(entries).__name__}")
        return []
    targets = []
    for index, entry in enumerate(entries):
        problem, found = _pipeline_entry_targets(run, entry, events)
        if problem:
            _reject(run, index, problem)
        targets += found
    return targets


def _pipeline_entry_targets(run: Run, entry, events: list[Event]) -> tuple[str | None, list[Target]]:
    if not isinstance(entry, dict) or not isinstance(entry.get("channel"), str):
        return "each entry needs a 'channel' naming a channel of the project", []
    words = entry.get("on") or ["failure"]
    subscribed = pipeline_events(words if isinstance(words, list) else [words])
    event = next((event for event in events if event in subscribed), None)
    if event is None:
        return None, []
    channels = _project_channels(run.project_id, entry["channel"])
    if not channels:
        return f"channel {entry['channel']!r} is not a channel of project {run.project.name!r}", []
    to = entry.get("to")
    recipients = [to] if isinstance(to, str) else to
    if recipients is None:
        return None, [Target(channel, event, "pipeline") for channel in channels]
    if any(channel.kind != "email" for channel in channels):
        return f"'to' is accepted only for email channels; {entry['channel']!r} sends where it is configured", []
    targets, rejected = [], []
    for channel in channels:
        allowed = _allowed_pipeline_recipients(channel, run.project_id)
        chosen = [address for address in recipients if isinstance(address, str) and address.lower() in allowed]
        rejected += [address for address in recipients if address not in chosen]
        targets.append(Target(channel, event, "pipeline", chosen))
    if rejected:
        return (f"'to' address {rejected[0]!r} is not a project member's or listed by the channel", targets)
    return None, targets


def _project_channels(project_id: int, reference: str) -> list[NotificationChannel]:
    channels = db.session.scalars(
        select(NotificationChannel).where(NotificationChannel.project_id == project_id, NotificationChannel.enabled)
        .order_by(NotificationChannel.id)
    ).all()
    by_name = [channel for channel in channels if channel.name == reference]
    return by_name or [channel for channel in channels if channel.kind == reference]


def _allowed_pipeline_recipients(channel: NotificationChannel, project_id: int) -> set[str]:
    listed = {address.lower() for address in channel.settings.get("to") or []}
    return listed | {address.lower() for address in member_addresses(project_id)}


def member_addresses(project_id: int) -> list[str]:
    """Return the email addresses of the project's active members."""
    return list(db.session.scalars(
        select(User.email).join(Membership, Membership.user_id == User.id)
        .where(Membership.project_id == project_id, User.active, User.email.is_not(None), User.email != "")
    ))


def opted_out_addresses(project_id: int) -> set[str]:
    """Return the lower-cased addresses of people who turned email off for the project."""
    return {address.lower() for address in db.session.scalars(
        select(User.email).join(NotificationPreference, NotificationPreference.user_id == User.id)
        .where(NotificationPreference.project_id == project_id, NotificationPreference.email_enabled.is_(False),
               User.email.is_not(None))
    )}


def email_recipients(channel: NotificationChannel, chosen: list[str] | None = None) -> list[str]:
    """Return the addresses an email channel sends to, without people who turned email off for the project."""
    if chosen is not None:
        addresses = chosen
    else:
        addresses = list(channel.settings.get("to") or [])
        if channel.settings.get("members", True):
            addresses += member_addresses(channel.project_id)
    excluded = opted_out_addresses(channel.project_id)
    unique = {address.lower(): address for address in addresses if address.lower() not in excluded}
    return sorted(unique.values(), key=str.lower)


def _insert_target(target: Target, message: Message, key_prefix: str, run_id: int | None) -> None:
    try:
        per_recipient = channel_class(target.channel.kind).per_recipient
    except UnknownChannelError:
        per_recipient = False
    recipients = email_recipients(target.channel, target.recipients) if per_recipient else [None]
    for recipient in recipients:
        key = f"{key_prefix}:channel:{target.channel.id}:{target.event}:{(recipient or '-').lower()}"
        insert_delivery(target.channel.project_id, key, message, event=target.event, source=target.source,
                        channel_id=target.channel.id, run_id=run_id, recipient=recipient)


def insert_delivery(project_id: int, key: str, message: Message, *, event: str, source: str,
                    channel_id: int | None, run_id: int | None, recipient: str | None = None,
                    status: DeliveryStatus = DeliveryStatus.PENDING, error: str | None = None) -> None:
    """Add a delivery row unless one with the same key exists."""
    now = utcnow()
    db.session.execute(insert(NotificationDelivery).values(
        project_id=project_id, channel_id=channel_id, run_id=run_id, event=event, source=source, recipient=recipient,
        dedupe_key=key, message=message.to_dict(), status=status, attempts=0, last_error=error,
        created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["dedupe_key"]))


def _reject(run: Run, index: int, reason: str) -> None:
    log.warning("run %s: pipeline notification %s rejected: %s", run.id, index, reason)
    events = run_events(run)
    message = run_message(run, events[0] if events else Event.RUN_FAILED, current_app.config["BASE_URL"])
    insert_delivery(run.project_id, f"run:{run.id}:pipeline-entry:{index}", message, event=message.event,
                    source="pipeline", channel_id=None, run_id=run.id, status=DeliveryStatus.FAILED,
                    error=f"Pipeline notification {index + 1} rejected: {reason}.")
