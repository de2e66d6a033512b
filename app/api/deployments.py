"""Environments and deployments: list, configure, deploy, and promote, abort, approve or roll back."""

from flask import abort, g, jsonify, request, url_for
from flask_login import current_user

from app.api import api
from app.api.serialize import deployment_json, environment_json
from app.auth.audit import audit
from app.auth.permissions import MAX_ID, Action, project_by_name, requires
from app.deployments import queries
from app.deployments import requests as deployment_requests
from app.extensions import db
from app.models import Deployment, Environment, Project


def load_deployment(deployment_id: int) -> Deployment:
    """Return the deployment `deployment_id`; 404 when there is none."""
    found = db.session.get(Deployment, deployment_id) if 0 < deployment_id <= MAX_ID else None
    return found or abort(404, f"Deployment {deployment_id} not found.")


def project_by_deployment(deployment_id: int, **_) -> Project:
    """Load the project of the route's deployment, for `requires`."""
    deployment = load_deployment(deployment_id)
    g.route_not_found = f"Deployment {deployment.id} not found."
    return deployment.environment.project


_project = project_by_name
_deployment = load_deployment


def _environment(name: str, environment: str) -> Environment:
    found = queries.environment_named(_project(name), environment)
    return found or abort(404, f"Project {name!r} has no environment {environment!r}.")


def _body() -> dict:
    body = request.get_json(silent=True)
    if body is not None and not isinstance(body, dict):
        abort(422, "The body must be a JSON object.")
    return body or {}


@api.get("/projects/<name>/environments")
@requires(Action.VIEW_PROJECT, project_by_name)
def list_environments(name: str):
    """List the project's environments with what is live in each."""
    return jsonify({"environments": [environment_json(row) for row in queries.environments_of(_project(name))]})


@api.put("/projects/<name>/environments/<environment>")
@requires(Action.MANAGE_PROJECT, project_by_name)
def put_environment(name: str, environment: str):
    """Create or change an environment: body {"kind", "target", "credentials"}; credentials are write-only."""
    body = _body()
    if not isinstance(body.get("target", {}), dict) or not isinstance(body.get("credentials", {}), dict):
        abort(422, "'target' and 'credentials' must be JSON objects.")
    row = deployment_requests.ensure_environment(_project(name), environment, kind=body.get("kind"),
                                                 target=body.get("target"))
    if "credentials" in body:
        deployment_requests.set_credentials(row, body["credentials"])
    audit("environment_update", target=f"project {name} environment {environment}",
          detail="credentials replaced" if "credentials" in body else None)
    return jsonify(environment_json(row))


@api.get("/projects/<name>/environments/<environment>/deployments")
@requires(Action.VIEW_PROJECT, project_by_name)
def list_deployments(name: str, environment: str):
    """List an environment's deployments, newest first (rollbacks are deployments too)."""
    rows = queries.history(_environment(name, environment))
    return jsonify({"deployments": [deployment_json(row) for row in rows]})


@api.post("/projects/<name>/environments/<environment>/deployments")
@requires(Action.DEPLOY, project_by_name)
def create_deployment(name: str, environment: str):
    """Deploy a release: body {"release": {"name", "artifact", "commit"}, "spec": {...}}; 201 even if it failed."""
    body = _body()
    release, spec = body.get("release"), body.get("spec", {})
    if not isinstance(release, dict) or not release.get("name") or not release.get("artifact"):
        abort(422, "'release' needs a 'name' and an 'artifact'.")
    if not isinstance(spec, dict):
        abort(422, "'spec' must be a JSON object.")
    project = _project(name)
    row = deployment_requests.ensure_environment(project, environment)
    artifact = deployment_requests.resolve_artifact(project, release["artifact"], current_user)
    stored = deployment_requests.create_release(project, release["name"], artifact, commit_sha=release.get("commit"))
    deployment = deployment_requests.create_deployment(row, stored, spec, requested_by=current_user.username,
                                                       user=current_user)
    audit("deploy", target=f"project {name} environment {environment}",
          detail=f"deployment {deployment.id} of release {stored.name!r}: {deployment.status}")
    return jsonify(deployment_json(deployment)), 201, {
        "Location": url_for("api.get_deployment", deployment_id=deployment.id)}


@api.get("/deployments/<int:deployment_id>")
@requires(Action.VIEW_PROJECT, project_by_deployment)
def get_deployment(deployment_id: int):
    """Return a deployment with its history: transitions, traffic splits, analysis results and approvals."""
    return jsonify(deployment_json(_deployment(deployment_id), with_events=True))


@api.post("/deployments/<int:deployment_id>/promote")
@requires(Action.DEPLOY, project_by_deployment)
def promote_deployment(deployment_id: int):
    """End the current pause and go on; 409 unless paused or progressing."""
    deployment = deployment_requests.request_promote(_deployment(deployment_id), current_user)
    audit("deployment_promote", target=f"deployment {deployment_id}")
    return jsonify(deployment_json(deployment)), 202


@api.post("/deployments/<int:deployment_id>/abort")
@requires(Action.DEPLOY, project_by_deployment)
def abort_deployment(deployment_id: int):
    """Roll the deployment back (or drop it before it starts); 409 once it has ended."""
    reason = f"Aborted by {current_user.username}"
    deployment = deployment_requests.request_abort(_deployment(deployment_id), reason)
    audit("deployment_abort", target=f"deployment {deployment_id}")
    return jsonify(deployment_json(deployment)), 202


@api.post("/deployments/<int:deployment_id>/approve")
@requires(Action.DEPLOY, project_by_deployment)
def approve_deployment(deployment_id: int):
    """Approve the gate the deployment waits at; 403 for self-approval or a role too low."""
    deployment = deployment_requests.approve(_deployment(deployment_id), current_user)
    audit("deployment_approve", target=f"deployment {deployment_id}")
    return jsonify(deployment_json(deployment)), 202


@api.post("/deployments/<int:deployment_id>/rollback")
@requires(Action.DEPLOY, project_by_deployment)
def rollback_deployment(deployment_id: int):
    """Deploy the release this deployment replaced, as a new deployment; 201 with it."""
    deployment = deployment_requests.rollback(_deployment(deployment_id), current_user)
    audit("deployment_rollback", target=f"deployment {deployment_id}", detail=f"new deployment {deployment.id}")
    return jsonify(deployment_json(deployment)), 201, {
        "Location": url_for("api.get_deployment", deployment_id=deployment.id)}
