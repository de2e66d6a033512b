"""Create the audit log table

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=100), nullable=True),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=True),
        sa.Column("outcome", sa.String(length=10), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.CheckConstraint("outcome IN ('success', 'failure', 'denied')", name="audit_entries_outcome_valid"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_entries_time", "audit_entries", ["time"])
    op.create_index("ix_audit_entries_action", "audit_entries", ["action"])


def downgrade():
    op.drop_index("ix_audit_entries_action", "audit_entries")
    op.drop_index("ix_audit_entries_time", "audit_entries")
    op.drop_table("audit_entries")
