"""Make user names unique regardless of case, so that "bob" and "Bob" cannot both exist

A database may already hold user names that differ only in case. This revision then
stops with an error that lists each such group by id and name, and changes nothing. It
renames no account itself, because a new name would lock its owner out of signing in
without telling them. The operator renames or deletes all but one account of each
group, then runs the migration again.

Revision ID: 0045
Revises: 0044
"""

import sqlalchemy as sa
from alembic import op

revision = "0045"
down_revision = "0044"
branch_labels = None
depends_on = None

INDEX_NAME = "users_username_lower_key"


def upgrade():
    groups = op.get_bind().execute(sa.text(
        "SELECT string_agg(format('%s %L', id, username), ', ' ORDER BY id) FROM users "
        "GROUP BY lower(username) HAVING count(*) > 1 ORDER BY lower(username)"
    )).scalars().all()
    if groups:
        raise RuntimeError(
            "Cannot make user names unique regardless of case: these accounts (id and name) differ only in case: "
            + "; ".join(groups) + ". Rename or delete all but one of each group, for example with "
            "UPDATE users SET username = 'bob-2' WHERE id = 7, then run the migration again."
        )
    op.create_index(INDEX_NAME, "users", [sa.text("lower(username)")], unique=True)


def downgrade():
    op.drop_index(INDEX_NAME, table_name="users")
