"""Create notification preferences: each person's email on or off per project

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "notification_preferences",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("email_enabled", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("user_id", "project_id"),
    )
    op.create_index("ix_notification_preferences_user_id", "notification_preferences", ["user_id"])
    op.create_index("ix_notification_preferences_project_id", "notification_preferences", ["project_id"])


def downgrade():
    op.drop_index("ix_notification_preferences_project_id", "notification_preferences")
    op.drop_index("ix_notification_preferences_user_id", "notification_preferences")
    op.drop_table("notification_preferences")
