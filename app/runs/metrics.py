"""Figures about a project's pipeline and its stages over a window of days.

Success rate counts only runs and stages that ended by themselves: cancelled and
skipped ones are left out. A stage that failed with `allowFailure` counts as not
passed. Durations run from start to end; queue time from queued (a stage: handed
to the queue) to start. All times are in seconds and days are UTC days.
"""

from datetime import datetime, timedelta

from sqlalchemy import text

from app.extensions import db
from app.models import Project
from app.models._columns import utcnow
from app.runs.test_results import flaky_tests

DEFAULT_DAYS = 30

_FIGURES = """
    count(*) AS runs,
    count(*) FILTER (WHERE {t}status IN ({passed})) AS passed,
    count(*) FILTER (WHERE {t}status IN ({ended})) AS ended,
    avg(extract(epoch FROM {t}finished_at - {t}started_at)) FILTER (WHERE {t}status IN ({ended})) AS mean_duration,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM {t}finished_at - {t}started_at))
        FILTER (WHERE {t}status IN ({ended})) AS p95_duration,
    avg(extract(epoch FROM {t}started_at - {t}{queued})) AS mean_queue_time,
    percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM {t}started_at - {t}{queued})) AS p95_queue_time
"""
RUN_FIGURES = _FIGURES.format(t="", passed="'success'", ended="'success', 'failed', 'error'", queued="queued_at")
STAGE_FIGURES = _FIGURES.format(t="s.", passed="'success'", ended="'success', 'failed', 'allowed_failure', 'error'",
                                queued="enqueued_at")


def _round(value) -> float | None:
    return None if value is None else round(float(value), 3)


def _figures(row) -> dict:
    return {
        "runs": row.runs,
        "success_rate": round(row.passed / row.ended, 4) if row.ended else None,
        "mean_duration": _round(row.mean_duration), "p95_duration": _round(row.p95_duration),
        "mean_queue_time": _round(row.mean_queue_time), "p95_queue_time": _round(row.p95_queue_time),
    }


def project_metrics(project: Project, days: int = DEFAULT_DAYS, now: datetime | None = None) -> dict:
    """Return the pipeline's and each stage's figures, the daily trend and the flaky tests."""
    now = now or utcnow()
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    params = {"project_id": project.id, "since": since}
    pipeline = db.session.execute(text(
        f"SELECT {RUN_FIGURES} FROM runs WHERE project_id = :project_id AND queued_at >= :since"), params).one()
    stages = db.session.execute(text(
        f"SELECT s.name, {STAGE_FIGURES} FROM stages s JOIN runs r ON r.id = s.run_id "
        "WHERE r.project_id = :project_id AND r.queued_at >= :since AND s.started_at IS NOT NULL "
        "GROUP BY s.name ORDER BY min(s.position), s.name"), params).all()
    return {
        "project": project.name, "pipeline_path": project.pipeline_path, "days": days, "since": since.isoformat(),
        "pipeline": _figures(pipeline),
        "stages": [{"name": row.name, **_figures(row)} for row in stages],
        "trend": _trend(params, since, days),
        "flaky_tests": flaky_tests(project.id, days, now),
    }


def _trend(params: dict, since: datetime, days: int) -> list[dict]:
    rows = db.session.execute(text(
        f"SELECT date_trunc('day', queued_at AT TIME ZONE 'UTC')::date AS day, {RUN_FIGURES} FROM runs "
        "WHERE project_id = :project_id AND queued_at >= :since GROUP BY day"), params).all()
    by_day = {row.day: _figures(row) for row in rows}
    empty = {"runs": 0, "success_rate": None, "mean_duration": None, "p95_duration": None, "mean_queue_time": None,
             "p95_queue_time": None}
    first = since.date()
    return [{"date": (first + timedelta(days=offset)).isoformat(), **by_day.get(first + timedelta(days=offset), empty)}
            for offset in range(days)]
