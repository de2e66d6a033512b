"""Figures about a project's runs over a time window, computed in PostgreSQL."""

from datetime import timedelta

from sqlalchemy import text

from app.extensions import db
from app.models import Project
from app.models._columns import utcnow

# Success rate counts runs that ran to a verdict; cancelled and skipped runs say nothing about the code.
METRICS_QUERY = text("""
SELECT
    count(*) AS runs,
    count(*) FILTER (WHERE status = 'success') AS succeeded,
    count(*) FILTER (WHERE status IN ('failed', 'error')) AS failed,
    count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
    avg(extract(epoch FROM finished_at - started_at)) AS duration_mean,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - started_at)) AS duration_p95,
    avg(extract(epoch FROM started_at - queued_at)) AS queue_mean,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM started_at - queued_at)) AS queue_p95
FROM runs
WHERE project_id = :project_id AND queued_at >= :since
""")


def _rounded(value) -> float | None:
    return round(float(value), 3) if value is not None else None


def project_metrics(project: Project, days: int) -> dict:
    """Return counts, success rate, and mean and 95th percentile of duration and queue time, in seconds."""
    since = utcnow() - timedelta(days=days)
    row = db.session.execute(METRICS_QUERY, {"project_id": project.id, "since": since}).one()
    decided = row.succeeded + row.failed
    return {
        "project": project.name, "days": days, "since": since.isoformat(), "runs": row.runs,
        "succeeded": row.succeeded, "failed": row.failed, "cancelled": row.cancelled,
        "success_rate": round(row.succeeded / decided, 4) if decided else None,
        "duration_seconds": {"mean": _rounded(row.duration_mean), "p95": _rounded(row.duration_p95)},
        "queue_seconds": {"mean": _rounded(row.queue_mean), "p95": _rounded(row.queue_p95)},
    }
