"""Re-runs, fork approvals and the webhook delivery log."""

from flask import abort, jsonify, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.api import api
from app.api.params import json_body, paginate
from app.api.serialize import run_json
from app.auth.audit import audit
from app.auth.permissions import MAX_ID, Action, can, load_run, project_by_name, project_by_run, requires
from app.extensions import db
from app.forges import delivery_log
from app.models import Run, WebhookDelivery
from app.models._columns import utcnow
from app.runs.rerun import RerunError, rerun
from app.runs.service import release_approved_stages
from app.status import TERMINAL_RUN

def delivery_json(delivery: WebhookDelivery, may_redeliver: bool) -> dict:
    return {
        "id": delivery.id, "forge": delivery.forge, "delivery_id": delivery.forge_delivery_id, "event": delivery.event,
        "status_code": delivery.status_code, "reason": delivery.reason, "run_id": delivery.run_id,
        "received_count": delivery.received_count, "redelivery_of": delivery.redelivery_of_id,
        "received_at": delivery.received_at.isoformat(), "last_received_at": delivery.last_received_at.isoformat(),
        "can_redeliver": may_redeliver and delivery.body is not None,
    }


def _run_target(run: Run) -> str:
    return f"run {run.id} (#{run.number} of project {run.project.name})"


@api.post("/runs/<int:run_id>/rerun")
@requires(Action.RERUN, project_by_run)
def rerun_run(run_id: int):
    """Re-run a run that ended: body {"failed_only": true} re-runs only failed stages and their dependents."""
    body = json_body() if request.data else {}
    failed_only = body.get("failed_only", False)
    if not isinstance(failed_only, bool):
        abort(422, "'failed_only' must be true or false.")
    original = load_run(run_id)
    scope = "failed stages" if failed_only else "whole run"

    try:
        run = rerun(run_id, failed_only=failed_only)
    except RerunError as error:
        audit("run_rerun", target=_run_target(original), outcome="failure", detail=f"{scope}: {error}")
        raise
    audit("run_rerun", target=_run_target(original), detail=f"{scope}, as run {run.id} (#{run.number})")
    return jsonify(run_json(run)), 201, {"Location": url_for("api.get_run", run_id=run.id)}


@api.post("/runs/<int:run_id>/approve")
# Approval gives code from a fork the project's secrets (app/secret_store.py), so only a maintainer
# may approve: MANAGE_PROJECT, which project admins have and developers do not.
@requires(Action.MANAGE_PROJECT, project_by_run)
def approve_run(run_id: int):
    """Approve a run of a pull request from a fork, so that it may get secrets and its deploy stages start."""
    run = load_run(run_id)
    if not run.approval_required:
        audit("run_approve", target=_run_target(run), outcome="failure", detail="the run is not from a fork")
        abort(409, f"Run {run_id} needs no approval: it is not from a fork.")

    if run.status in TERMINAL_RUN:
        audit("run_approve", target=_run_target(run), outcome="failure", detail=f"the run has ended ({run.status})")
        abort(409, f"Run {run_id} has ended ({run.status}); there is nothing left to approve. Re-run it to run it again.")
    if run.approved_at is None:
        run.approved_by_id, run.approved_at = current_user.id, utcnow()
        db.session.commit()
        audit("run_approve", target=_run_target(run))
    # Also on a repeated approval: it releases a stage that a failure left waiting after the first one.
    release_approved_stages(run.id)
    return jsonify({"id": run.id, "approved_by": run.approved_by_id, "approved_at": run.approved_at.isoformat()})


@api.get("/projects/<name>/deliveries")
@requires(Action.VIEW_DELIVERIES, project_by_name)
def list_deliveries(name: str):
    """List the project's webhook deliveries with their status and reason, newest first, a page at a time."""
    project = project_by_name(name)
    query = select(WebhookDelivery).where(WebhookDelivery.project_id == project.id).order_by(WebhookDelivery.id.desc())
    may_redeliver = can(current_user._get_current_object(), Action.REDELIVER, project)
    document, headers = paginate(query, "deliveries", lambda delivery: delivery_json(delivery, may_redeliver))
    return jsonify(document), 200, headers


@api.post("/projects/<name>/deliveries/<int:delivery_id>/redeliver")
@requires(Action.REDELIVER, project_by_name)
def redeliver(name: str, delivery_id: int):
    """Process a stored delivery again as a new delivery; a run event starts a new run even if one ran before."""
    project = project_by_name(name)
    original = delivery_log.find(project, delivery_id) if 0 < delivery_id <= MAX_ID else None
    if original is None:
        abort(404, f"Project {name!r} has no delivery {delivery_id}.")
    try:
        result = delivery_log.redeliver(project, original)
    except delivery_log.RedeliveryError as error:
        abort(409, str(error))
    audit("delivery_redeliver", target=f"delivery {delivery_id} of project {name}",
          detail=f"status {result.status_code}, new delivery {result.delivery_id}: {result.reason}")
    return jsonify(result.json()), result.status_code
