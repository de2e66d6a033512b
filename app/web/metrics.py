"""A project's metrics page: success rates, durations, queue times, 30-day trends and flaky tests."""

from flask import render_template, request

from app.runs.metrics import project_metrics
from app.web import web
from app.auth.permissions import Action, project_by_name, requires

ALLOWED_DAYS = (7, 30, 90)
DEFAULT_DAYS = 30


@web.get("/projects/<name>/metrics")
@requires(Action.VIEW_PROJECT, project_by_name)
def project_metrics_page(name: str):
    """Show the pipeline's and each stage's figures with their daily trend as charts."""
    project = project_by_name(name)
    days = request.args.get("days", DEFAULT_DAYS, type=int)
    days = days if days in ALLOWED_DAYS else DEFAULT_DAYS
    return render_template("projects/metrics.html", project=project, metrics=project_metrics(project, days),
                           allowed_days=ALLOWED_DAYS)
