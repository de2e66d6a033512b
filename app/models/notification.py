"""Notification channels, rules, per-person preferences and the record of every delivery."""

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._columns import utcnow


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # waiting for its RQ job to claim it
    SENDING = "sending"  # claimed by a job that is sending it now
    RETRYING = "retrying"  # an attempt failed with a retryable error; waits for `next_attempt_at`
    DELIVERED = "delivered"  # the receiver accepted it
    FAILED = "failed"  # a permanent error, no attempts left, or rejected before sending


class AttemptOutcome(StrEnum):
    DELIVERED = "delivered"  # the receiver accepted the message
    RETRYABLE = "retryable"  # failed in a way that may pass later: timeout, connection, 429, 5xx, SMTP 4xx
    PERMANENT = "permanent"  # failed in a way a retry cannot fix: 4xx, SMTP 5xx, wrong secret, bad settings


class NotificationChannel(db.Model):
    """A place a project's notifications go: an SMTP server, a Slack, Teams or Discord webhook, a JSON webhook."""

    __tablename__ = "notification_channels"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    # The name rules and pipeline files refer to, unique within the project.
    name: Mapped[str] = mapped_column(String(100))
    # The registered channel kind: "email", "slack", "teams", "discord", "webhook" or a plugin's.
    kind: Mapped[str] = mapped_column(String(40))
    # Settings that are not secret, shown on the settings page.
    settings: Mapped[dict] = mapped_column(JSONB, default=dict)
    # The secret settings (passwords, tokens, webhook URLs) as one Fernet token of their JSON.
    secrets: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    project = relationship("Project")
    rules = relationship("NotificationRule", back_populates="channel", cascade="all, delete-orphan")


class NotificationRule(db.Model):
    """A subscription of one channel to some events of a project, on some branches."""

    __tablename__ = "notification_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("notification_channels.id", ondelete="CASCADE"), index=True)
    # Event names from app.notifications.events.Event.
    events: Mapped[list] = mapped_column(JSONB, default=list)
    # Branch globs (fnmatch syntax); empty matches every run, including runs of tags.
    branches: Mapped[list] = mapped_column(JSONB, default=list)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    channel = relationship("NotificationChannel", back_populates="rules")


class NotificationPreference(db.Model):
    """A person's choice for one project; with no row, email notifications are on."""

    __tablename__ = "notification_preferences"
    __table_args__ = (UniqueConstraint("user_id", "project_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    email_enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class NotificationDelivery(db.Model):
    """One message to one channel (and, for email, one recipient), sent at most once."""

    __tablename__ = "notification_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[int | None] = mapped_column(ForeignKey("notification_channels.id", ondelete="SET NULL"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(40))
    # "rule", "pipeline", "deployment" or "test": what asked for this delivery.
    source: Mapped[str] = mapped_column(String(20))
    recipient: Mapped[str | None] = mapped_column(Text)
    # Unique per (run or deployment, channel, event, recipient), so planning twice creates one row.
    dedupe_key: Mapped[str] = mapped_column(Text, unique=True)
    # The message as app.notifications.message.Message.to_dict() returns it.
    message: Mapped[dict] = mapped_column(JSONB)
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    channel = relationship("NotificationChannel")
    attempt_records = relationship("DeliveryAttempt", back_populates="delivery", order_by="DeliveryAttempt.number",
                                   cascade="all, delete-orphan")


class DeliveryAttempt(db.Model):
    """One try at sending a delivery, with what the receiver returned."""

    __tablename__ = "notification_attempts"
    __table_args__ = (UniqueConstraint("delivery_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("notification_deliveries.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(20))
    # The HTTP status or SMTP reply code, when the receiver replied.
    response_code: Mapped[int | None] = mapped_column(Integer)
    # The start of the receiver's response body or SMTP reply text.
    response_text: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)

    delivery = relationship("NotificationDelivery", back_populates="attempt_records")
