"""Store an edited pipeline on a run, for runs started from the editor without a commit

Revision ID: 0032
Revises: 0031
"""

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("runs", sa.Column("pipeline_override", sa.Text(), nullable=True))


def downgrade():
    op.drop_column("runs", "pipeline_override")
