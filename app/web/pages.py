"""The pages: projects, a project's runs, and a run with its stages and live log."""

from flask import abort, render_template, send_file
from flask_login import current_user
from sqlalchemy import select

from app.auth.permissions import Action, project_by_name, project_by_run, requires, signed_in, visible_project_ids
from app.extensions import db
from app.models import Artifact, Project, Run
from app.web import web

RUNS_PER_PAGE = 50


@web.get("/")
@signed_in
def index():
    """List the projects the user may see, with their latest run."""
    visible = visible_project_ids(current_user)
    projects = db.session.scalars(select(Project).where(Project.id.in_(visible)).order_by(Project.name)).all()
    latest = {project.id: project.runs.order_by(Run.number.desc()).first() for project in projects}
    return render_template("projects/index.html", projects=projects, latest=latest)


@web.get("/projects/<name>")
@requires(Action.VIEW_PROJECT, project_by_name)
def project_runs(name: str):
    """List a project's runs, newest first."""
    project = db.session.scalar(select(Project).where(Project.name == name)) or abort(404, f"Project {name!r} not found.")
    runs = project.runs.order_by(Run.number.desc()).limit(RUNS_PER_PAGE).all()
    return render_template("projects/runs.html", project=project, runs=runs)


@web.get("/runs/<int:run_id>")
@requires(Action.VIEW_PROJECT, project_by_run)
def run_page(run_id: int):
    """Show a run: its stages and its live log."""
    run = db.session.get(Run, run_id) or abort(404, f"Run {run_id} not found.")
    return render_template("runs/show.html", run=run, project=run.project)


@web.get("/runs/<int:run_id>/stages")
@requires(Action.VIEW_PROJECT, project_by_run)
def run_stages(run_id: int):
    """Render the run's stage list alone, for HTMX polling while the run is going on."""
    run = db.session.get(Run, run_id) or abort(404, f"Run {run_id} not found.")
    return render_template("runs/_stages.html", run=run)


@web.get("/runs/<int:run_id>/artifacts/<name>")
@requires(Action.VIEW_PROJECT, project_by_run)
def artifact_download(run_id: int, name: str):
    """Download an artifact archive (.tar.gz)."""
    artifact = db.session.scalar(select(Artifact).where(Artifact.run_id == run_id, Artifact.name == name))
    if artifact is None:
        abort(404, f"Run {run_id} has no artifact {name!r}.")
    return send_file(artifact.path, as_attachment=True, download_name=f"{name}.tar.gz")
