from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, Text, UniqueConstraint, false, func
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models._columns import utcnow


class Role(StrEnum):
    ADMIN = "admin"  # everything, including users and settings
    DEVELOPER = "developer"  # create and manage pipelines and projects, run, cancel, re-run, deploy
    VIEWER = "viewer"  # read-only access to runs and logs


class User(UserMixin, db.Model):
    """A person who signs in to the web UI or calls the API."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    email: Mapped[str | None] = mapped_column(String(300))
    password_hash: Mapped[str | None] = mapped_column(Text)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Set for an invited user, whose one-time password an administrator has seen; cleared by a change.
    password_must_change: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    @property
    def is_active(self) -> bool:
        return self.active


# User names are unique regardless of case, so "bob" and "Bob" cannot be two look-alike accounts.
Index("users_username_lower_key", func.lower(User.username), unique=True)


class Membership(db.Model):
    """A user's role in one project."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "project_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20), default=Role.VIEWER)
