from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.deployments.status import DeploymentStatus
from app.extensions import db
from app.models._columns import utcnow


class Environment(db.Model):
    """A place a project deploys to (production, staging, or a review environment of one pull request)."""

    __tablename__ = "environments"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    # "production", "staging" or "review".
    kind: Mapped[str] = mapped_column(String(20), default="staging")
    # The pull request a review environment belongs to.
    pull_request: Mapped[int | None] = mapped_column(Integer)
    # The adapter's settings: {"type": "nginx", ...}; never contains credentials.
    target: Mapped[dict] = mapped_column(JSONB, default=dict)
    # Provider credentials as a Fernet token (app/forges/crypto.py) of a JSON object.
    credentials_encrypted: Mapped[str | None] = mapped_column(Text)
    # The deployment that put the live release in place; a rollback leaves it as it was.
    live_deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL", use_alter=True, name="environments_live_deployment"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    project = relationship("Project")
    live_deployment = relationship("Deployment", foreign_keys=[live_deployment_id], post_update=True)


class Release(db.Model):
    """An immutable reference to what a run built: an artifact archive or an image. A trigger forbids updates."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    # Unique per project and safe in file names and server names: [A-Za-z0-9][A-Za-z0-9._-]*.
    name: Mapped[str] = mapped_column(String(100))
    # A path to an artifact archive (.tar.gz) or an image reference, as the target's adapter expects.
    artifact: Mapped[str] = mapped_column(Text)
    commit_sha: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Deployment(db.Model):
    """One attempt to put a release live in an environment. Rows are never deleted; a rollback is a new row."""

    __tablename__ = "deployments"
    __table_args__ = (UniqueConstraint("environment_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id"))
    # The release that was live when this deployment started: where a rollback sends the traffic.
    stable_release_id: Mapped[int | None] = mapped_column(ForeignKey("releases.id"))
    # The deployment whose release this one puts back, for a manual rollback.
    rollback_of_id: Mapped[int | None] = mapped_column(ForeignKey("deployments.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(30), default=DeploymentStatus.QUEUED, index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    # The strategy as planned (app/deployments/strategies.py), with analysis and approvals.
    spec: Mapped[dict] = mapped_column(JSONB, default=dict)
    # The expanded list of steps and the index of the current one.
    steps: Mapped[list] = mapped_column(JSONB, default=list)
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    # Percent of the traffic the new release has, as last applied by the adapter.
    weight: Mapped[int] = mapped_column(Integer, default=0)
    # The split the adapter last reported, {release name: percent}.
    split: Mapped[dict] = mapped_column(JSONB, default=dict)
    # Requests from people, read by the running job: "promote" or "abort".
    requested_action: Mapped[str | None] = mapped_column(String(20))
    requested_reason: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Who asked for it, as shown: a username, or the author of the run.
    requested_by: Mapped[str | None] = mapped_column(String(200))
    # The lease of the job that drives it, so that two jobs never drive one deployment.
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the current step started, for the progress deadline.
    step_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When a timed pause ends.
    resume_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    environment = relationship("Environment", foreign_keys=[environment_id])
    release = relationship("Release", foreign_keys=[release_id])
    stable_release = relationship("Release", foreign_keys=[stable_release_id])
    events = relationship("DeploymentEvent", order_by="DeploymentEvent.id", lazy="dynamic")
    approvals = relationship("DeploymentApproval", order_by="DeploymentApproval.id")


class DeploymentEvent(db.Model):
    """One entry of a deployment's history: a transition, a traffic change, an analysis result or an approval."""

    __tablename__ = "deployment_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # "status", "traffic", "analysis", "approval" or "request".
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(30))
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    weight: Mapped[int] = mapped_column(Integer, default=0)
    split: Mapped[dict] = mapped_column(JSONB, default=dict)
    message: Mapped[str] = mapped_column(Text, default="")
    # Analysis measurements and the like.
    details: Mapped[dict] = mapped_column(JSONB, default=dict)


class DeploymentApproval(db.Model):
    """A reviewer's approval of one gate of a deployment."""

    __tablename__ = "deployment_approvals"
    __table_args__ = (UniqueConstraint("deployment_id", "gate", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"), index=True)
    # "deploy" or "promote" (app/deployments/status.py Gate).
    gate: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    user = relationship("User")
