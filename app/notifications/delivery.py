"""Sending planned deliveries: claim, one attempt, record, and schedule a retry that fits the error.

A delivery is sent at most once. `deliver` claims its row with a conditional update
(pending or due for retry becomes sending) before it sends, so a job delivered twice,
or two jobs for one row, make one attempt between them. If a worker dies while
sending, the row stays `sending`; `enqueue_due_deliveries` later marks it failed
instead of retrying, because the message may have gone out.

Retries are driven by the database, not by RQ: a retryable failure sets
`next_attempt_at`, and the platform's scheduler calls `enqueue_due_deliveries` every
tick, which queues the rows that are due. The delay is the receiver's Retry-After
when it sent one (capped at MAX_RETRY_DELAY), otherwise NOTIFY_RETRY_BASE_SECONDS
doubled per attempt.
"""

import logging
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update

from app.extensions import db
from app.models import AttemptOutcome, DeliveryAttempt, DeliveryStatus, NotificationDelivery
from app.models._columns import utcnow
from app.notifications.channels import Channel, DeliveryResult, UnknownChannelError, channel_class
from app.notifications.crypto import SecretsError, decrypt_secrets
from app.notifications.message import Message
from app.queue import notify_queue

log = logging.getLogger(__name__)

# Seconds a receiver's Retry-After may push the next attempt out; longer requests are cut to this.
MAX_RETRY_DELAY = 3600.0
# A row left `sending` or `pending` this long lost its worker or its RQ job.
STALE_AFTER = timedelta(minutes=10)
DELIVER_JOB = "jobs.notifications.deliver_notification"


def enqueue_deliveries(delivery_ids: list[int]) -> None:
    """Queue one RQ job per delivery; the job's timeout covers several network timeouts of one attempt."""
    if not delivery_ids:
        return
    queue = notify_queue()
    job_timeout = int(current_app.config["NOTIFY_TIMEOUT"] * 6) + 30
    for delivery_id in delivery_ids:
        queue.enqueue(DELIVER_JOB, delivery_id, job_timeout=job_timeout)


def deliver(delivery_id: int) -> DeliveryResult | None:
    """Make one attempt at a delivery if it can be claimed; return the result, or None when it was not claimed."""
    now = utcnow()
    attempt = _claim(delivery_id, now)
    if attempt is None:
        log.debug("delivery %s: not claimed, another job has it or it is not due", delivery_id)
        return None

    delivery = db.session.get(NotificationDelivery, delivery_id)
    result = attempt_delivery(delivery)

    _record(delivery, attempt, now, result)
    return result


def _claim(delivery_id: int, now: datetime) -> int | None:
    claimed = db.session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.id == delivery_id,
               NotificationDelivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.RETRYING)),
               (NotificationDelivery.next_attempt_at.is_(None)) | (NotificationDelivery.next_attempt_at <= now))
        .values(status=DeliveryStatus.SENDING, attempts=NotificationDelivery.attempts + 1, updated_at=now)
        .returning(NotificationDelivery.attempts)
    ).scalar_one_or_none()
    db.session.commit()
    return claimed


def build_channel(delivery: NotificationDelivery) -> Channel:
    """Construct the delivery's channel with its decrypted secrets; raise DeliveryRefused when it cannot be sent."""
    row = delivery.channel
    if row is None:
        raise DeliveryRefused("The channel was deleted after this notification was planned.")
    if not row.enabled:
        raise DeliveryRefused(f"Channel {row.name!r} is disabled.")
    try:
        kind = channel_class(row.kind)
        secrets = decrypt_secrets(current_app.config["SECRET_KEY"], row.secrets)
    except (UnknownChannelError, SecretsError) as error:
        raise DeliveryRefused(str(error)) from error
    problems = kind.validate(row.settings, secrets)
    if problems:
        raise DeliveryRefused(f"Channel {row.name!r} is misconfigured: {' '.join(problems)}")
    return kind(settings=row.settings, secrets=secrets, timeout=current_app.config["NOTIFY_TIMEOUT"],
                recipient=delivery.recipient, delivery_id=delivery.id)


class DeliveryRefused(Exception):
    """A delivery cannot be attempted because of its channel's state; the message names the channel and the reason."""


