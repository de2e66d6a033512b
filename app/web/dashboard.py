"""The dashboard: the projects the user can see, with their latest runs, running runs and the queue."""

from flask import render_template, request
from app.auth.permissions import signed_in

from app.runs.history import dashboard_overview
from app.web import web
from app.web.access import visible_projects_query


@web.get("/")
@signed_in
def index():
    """Show every visible project's last run per branch, the running runs and the queue."""
    overview = dashboard_overview(visible_projects_query())
    if request.headers.get("HX-Request") == "true":
        return render_template("dashboard/_overview.html", overview=overview)
    return render_template("dashboard/index.html", overview=overview)
