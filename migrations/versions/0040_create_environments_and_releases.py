"""Create environments and releases; a release row can never change

Revision ID: 0040
Revises: 0032
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0040"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "environments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("pull_request", sa.Integer(), nullable=True),
        sa.Column("target", JSONB(), nullable=False),
        sa.Column("credentials_encrypted", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "name"),
        sa.CheckConstraint("kind IN ('production', 'staging', 'review')", name="environments_kind"),
    )
    op.create_index("ix_environments_project_id", "environments", ["project_id"])
    op.create_table(
        "releases",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("project_id", sa.Integer(), sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("artifact", sa.Text(), nullable=False),
        sa.Column("commit_sha", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("project_id", "name"),
    )
    op.create_index("ix_releases_project_id", "releases", ["project_id"])
    # A deployment's history points at releases, so what a release names must never change under it.
    # Only the run link may be cleared (ON DELETE SET NULL when a run is deleted).
    op.execute("""
        CREATE FUNCTION releases_immutable() RETURNS trigger AS $$
        BEGIN
            IF NEW.name IS DISTINCT FROM OLD.name OR NEW.artifact IS DISTINCT FROM OLD.artifact
               OR NEW.commit_sha IS DISTINCT FROM OLD.commit_sha OR NEW.project_id IS DISTINCT FROM OLD.project_id THEN
                RAISE EXCEPTION 'release % is immutable: create a new release instead', OLD.id;
            END IF;
            RETURN NEW;
        END $$ LANGUAGE plpgsql;
    """)
    op.execute("CREATE TRIGGER releases_immutable BEFORE UPDATE ON releases "
               "FOR EACH ROW EXECUTE FUNCTION releases_immutable()")


def downgrade():
    op.execute("DROP TRIGGER releases_immutable ON releases")
    op.execute("DROP FUNCTION releases_immutable()")
    op.drop_index("ix_releases_project_id", "releases")
    op.drop_table("releases")
    op.drop_index("ix_environments_project_id", "environments")
    op.drop_table("environments")
