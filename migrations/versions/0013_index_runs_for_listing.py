"""Index runs for the filtered, newest-first run lists and the metrics window

Revision ID: 0013
Revises: 0012

The run list orders by id descending; with a project filter it walks
(project_id, id) backwards, and date-range filters and metrics read queued_at.
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_runs_project_id_id", "runs", ["project_id", "id"])
    op.create_index("ix_runs_queued_at", "runs", ["queued_at"])
    op.create_index("ix_runs_project_id_queued_at", "runs", ["project_id", "queued_at"])


def downgrade():
    op.drop_index("ix_runs_project_id_queued_at", "runs")
    op.drop_index("ix_runs_queued_at", "runs")
    op.drop_index("ix_runs_project_id_id", "runs")
