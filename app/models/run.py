from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db
from app.models._columns import utcnow
from app.status import RunStatus, StageStatus


class Run(db.Model):
    """One execution of a project's pipeline for one event, numbered per project."""

    __tablename__ = "runs"
    __table_args__ = (UniqueConstraint("project_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    # What started it: "cli", "api", "webhook", "schedule" or "rerun".
    trigger: Mapped[str] = mapped_column(String(20))
    # The SDK's event kind: push, pull_request, merge, tag, manual or schedule.
    event: Mapped[str] = mapped_column(String(20))
    ref: Mapped[str | None] = mapped_column(Text)
    branch: Mapped[str | None] = mapped_column(Text, index=True)
    tag: Mapped[str | None] = mapped_column(Text)
    commit_sha: Mapped[str | None] = mapped_column(String(64))
    before_sha: Mapped[str | None] = mapped_column(String(64))
    pull_request: Mapped[int | None] = mapped_column(Integer)
    author: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.QUEUED, index=True)
    # Why the run ended as it did, in a sentence, for error, skipped and cancelled runs.
    status_reason: Mapped[str | None] = mapped_column(Text)
    # The normalised event as the pipeline sees it (DENO_CI_EVENT).
    event_data: Mapped[dict] = mapped_column(JSONB, default=dict)
    # The runner's plan of the pipeline at this commit.
    plan: Mapped[dict | None] = mapped_column(JSONB)
    # Key under which a later run may take this plan instead of planning (app/pipelines/plan_reuse.py).
    plan_key: Mapped[str | None] = mapped_column(String(64))
    # The pipeline file the run is planned from, fixed when planning starts, so that a change
    # of the project's path during the run does not give its later stages another file.
    pipeline_path: Mapped[str | None] = mapped_column(Text)
    # True for a pull request from a fork: it runs without secrets and deploy stages until approved.
    approval_required: Mapped[bool] = mapped_column(Boolean, default=False)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The run this one re-runs, for trigger "rerun".
    rerun_of_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    # An edited pipeline file started from the editor without a commit; the worker uses it in
    # place of the file at the checked-out commit. NULL for runs of the committed file.
    pipeline_override: Mapped[str | None] = mapped_column(Text)
    # The highest log sequence number handed out; log lines are numbered per run from 1.
    log_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    project = relationship("Project", back_populates="runs")
    stages = relationship("Stage", back_populates="run", order_by="Stage.position", cascade="all, delete-orphan")


class Stage(db.Model):
    """A named unit of a run, executed as one sandboxed Deno process per attempt."""

    __tablename__ = "stages"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer)
    needs: Mapped[list] = mapped_column(JSONB, default=list)
    options: Mapped[dict] = mapped_column(JSONB, default=dict)
    deno_flags: Mapped[list] = mapped_column(JSONB, default=list)
    status: Mapped[str] = mapped_column(String(20), default=StageStatus.QUEUED)
    # The attempt queued or running now, from 1; 0 while the stage was never queued.
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    # Set when the stage is handed to the queue, so it is enqueued once.
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set while the stage waits without a worker (app/status.py StageWait); the reaper leaves such stages alone.
    waiting_for: Mapped[str | None] = mapped_column(String(20))
    # The deployment a deploy stage recorded; the stage ends when this deployment ends.
    deployment_id: Mapped[int | None] = mapped_column(
        ForeignKey("deployments.id", ondelete="SET NULL", use_alter=True, name="stages_deployment"), index=True)

    run = relationship("Run", back_populates="stages")


class LogLine(db.Model):
    """One line of a run's log; `seq` orders a run's lines and is unique within the run."""

    __tablename__ = "log_lines"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    stage_id: Mapped[int | None] = mapped_column(ForeignKey("stages.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # "stdout", "stderr" or "system" (messages from the platform itself).
    stream: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(Text)


class Artifact(db.Model):
    """Files a stage published, kept as one archive until `expires_at`."""

    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    stage_id: Mapped[int | None] = mapped_column(ForeignKey("stages.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(Text)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
