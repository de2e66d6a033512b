"""Create deployments with their history and approvals, one active and one pending per environment

Revision ID: 0041
Revises: 0040
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0041"
down_revision = "0040"
branch_labels = None
depends_on = None

# Copied from app/deployments/status.py when this revision was written; a landed revision never changes.
ACTIVE = "('preparing', 'ready', 'progressing', 'paused', 'promoting', 'rolling_back')"
PENDING = "('queued', 'waiting_for_approval')"


def upgrade():
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("environment_id", sa.Integer(), sa.ForeignKey("environments.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("release_id", sa.Integer(), sa.ForeignKey("releases.id"), nullable=False),
        sa.Column("stable_release_id", sa.Integer(), sa.ForeignKey("releases.id"), nullable=True),
        sa.Column("rollback_of_id", sa.Integer(), sa.ForeignKey("deployments.id"), nullable=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("spec", JSONB(), nullable=False),
        sa.Column("steps", JSONB(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("split", JSONB(), nullable=False),
        sa.Column("requested_action", sa.String(20), nullable=True),
        sa.Column("requested_reason", sa.Text(), nullable=True),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.Column("requested_by", sa.String(200), nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resume_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("environment_id", "number"),
        sa.CheckConstraint("weight BETWEEN 0 AND 100", name="deployments_weight_percent"),
    )
    op.create_index("ix_deployments_environment_id", "deployments", ["environment_id"])
    op.add_column("environments", sa.Column("live_deployment_id", sa.Integer(), nullable=True))
    op.create_foreign_key("environments_live_deployment", "environments", "deployments", ["live_deployment_id"],
                          ["id"], ondelete="SET NULL")
    op.create_index("ix_deployments_status", "deployments", ["status"])
    op.execute(f"CREATE UNIQUE INDEX deployments_one_active ON deployments (environment_id) WHERE status IN {ACTIVE}")
    op.execute(f"CREATE UNIQUE INDEX deployments_one_pending ON deployments (environment_id) WHERE status IN {PENDING}")
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("deployment_id", sa.Integer(), sa.ForeignKey("deployments.id", ondelete="CASCADE"), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("split", JSONB(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", JSONB(), nullable=False),
    )
    op.create_index("ix_deployment_events_deployment_id", "deployment_events", ["deployment_id"])
    op.create_table(
        "deployment_approvals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("deployment_id", sa.Integer(), sa.ForeignKey("deployments.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("gate", sa.String(20), nullable=False),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("deployment_id", "gate", "user_id"),
    )
    op.create_index("ix_deployment_approvals_deployment_id", "deployment_approvals", ["deployment_id"])


def downgrade():
    op.drop_table("deployment_approvals")
    op.drop_table("deployment_events")
    op.drop_constraint("environments_live_deployment", "environments")
    op.drop_column("environments", "live_deployment_id")
    op.drop_table("deployments")
