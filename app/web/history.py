"""A project's run history with filters and pages, and search across its logs."""

from flask import render_template, request

from app.models import RunStatus
from app.runs.events import EVENT_KINDS
from app.runs.history import FilterError, RunFilters, project_branches, project_history
from app.runs.search import STREAMS, SearchError, search_logs, stage_names
from app.web import web
from app.auth.permissions import Action, project_by_name, requires


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


@web.get("/projects/<name>")
@requires(Action.VIEW_PROJECT, project_by_name)
def project_runs(name: str):
    """List a project's runs, newest first, filtered by branch, status, event, author and dates."""
    project = project_by_name(name)
    problem, filters = None, RunFilters()
    try:
        filters = RunFilters.from_args(request.args)
    except FilterError as error:
        problem = str(error)
    page = project_history(project, filters, request.args.get("page", 1, type=int))
    context = {"project": project, "page": page, "filters": filters, "problem": problem,
               "branches": project_branches(project), "statuses": list(RunStatus), "events": EVENT_KINDS}
    status = 422 if problem else 200
    if _is_htmx():
        return render_template("projects/_runs.html", **context), status
    return render_template("projects/runs.html", **context), status


@web.get("/projects/<name>/search")
@requires(Action.VIEW_PROJECT, project_by_name)
def project_search(name: str):
    """Search the log lines of a project's runs for a substring, filtered by stage and stream."""
    project = project_by_name(name)
    term = request.args.get("q", "").strip()
    stage, stream = request.args.get("stage", "").strip(), request.args.get("stream", "").strip()
    page = max(request.args.get("page", 1, type=int), 1)
    matches, problem = [], None
    if term:
        try:
            matches = search_logs(project.id, term, stage=stage, stream=stream, page=page)
        except SearchError as error:
            problem = str(error)
    context = {"project": project, "term": term, "stage": stage, "stream": stream, "page": page,
               "matches": matches[:50], "has_next": len(matches) > 50, "problem": problem,
               "stages": stage_names(project.id), "streams": STREAMS}
    if _is_htmx():
        return render_template("projects/_search_results.html", **context)
    return render_template("projects/search.html", **context)
