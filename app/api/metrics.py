"""Project metrics as JSON: the figures the metrics page shows."""

from flask import abort, jsonify, request
from flask_login import login_required

from app.api import api
from app.runs.metrics import DEFAULT_DAYS, project_metrics
from app.web.access import viewable_project

MAX_DAYS = 365


@api.get("/projects/<name>/metrics")
@login_required
def get_project_metrics(name: str):
    """Return success rate, mean and p95 duration and queue time per pipeline and stage, the daily trend and flaky tests."""
    project = viewable_project(name)
    days = request.args.get("days", DEFAULT_DAYS, type=int)
    if not 1 <= days <= MAX_DAYS:
        abort(422, f"'days' must be between 1 and {MAX_DAYS}.")
    return jsonify(project_metrics(project, days))
