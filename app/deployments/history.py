"""Recording a deployment's transitions and events, and announcing them to notification rules."""

import logging

from flask import current_app

from app.deployments import deploy_stages
from app.deployments.status import TRANSITIONS, DeploymentStatus
from app.extensions import db
from app.models import Deployment, DeploymentEvent
from app.models._columns import utcnow
from app.notifications import notify_deployment_event

log = logging.getLogger(__name__)

# The notification event each status raises, in the words of app/notifications/events.py.
NOTIFIED = {
    DeploymentStatus.PREPARING: "deployment_started",
    DeploymentStatus.SUCCEEDED: "deployment_succeeded",
    DeploymentStatus.FAILED: "deployment_failed",
    DeploymentStatus.ROLLED_BACK: "deployment_rolled_back",
}


class TransitionError(Exception):
    """A move between two statuses that the engine does not allow (a bug, never bad input)."""


def record_event(deployment: Deployment, kind: str, message: str, details: dict | None = None) -> DeploymentEvent:
    """Add an entry to the deployment's history (the caller commits)."""
    event = DeploymentEvent(deployment_id=deployment.id, kind=kind, status=deployment.status,
                            step_index=deployment.step_index, weight=deployment.weight, split=dict(deployment.split),
                            message=message, details=details or {}, time=utcnow())
    db.session.add(event)
    return event


def transition(deployment: Deployment, status: DeploymentStatus, reason: str | None = None) -> None:
    """Move `deployment` to `status`, record it in its history, commit, and notify."""
    previous = DeploymentStatus(deployment.status)
    if status != previous and status not in TRANSITIONS.get(previous, ()):
        raise TransitionError(f"Deployment {deployment.id} cannot move from {previous} to {status}")
    deployment.status = status
    if reason is not None:
        deployment.status_reason = reason
    if status in (DeploymentStatus.SUCCEEDED, DeploymentStatus.ROLLED_BACK, DeploymentStatus.FAILED,
                  DeploymentStatus.SUPERSEDED):
        deployment.finished_at = utcnow()
    record_event(deployment, "status", reason or status.replace("_", " "))
    db.session.commit()
    log.info("deployment %s: %s -> %s%s", deployment.id, previous, status, f" ({reason})" if reason else "")
    if status != previous or reason:
        deploy_stages.on_transition(deployment, status, reason)
    if status in NOTIFIED and status != previous:
        notify(deployment, NOTIFIED[status])


def record_traffic(deployment: Deployment, weight: int, split: dict[str, int], message: str) -> None:
    """Store the split the adapter applied, with the release's weight, and commit."""
    deployment.weight = weight
    deployment.split = split
    record_event(deployment, "traffic", message)
    db.session.commit()
    log.info("deployment %s: traffic %s", deployment.id, split)
    deploy_stages.announce(deployment, f"{message} (split {_format_split(split)})")


def _format_split(split: dict[str, int]) -> str:
    return ", ".join(f"{release} {weight} %" for release, weight in split.items()) or "no release"


def notify(deployment: Deployment, event: str) -> None:
    """Queue the notifications of a deployment event; never raises."""
    environment, release = deployment.environment, deployment.release
    base = current_app.config.get("BASE_URL", "").rstrip("/")
    notify_deployment_event(
        environment.project_id, event, deployment.id, environment=environment.name, status=deployment.status,
        commit=release.commit_sha, author=deployment.requested_by, reason=deployment.status_reason,
        url=f"{base}/deployments/{deployment.id}" if base else None, run_id=deployment.run_id,
    )