def attempt_delivery(delivery: NotificationDelivery) -> DeliveryResult:
    """Send the delivery's message once through its channel; an unexpected exception becomes a permanent failure."""
    try:
        channel = build_channel(delivery)
    except DeliveryRefused as error:
        return DeliveryResult.permanent(str(error))
    try:
        return channel.send(Message.from_dict(delivery.message))
    except Exception as error:  # noqa: BLE001  (a channel bug must be recorded, not kill the job)
        log.exception("delivery %s: channel %s raised", delivery.id, channel.kind)
        return DeliveryResult.permanent(f"The {channel.kind} channel failed unexpectedly: {type(error).__name__}: {error}")


def _record(delivery: NotificationDelivery, number: int, started: datetime, result: DeliveryResult) -> None:
    now = utcnow()
    db.session.add(DeliveryAttempt(
        delivery_id=delivery.id, number=number, started_at=started, finished_at=now, outcome=result.outcome,
        response_code=result.response_code, response_text=result.response_text, error=result.error,
    ))
    delivery.updated_at = now
    delivery.last_error = result.error
    max_attempts = current_app.config["NOTIFY_MAX_ATTEMPTS"]
    if result.ok:
        delivery.status, delivery.delivered_at = DeliveryStatus.DELIVERED, now
    elif result.outcome == AttemptOutcome.RETRYABLE and number < max_attempts:
        delivery.status = DeliveryStatus.RETRYING
        delivery.next_attempt_at = now + timedelta(seconds=retry_delay(number, result.retry_after))
    else:
        delivery.status = DeliveryStatus.FAILED
        if result.outcome == AttemptOutcome.RETRYABLE:
            delivery.last_error = f"{result.error} (gave up after {number} attempts)"
    db.session.commit()
    _log_outcome(delivery, number, result)


def retry_delay(attempts: int, retry_after: float | None) -> float:
    """Return seconds until the next attempt: the receiver's Retry-After, or exponential backoff."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_RETRY_DELAY)
    return min(current_app.config["NOTIFY_RETRY_BASE_SECONDS"] * 2 ** (attempts - 1), MAX_RETRY_DELAY)


def _log_outcome(delivery: NotificationDelivery, number: int, result: DeliveryResult) -> None:
    if result.ok:
        log.info("delivery %s: delivered on attempt %s", delivery.id, number)
    elif delivery.status == DeliveryStatus.RETRYING:
        log.warning("delivery %s: attempt %s failed, retrying at %s: %s", delivery.id, number,
                    delivery.next_attempt_at.isoformat(), result.error)
    else:
        log.error("delivery %s: failed for good on attempt %s: %s", delivery.id, number, delivery.last_error)


def enqueue_due_deliveries(now: datetime | None = None) -> int:
    """Queue deliveries whose retry is due or whose job was lost, fail those lost mid-send; return how many were queued.

    Safe with several schedulers: each row moves with a conditional update, and a row
    queued twice is still sent once because `deliver` claims it.
    """
    now = now or utcnow()
    stale = now - STALE_AFTER
    due = list(db.session.scalars(
        update(NotificationDelivery)
        .where(((NotificationDelivery.status == DeliveryStatus.RETRYING) & (NotificationDelivery.next_attempt_at <= now))
               | ((NotificationDelivery.status == DeliveryStatus.PENDING) & (NotificationDelivery.updated_at < stale)))
        .values(status=DeliveryStatus.PENDING, updated_at=now, next_attempt_at=None)
        .returning(NotificationDelivery.id)
    ))
    lost = db.session.execute(
        update(NotificationDelivery)
        .where(NotificationDelivery.status == DeliveryStatus.SENDING, NotificationDelivery.updated_at < stale)
        .values(status=DeliveryStatus.FAILED, updated_at=now,
                last_error="The worker stopped while sending; not retried because the message may have been sent.")
    ).rowcount
    db.session.commit()
    if lost:
        log.warning("%s notification deliveries lost their worker while sending; marked failed", lost)
    enqueue_deliveries(sorted(due))
    return len(due)


def recent_deliveries(project_id: int, limit: int = 50) -> list[NotificationDelivery]:
    """Return the project's latest deliveries, newest first, for the settings page."""
    return list(db.session.scalars(
        select(NotificationDelivery).where(NotificationDelivery.project_id == project_id)
        .order_by(NotificationDelivery.id.desc()).limit(limit)
    ))
