"""Tables of the forge integration: webhook deliveries, forge accounts and commit status reports."""

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._columns import utcnow


class WebhookDelivery(db.Model):
    """One webhook request a forge sent, with the answer the platform gave it.

    A forge's redelivery reuses its delivery id, so (project, delivery id) is unique and a
    repeat updates `received_count` instead of adding a row. `dedupe_key` is set only on
    deliveries that started a run, so the same push sent under two delivery ids starts one.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("project_id", "forge_delivery_id"),
        Index("uq_webhook_deliveries_dedupe", "project_id", "dedupe_key", unique=True,
              postgresql_where=text("dedupe_key IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL for a request to an unknown project.
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    forge: Mapped[str] = mapped_column(String(20))
    # The forge's own id of the delivery (GitHub X-GitHub-Delivery and the like); NULL when it sent none.
    forge_delivery_id: Mapped[str | None] = mapped_column(String(200))
    # The forge's event name as sent, such as "push" or "Merge Request Hook".
    event: Mapped[str | None] = mapped_column(String(100))
    # The request headers that matter for replaying it; never a signature or token header.
    headers: Mapped[dict] = mapped_column(JSONB, default=dict)
    # The body, kept only once its signature was verified, so that it can be redelivered.
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    status_code: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    dedupe_key: Mapped[str | None] = mapped_column(Text)
    redelivery_of_id: Mapped[int | None] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="SET NULL"))
    received_count: Mapped[int] = mapped_column(Integer, default=1)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ForgeAccount(db.Model):
    """A user's account on a forge, with the OAuth tokens (encrypted) the platform acts with."""

    __tablename__ = "forge_accounts"
    __table_args__ = (UniqueConstraint("forge", "forge_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    forge: Mapped[str] = mapped_column(String(20))
    forge_user_id: Mapped[str] = mapped_column(String(200))
    login: Mapped[str] = mapped_column(String(200))
    # Fernet tokens (see app/forges/crypto.py), never the plain values.
    access_token_encrypted: Mapped[str] = mapped_column(Text)
    refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scopes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    user = relationship("User")


class CommitStatusReport(db.Model):
    """One commit status sent (or to be sent) to the forge for a run's status change."""

    __tablename__ = "commit_status_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    # The platform's commit state (app.forges.base.CommitState); each forge maps it to its own word.
    state: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(Text)
    # "pending", "sent", "failed" (retries used up), "superseded" (a newer report was sent) or "skipped".
    delivery_status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
