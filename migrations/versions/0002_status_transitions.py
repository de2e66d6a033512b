"""Let run and stage statuses move only forward through their defined sets

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

RUN_STATUSES = ("queued", "running", "success", "failed", "cancelled", "skipped", "error")
STAGE_STATUSES = (*RUN_STATUSES, "allowed_failure")

# A status never moves out of a terminal state. A stage may go from running
# back to queued only as a new attempt (retry, or a worker lost mid-stage).
GUARD_FUNCTION = """
CREATE FUNCTION deno_ci_guard_status() RETURNS trigger AS $$
DECLARE
    allowed boolean;
    -- Runs have no attempt column; reading it through jsonb gives NULL there instead of an error.
    new_attempt integer := (to_jsonb(NEW) ->> 'attempt')::integer;
    old_attempt integer := (to_jsonb(OLD) ->> 'attempt')::integer;
BEGIN
    IF NEW.status = OLD.status THEN
        RETURN NEW;
    END IF;
    allowed := CASE OLD.status
        WHEN 'queued' THEN NEW.status <> 'queued'
        WHEN 'running' THEN NEW.status NOT IN ('skipped')
            AND (NEW.status <> 'queued' OR (new_attempt > old_attempt))
        ELSE false
    END;
    IF NOT allowed THEN
        RAISE EXCEPTION 'invalid status transition of % %: % -> %', TG_TABLE_NAME, OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""


def _in_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def upgrade():
    op.create_check_constraint("runs_status_valid", "runs", f"status IN ({_in_list(RUN_STATUSES)})")
    op.create_check_constraint("stages_status_valid", "stages", f"status IN ({_in_list(STAGE_STATUSES)})")
    op.execute(GUARD_FUNCTION)
    for table in ("runs", "stages"):
        op.execute(
            f"CREATE TRIGGER {table}_guard_status BEFORE UPDATE OF status ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION deno_ci_guard_status()"
        )


def downgrade():
    for table in ("runs", "stages"):
        op.execute(f"DROP TRIGGER {table}_guard_status ON {table}")
    op.execute("DROP FUNCTION deno_ci_guard_status()")
    op.drop_constraint("stages_status_valid", "stages")
    op.drop_constraint("runs_status_valid", "runs")
