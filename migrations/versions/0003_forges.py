"""Add project webhook secrets and the webhook delivery log

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("projects", sa.Column("webhook_secret_encrypted", sa.Text(), nullable=True))
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=True),
        sa.Column("forge", sa.String(20), nullable=False),
        sa.Column("forge_delivery_id", sa.String(200), nullable=True),
        sa.Column("event", sa.String(100), nullable=True),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
        sa.Column("dedupe_key", sa.Text(), nullable=True),
        sa.Column("redelivery_of_id", sa.Integer(), sa.ForeignKey("webhook_deliveries.id", ondelete="SET NULL"),
                  nullable=True),
        sa.Column("received_count", sa.Integer(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "forge_delivery_id"),
    )
    op.create_index("ix_webhook_deliveries_project_id", "webhook_deliveries", ["project_id"])
    op.create_index("uq_webhook_deliveries_dedupe", "webhook_deliveries", ["project_id", "dedupe_key"], unique=True,
                    postgresql_where=sa.text("dedupe_key IS NOT NULL"))


def downgrade():
    op.drop_table("webhook_deliveries")
    op.drop_column("projects", "webhook_secret_encrypted")
