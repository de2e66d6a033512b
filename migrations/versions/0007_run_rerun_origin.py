"""Record which run a re-run repeats

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("runs", sa.Column("rerun_of_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="SET NULL"),
                                    nullable=True))


def downgrade():
    op.drop_column("runs", "rerun_of_id")
