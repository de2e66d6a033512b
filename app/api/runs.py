"""Runs: list with filters, get, trigger, cancel, stages, logs and artifacts."""

from urllib.parse import urlencode

from flask import abort, jsonify, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from app.api import api
from app.api.params import (COMMIT_ID, body_text, choice_arg, int_arg, json_body, paginate, reject_other_fields,
                            text_arg, time_arg)
from app.api.serialize import artifact_json, run_json, stage_json
from app.auth.audit import audit
from app.auth.permissions import Action, load_run, project_by_name, project_by_run, requires, signed_in, visible_project_ids
from app.extensions import db
from app.forges.fields import MAX_REF_NAME, ref_name_problem
from app.models import Artifact, Project, Run, RunStatus, Stage
from app.runs import service
from app.runs.events import EVENT_KINDS, make_event
from app.runs.history import MAX_AUTHOR_LENGTH, MAX_BRANCH_LENGTH
from app.runs.logs import search_lines
from app.runs.search import MAX_STAGE_LENGTH

MAX_LOG_PAGE = 5000
LOG_STREAMS = ("stdout", "stderr", "system")
# Parameters of paged lists. The log is read by sequence number and rejects them.
PAGE_PARAMETERS = ("page", "per_page")
TRIGGERS = ("cli", "api", "webhook", "schedule", "rerun")


def _run_query(project: Project | None):
    """Build the filtered, newest-first run query from the request's parameters."""
    # Every listed run names its project, so the project comes in the same query.
    query = select(Run).options(joinedload(Run.project)).order_by(Run.id.desc())
    if project is not None:
        query = query.where(Run.project_id == project.id)
    else:
        query = query.where(Run.project_id.in_(visible_project_ids(current_user)))
    filters = {
        Run.branch: text_arg("branch", MAX_BRANCH_LENGTH), Run.author: text_arg("author", MAX_AUTHOR_LENGTH),
        Run.commit_sha: text_arg("commit", 64),
        Run.status: choice_arg("status", tuple(RunStatus)), Run.event: choice_arg("event", EVENT_KINDS),
        Run.trigger: choice_arg("trigger", TRIGGERS),
    }
    for column, value in filters.items():
        if value is not None:
            query = query.where(column == value)
    since, until = time_arg("since"), time_arg("until")
    if since is not None:
        query = query.where(Run.queued_at >= since)
    if until is not None:
        query = query.where(Run.queued_at < until)
    return query


def _list(project: Project | None):
    document, headers = paginate(_run_query(project), "runs", lambda run: run_json(run, with_stages=False))
    return jsonify(document), 200, headers


@api.get("/runs")
@signed_in
def list_runs():
    """List runs of the projects the caller may view, newest first, filtered by project, branch, status and more."""
    name = text_arg("project", 100)
    if name is None:
        return _list(None)
    project = project_by_name(name)
    if not current_user.is_admin and project.id not in db.session.scalars(visible_project_ids(current_user)).all():
        abort(404, f"Project {name!r} not found.")
    return _list(project)


@api.get("/projects/<name>/runs")
@requires(Action.VIEW_PROJECT, project_by_name)
def list_project_runs(name: str):
    """List one project's runs, newest first, with the same filters as /runs."""
    return _list(project_by_name(name))


@api.post("/projects/<name>/runs")
@requires(Action.TRIGGER_RUN, project_by_name)
def trigger_run(name: str):
    """Start a run of a branch or commit: body {"branch": ...} or {"commit": ...}."""
    project = project_by_name(name)
    body = json_body(optional=True)
    reject_other_fields(body, ("branch", "commit"), "a run")
    branch = body_text(body, "branch", max_length=MAX_REF_NAME)
    commit = body_text(body, "commit", max_length=64, pattern=COMMIT_ID, rule="expected 4 to 64 hexadecimal digits.")
    if branch and commit:
        abort(422, "Give 'branch' or 'commit', not both.")
    if branch and (problem := ref_name_problem(branch)):
        abort(422, f"'branch' is not a valid Git branch name: {problem}. Expected a name `git check-ref-format` accepts.")
    event = make_event("manual", branch=branch or (None if commit else project.default_branch), commit=commit)
    run = service.create_run(project, trigger="api", event=event)
    return jsonify(_run_detail(run)), 201, {"Location": url_for("api.get_run", run_id=run.id)}


