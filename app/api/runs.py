"""Projects and runs: list, get, trigger, cancel, logs and artifacts."""

from flask import abort, jsonify, request, send_file, url_for
from flask_login import login_required
from sqlalchemy import select

from app.api import api
from app.api.serialize import artifact_json, project_json, run_json
from app.extensions import db
from app.models import Artifact, Project, Run
from app.runs import service
from app.runs.events import make_event
from app.runs.logs import read_lines

MAX_LOG_PAGE = 5000


def _project(name: str) -> Project:
    return db.session.scalar(select(Project).where(Project.name == name)) or abort(404, f"Project {name!r} not found.")


def _run(run_id: int) -> Run:
    return db.session.get(Run, run_id) or abort(404, f"Run {run_id} not found.")


@api.get("/projects")
@login_required
def list_projects():
    """List the projects."""
    return jsonify({"projects": [project_json(project) for project in db.session.scalars(select(Project).order_by(Project.name))]})


@api.post("/projects/<name>/runs")
@login_required
def trigger_run(name: str):
    """Start a run of a branch or commit: body {"branch": ...} or {"commit": ...}."""
    project = _project(name)
    body = request.get_json(silent=True) or {}
    branch, commit = body.get("branch"), body.get("commit")
    if branch is not None and not isinstance(branch, str) or commit is not None and not isinstance(commit, str):
        abort(422, "'branch' and 'commit' must be strings.")
    if branch and commit:
        abort(422, "Give 'branch' or 'commit', not both.")
    event = make_event("manual", branch=branch or (None if commit else project.default_branch), commit=commit)
    run = service.create_run(project, trigger="api", event=event)
    return jsonify(run_json(run)), 201, {"Location": url_for("api.get_run", run_id=run.id)}


@api.get("/runs/<int:run_id>")
@login_required
def get_run(run_id: int):
    """Return a run with its stages."""
    run = _run(run_id)
    document = run_json(run)
    document["artifacts"] = [artifact_json(artifact) for artifact in db.session.scalars(select(Artifact).where(Artifact.run_id == run_id))]
    return jsonify(document)


@api.post("/runs/<int:run_id>/cancel")
@login_required
def cancel_run(run_id: int):
    """Cancel a run; 409 if it has ended already."""
    run = _run(run_id)
    if not service.cancel_run(run.id, "cancelled through the API"):
        abort(409, f"Run {run_id} has ended already ({run.status}); there is nothing to cancel.")
    db.session.expire_all()
    return jsonify(run_json(_run(run_id)))


@api.get("/runs/<int:run_id>/logs")
@login_required
def run_logs(run_id: int):
    """Return stored log lines with seq > `after`, at most `limit` (default 1000)."""
    _run(run_id)
    try:
        after = int(request.args.get("after", 0))
        limit = min(int(request.args.get("limit", 1000)), MAX_LOG_PAGE)
    except ValueError:
        abort(422, "'after' and 'limit' must be whole numbers.")
    lines = read_lines(db.engine, run_id, after, limit)
    return jsonify({"lines": lines, "next_after": lines[-1]["seq"] if lines else after})


@api.get("/runs/<int:run_id>/artifacts/<name>")
@login_required
def download_artifact(run_id: int, name: str):
    """Download an artifact archive (.tar.gz)."""
    artifact = db.session.scalar(select(Artifact).where(Artifact.run_id == run_id, Artifact.name == name))
    if artifact is None:
        abort(404, f"Run {run_id} has no artifact {name!r}.")
    return send_file(artifact.path, as_attachment=True, download_name=f"{name}.tar.gz")
