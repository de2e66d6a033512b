"""Figures about a project's runs and stages over a time window, computed in PostgreSQL.

Success rate counts runs and stages that ran to a verdict. Cancelled and skipped ones are
left out, because they tell nothing about the code. A stage that failed with
`allowFailure` counts as not passed. Durations run from start to end; queue time from queued (a stage: handed to
the queue) to start. Times are in seconds; trend days are UTC days.
"""

from datetime import datetime, timedelta

from sqlalchemy import text

from app.extensions import db
from app.models import Project
from app.models._columns import utcnow
from app.runs.test_results import flaky_tests

_FIGURES = """
    count(*) AS runs,
    count(*) FILTER (WHERE {t}status = 'success') AS succeeded,
    count(*) FILTER (WHERE {t}status IN ({failed})) AS failed,
    count(*) FILTER (WHERE {t}status = 'cancelled') AS cancelled,
    avg(extract(epoch FROM {t}finished_at - {t}started_at)) AS duration_mean,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM {t}finished_at - {t}started_at)) AS duration_p95,
    avg(extract(epoch FROM {t}started_at - {t}{queued})) AS queue_mean,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM {t}started_at - {t}{queued})) AS queue_p95
"""
RUN_FIGURES = _FIGURES.format(t="", failed="'failed', 'error'", queued="queued_at")
STAGE_FIGURES = _FIGURES.format(t="s.", failed="'failed', 'allowed_failure', 'error'", queued="enqueued_at")

METRICS_QUERY = text(f"SELECT {RUN_FIGURES} FROM runs WHERE project_id = :project_id AND queued_at >= :since")
STAGES_QUERY = text(
    f"SELECT s.name, {STAGE_FIGURES} FROM stages s JOIN runs r ON r.id = s.run_id "
    "WHERE r.project_id = :project_id AND r.queued_at >= :since AND s.started_at IS NOT NULL "
    "GROUP BY s.name ORDER BY min(s.position), s.name"
)
TREND_QUERY = text(
    f"SELECT (queued_at AT TIME ZONE 'UTC')::date AS day, {RUN_FIGURES} FROM runs "
    "WHERE project_id = :project_id AND queued_at >= :since GROUP BY day"
)


def _rounded(value) -> float | None:
    return round(float(value), 3) if value is not None else None


def _figures(row) -> dict:
    decided = row.succeeded + row.failed
    return {
        "runs": row.runs, "succeeded": row.succeeded, "failed": row.failed, "cancelled": row.cancelled,
        "success_rate": round(row.succeeded / decided, 4) if decided else None,
        "duration_seconds": {"mean": _rounded(row.duration_mean), "p95": _rounded(row.duration_p95)},
        "queue_seconds": {"mean": _rounded(row.queue_mean), "p95": _rounded(row.queue_p95)},
    }


def project_metrics(project: Project, days: int, now: datetime | None = None) -> dict:
    """Return the pipeline's figures, each stage's, the daily trend and the flaky tests of the last `days` days."""
    now = now or utcnow()
    since = now - timedelta(days=days)
    params = {"project_id": project.id, "since": since}
    row = db.session.execute(METRICS_QUERY, params).one()
    stages = db.session.execute(STAGES_QUERY, params).all()
    return {
        "project": project.name, "pipeline_path": project.pipeline_path, "days": days, "since": since.isoformat(),
        **_figures(row),
        "stages": [{"name": stage.name, **_figures(stage)} for stage in stages],
        "trend": _trend(params, since, now),
        "flaky_tests": flaky_tests(project.id, days, now),
    }


def _trend(params: dict, since: datetime, now: datetime) -> list[dict]:
    by_day = {row.day: _figures(row) for row in db.session.execute(TREND_QUERY, params)}
    first, last = since.date(), now.date()
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    empty = {"runs": 0, "succeeded": 0, "failed": 0, "cancelled": 0, "success_rate": None,
             "duration_seconds": {"mean": None, "p95": None}, "queue_seconds": {"mean": None, "p95": None}}
    return [{"date": day.isoformat(), **by_day.get(day, empty)} for day in days]