@api.get("/runs/<int:run_id>")
@requires(Action.VIEW_PROJECT, project_by_run)
def get_run(run_id: int):
    """Return a run with its stages and artifacts."""
    return jsonify(_run_detail(load_run(run_id)))


def _run_detail(run: Run) -> dict:
    document = run_json(run)
    document["artifacts"] = [artifact_json(artifact) for artifact in db.session.scalars(select(Artifact).where(Artifact.run_id == run.id))]
    return document


@api.post("/runs/<int:run_id>/cancel")
@requires(Action.CANCEL_RUN, project_by_run)
def cancel_run(run_id: int):
    """Cancel a run; 409 if it has ended already."""
    run = load_run(run_id)
    target = f"run {run.id} (#{run.number} of project {run.project.name})"
    if not service.cancel_run(run.id, f"cancelled by {current_user.username} through the API"):
        audit("run_cancel", target=target, outcome="failure", detail=f"the run had ended already ({run.status})")
        abort(409, f"Run {run_id} has ended already ({run.status}); there is nothing to cancel.")
    audit("run_cancel", target=target)
    db.session.expire_all()
    return jsonify(_run_detail(load_run(run_id)))


@api.get("/runs/<int:run_id>/stages")
@requires(Action.VIEW_PROJECT, project_by_run)
def list_stages(run_id: int):
    """List a run's stages in plan order."""
    return jsonify({"stages": [stage_json(stage) for stage in load_run(run_id).stages]})


@api.get("/runs/<int:run_id>/logs")
@requires(Action.VIEW_PROJECT, project_by_run)
def run_logs(run_id: int):
    """Return stored log lines with seq > `after`, at most `limit`, filtered by `stage` (name), `stream` and `q`."""
    load_run(run_id)
    for name in PAGE_PARAMETERS:
        if name in request.args:
            # Ignoring it would return the first lines as if they were the requested page.
            abort(422, f"'{name}' does not apply to logs, which are read by sequence number. Pass "
                       "'after' (the 'next_after' of the previous response) and 'limit' (lines, at most "
                       f"{MAX_LOG_PAGE}) instead.")
    after = int_arg("after", 0, 0, 2**62)
    limit = int_arg("limit", 1000, 1, MAX_LOG_PAGE)
    stream = choice_arg("stream", LOG_STREAMS)
    contains = text_arg("q", 500)
    stage_id = None
    if (stage_name := text_arg("stage", MAX_STAGE_LENGTH)) is not None:
        stage_id = db.session.scalar(select(Stage.id).where(Stage.run_id == run_id, Stage.name == stage_name))
        if stage_id is None:
            abort(404, f"Run {run_id} has no stage {stage_name!r}.")
    lines = search_lines(db.engine, run_id, after, limit, stage_id, stream, contains)
    next_after = lines[-1]["seq"] if lines else after
    headers = {}
    if len(lines) == limit:
        arguments = urlencode({**request.args.to_dict(), "after": next_after})
        headers["Link"] = f'<{request.base_url}?{arguments}>; rel="next"'
    return jsonify({"lines": lines, "next_after": next_after}), 200, headers


@api.get("/runs/<int:run_id>/artifacts/<name>")
@requires(Action.VIEW_PROJECT, project_by_run)
def download_artifact(run_id: int, name: str):
    """Download an artifact archive (.tar.gz)."""
    artifact = None
    if len(name) <= 200 and "\x00" not in name:
        artifact = db.session.scalar(select(Artifact).where(Artifact.run_id == run_id, Artifact.name == name))
    if artifact is None:
        abort(404, f"Run {run_id} has no artifact {name[:200]!r}.")
    return send_file(artifact.path, as_attachment=True, download_name=f"{name}.tar.gz", mimetype="application/gzip")
