"""Add forge accounts with encrypted OAuth tokens, and link projects to one

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "forge_accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("forge", sa.String(20), nullable=False),
        sa.Column("forge_user_id", sa.String(200), nullable=False),
        sa.Column("login", sa.String(200), nullable=False),
        sa.Column("access_token_encrypted", sa.Text(), nullable=False),
        sa.Column("refresh_token_encrypted", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("forge", "forge_user_id"),
    )
    op.create_index("ix_forge_accounts_user_id", "forge_accounts", ["user_id"])
    op.add_column("projects", sa.Column(
        "forge_account_id", sa.Integer(), sa.ForeignKey("forge_accounts.id", ondelete="SET NULL"), nullable=True,
    ))


def downgrade():
    op.drop_column("projects", "forge_account_id")
    op.drop_table("forge_accounts")
