"""Deployment pages: a project's environments with their history, and one deployment with its controls."""

from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user

from app.api.deployments import load_deployment, project_by_deployment
from app.auth.audit import audit
from app.auth.permissions import Action, project_by_name, requires
from app.deployments import queries
from app.deployments import requests as deployment_requests
from app.deployments.requests import DeploymentError
from app.models import Deployment
from app.web import web

ACTIONS = ("promote", "abort", "approve", "rollback")


_deployment = load_deployment


@web.get("/projects/<name>/environments")
@requires(Action.VIEW_PROJECT, project_by_name)
def environments(name: str):
    """List the project's environments: what is live in each, and its deployment history."""
    project = project_by_name(name)
    rows = queries.environments_of(project)
    return render_template("deployments/environments.html", project=project, environments=rows,
                           histories={row.id: queries.history(row) for row in rows})


@web.get("/deployments/<int:deployment_id>")
@requires(Action.VIEW_PROJECT, project_by_deployment)
def deployment_page(deployment_id: int):
    """Show a deployment: its traffic, steps, analysis results and history, with its controls."""
    deployment = _deployment(deployment_id)
    return render_template("deployments/show.html", deployment=deployment, project=deployment.environment.project)


@web.get("/deployments/<int:deployment_id>/status")
@requires(Action.VIEW_PROJECT, project_by_deployment)
def deployment_status(deployment_id: int):
    """Render the deployment's status fragment alone, for HTMX polling while it runs."""
    return render_template("deployments/_deployment.html", deployment=_deployment(deployment_id))


@web.post("/deployments/<int:deployment_id>/<action>")
@requires(Action.DEPLOY, project_by_deployment)
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
    audit(f"deployment_{action}", target=f"deployment {deployment_id}", outcome="failure" if error else "success",
          detail=error)
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
