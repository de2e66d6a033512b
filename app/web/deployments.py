"""Deployment pages: a project's environments with their history, and one deployment with its controls."""

from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from app.deployments import queries
from app.deployments import requests as deployment_requests
from app.deployments.requests import DeploymentError
from app.extensions import db
from app.models import Deployment, Project
from app.web import web

ACTIONS = ("promote", "abort", "approve", "rollback")


def _deployment(deployment_id: int) -> Deployment:
    return db.session.get(Deployment, deployment_id) or abort(404, f"Deployment {deployment_id} not found.")


@web.get("/projects/<name>/environments")
@login_required
def environments(name: str):
    """List the project's environments: what is live in each, and its deployment history."""
    project = db.session.scalar(select(Project).where(Project.name == name)) or abort(404, f"Project {name!r} not found.")
    rows = queries.environments_of(project)
    return render_template("deployments/environments.html", project=project, environments=rows,
                           histories={row.id: queries.history(row) for row in rows})


@web.get("/deployments/<int:deployment_id>")
@login_required
def deployment_page(deployment_id: int):
    """Show a deployment: its traffic, steps, analysis results and history, with its controls."""
    deployment = _deployment(deployment_id)
    return render_template("deployments/show.html", deployment=deployment, project=deployment.environment.project)


@web.get("/deployments/<int:deployment_id>/status")
@login_required
def deployment_status(deployment_id: int):
    """Render the deployment's status fragment alone, for HTMX polling while it runs."""
    return render_template("deployments/_deployment.html", deployment=_deployment(deployment_id))


@web.post("/deployments/<int:deployment_id>/<action>")
@login_required
def deployment_action(deployment_id: int, action: str):
    """Promote, abort, approve or roll back from the page; the fragment shows the result or the error."""
    if action not in ACTIONS:
        abort(404, f"Deployments have no action {action!r}; use one of {', '.join(ACTIONS)}.")
    deployment = _deployment(deployment_id)
    error = None
    try:
        deployment = _perform(deployment, action)
    except DeploymentError as problem:
        error = str(problem)
    if request.headers.get("HX-Request"):
        return render_template("deployments/_deployment.html", deployment=deployment, error=error), 200
    if error:
        abort(409, error)
    return redirect(url_for("web.deployment_page", deployment_id=deployment.id))


def _perform(deployment: Deployment, action: str) -> Deployment:
    if action == "promote":
        return deployment_requests.request_promote(deployment, current_user)
    if action == "abort":
        return deployment_requests.request_abort(deployment, f"Aborted by {current_user.username}")
    if action == "approve":
        return deployment_requests.approve(deployment, current_user)
    return deployment_requests.rollback(deployment, current_user)
