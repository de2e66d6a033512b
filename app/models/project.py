from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._columns import utcnow


class Project(db.Model):
    """A connected repository whose pipeline the platform runs."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # "git" for a repository added by URL or path with no forge integration.
    forge: Mapped[str] = mapped_column(String(20), default="git")
    # The repository's name on its forge, such as "owner/name".
    forge_repo: Mapped[str | None] = mapped_column(String(300))
    clone_url: Mapped[str] = mapped_column(Text)
    default_branch: Mapped[str] = mapped_column(String(255), default="main")
    pipeline_path: Mapped[str] = mapped_column(String(500), default="deno-pipeline.ts")
    # The webhook secret as a Fernet token (app/forges/crypto.py); GitHub and Bitbucket sign with it, so it is not hashed.
    webhook_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    # The forge account whose token reports commit statuses and clones; NULL for a project connected by hand.
    forge_account_id: Mapped[int | None] = mapped_column(ForeignKey("forge_accounts.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    runs = relationship("Run", back_populates="project", lazy="dynamic")
    schedules = relationship("Schedule", back_populates="project", cascade="all, delete-orphan")


class Schedule(db.Model):
    """A cron expression that starts runs of one branch with the `schedule` event."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    cron: Mapped[str] = mapped_column(String(100))
    branch: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # The last slot that started a run; a slot starts at most one run across all schedulers.
    last_slot: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    project = relationship("Project", back_populates="schedules")


class Cache(db.Model):
    """A saved dependency cache archive (`DENO_DIR`) of a project, addressed by its key."""

    __tablename__ = "caches"
    __table_args__ = (UniqueConstraint("project_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
