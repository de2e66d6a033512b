"""Let a deploy stage wait without a worker for its deployment or for a fork run's approval

Revision ID: 0042
Revises: 0041
"""

import sqlalchemy as sa
from alembic import op

revision = "0042"
down_revision = "0041"
branch_labels = None
depends_on = None

# Copied from app/status.py StageWait when this revision was written; a landed revision never changes.
WAITS = "('approval', 'deployment')"


def upgrade():
    op.add_column("stages", sa.Column("waiting_for", sa.String(20), nullable=True))
    op.create_check_constraint("stages_waiting_for_valid", "stages", f"waiting_for IN {WAITS}")
    op.add_column("stages", sa.Column("deployment_id", sa.Integer(), nullable=True))
    op.create_foreign_key("stages_deployment", "stages", "deployments", ["deployment_id"], ["id"],
                          ondelete="SET NULL")
    op.create_index("ix_stages_deployment_id", "stages", ["deployment_id"])


def downgrade():
    op.drop_index("ix_stages_deployment_id", "stages")
    op.drop_constraint("stages_deployment", "stages")
    op.drop_column("stages", "deployment_id")
    op.drop_constraint("stages_waiting_for_valid", "stages")
    op.drop_column("stages", "waiting_for")
