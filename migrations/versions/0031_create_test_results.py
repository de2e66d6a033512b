"""Create test reports and test cases: JUnit results and coverage collected after each stage

Revision ID: 0031
Revises: 0030
"""

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "test_reports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("stage_id", sa.Integer(), sa.ForeignKey("stages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tests", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("lines_found", sa.Integer(), nullable=True),
        sa.Column("lines_hit", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("stage_id"),
    )
    op.create_index("ix_test_reports_run_id", "test_reports", ["run_id"])
    op.create_table(
        "test_cases",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column("report_id", sa.Integer(), sa.ForeignKey("test_reports.id", ondelete="CASCADE"), nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("suite", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
    )
    op.create_index("ix_test_cases_report_id", "test_cases", ["report_id"])
    op.create_index("ix_test_cases_run_id", "test_cases", ["run_id"])


def downgrade():
    op.drop_table("test_cases")
    op.drop_table("test_reports")
