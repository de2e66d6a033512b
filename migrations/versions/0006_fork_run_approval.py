"""Add the maintainer approval that runs of pull requests from forks wait for

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("runs", sa.Column("approval_required", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("runs", sa.Column("approved_by_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"),
                                    nullable=True))
    op.add_column("runs", sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column("runs", "approved_at")
    op.drop_column("runs", "approved_by_id")
    op.drop_column("runs", "approval_required")
