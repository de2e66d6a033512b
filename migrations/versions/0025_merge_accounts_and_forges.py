"""Merge the accounts revisions (0010-0013) with the forge and notification revisions (0003-0024)

Revision ID: 0025
Revises: 0013, 0024

Both lines start from 0002 and touch different tables, so the merge changes no
schema. A database already at 0013 or at 0024 gets the other line's revisions
applied before this one.
"""

revision = "0025"
down_revision = ("0013", "0024")
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
