"""RQ jobs on the notification queue ("deno-ci-notify"): plan a run's or a deployment's notifications, send one.

app.notifications.hooks enqueues the planning jobs; they enqueue `deliver_notification`
once per delivery, and the scheduler enqueues it again for retries. All three take ids
and plain values, reload their rows, and are safe to run twice: planning inserts rows
with unique keys, and sending claims its row before it sends. None uses RQ's own
retries; a failed attempt is recorded and retried by the scheduler.
"""

import logging

from flask import current_app

from app.extensions import db
from app.models import Project

from app.notifications import plan
from app.notifications.delivery import deliver, enqueue_deliveries
from app.notifications.events import DEPLOYMENT_EVENTS, EVENT_LABELS, Event
from app.notifications.message import Message

log = logging.getLogger(__name__)


def plan_run_notifications(run_id: int) -> int:
    """Plan a finished run's notifications and queue them; return how many were queued. Enqueued when a run ends."""
    waiting = plan.plan_run(run_id)
    enqueue_deliveries(waiting)
    log.info("run %s: %s notification deliveries queued", run_id, len(waiting))
    return len(waiting)


def plan_deployment_notifications(project_id: int, event: str, deployment_id: int | str, details: dict) -> int:
    """Plan one deployment event's notifications and queue them; return how many were queued."""
    if event not in DEPLOYMENT_EVENTS:
        log.error("deployment %s: event %r is not a deployment event; nothing sent", deployment_id, event)
        return 0
    message = deployment_message(project_id, Event(event), deployment_id, details)
    waiting = plan.plan_deployment(project_id, Event(event), deployment_id, message, details.get("branch"))
    enqueue_deliveries(waiting)
    log.info("deployment %s: %s notification deliveries queued for %s", deployment_id, len(waiting), event)
    return len(waiting)


def deployment_message(project_id: int, event: Event, deployment_id: int | str, details: dict) -> Message:
    """Build the message of a deployment event; the link is `details["url"]` or the project's page."""
    project = db.session.get(Project, project_id)
    name = project.name if project else str(project_id)
    environment = details.get("environment") or "?"
    base_url = current_app.config["BASE_URL"].rstrip("/")
    return Message(
        event=event, title=f"{EVENT_LABELS[event]}: {name} to {environment}", status=details.get("status") or event,
        project=name, url=details.get("url") or f"{base_url}/projects/{name}", run_id=details.get("run_id"),
        branch=details.get("branch"), commit=details.get("commit"), author=details.get("author"),
        reason=details.get("reason"), environment=environment, details={"deployment_id": deployment_id},
    )


def deliver_notification(delivery_id: int) -> str | None:
    """Make one attempt at a delivery; return its outcome, or None when another job had it."""
    result = deliver(delivery_id)
    return result.outcome if result else None
