"""Record a run's pipeline path and the key under which a later run of the same commit and event may reuse its plan

Revision ID: 0043
Revises: 0042
"""

import sqlalchemy as sa
from alembic import op

revision = "0043"
down_revision = "0042"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("runs", sa.Column("plan_key", sa.String(64), nullable=True))
    op.create_index("ix_runs_project_id_plan_key", "runs", ["project_id", "plan_key"])
    op.add_column("runs", sa.Column("pipeline_path", sa.Text(), nullable=True))


def downgrade():
    op.drop_column("runs", "pipeline_path")
    op.drop_index("ix_runs_project_id_plan_key", "runs")
    op.drop_column("runs", "plan_key")
