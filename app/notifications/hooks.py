"""The entry points the rest of the platform calls: they only queue jobs and never raise.

A run must never wait for or fail because of a notification, so these catch every
error (Redis down, a bug), log it with the id, and return. Planning and sending happen
in RQ jobs on the notification queue.
"""

import logging

from app.queue import notify_queue, redis_connection

log = logging.getLogger(__name__)

PLAN_RUN_JOB = "jobs.notifications.plan_run_notifications"
PLAN_DEPLOYMENT_JOB = "jobs.notifications.plan_deployment_notifications"
# Seconds a planning job may take; it only reads and writes rows.
PLAN_JOB_TIMEOUT = 120
# Seconds the caller waits for Redis at most, so a stuck Redis cannot hold up the end of a run.
REDIS_TIMEOUT = 5


def _queue():
    connection = redis_connection(socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT)
    return notify_queue(connection)


def notify_run_finished(run_id: int) -> None:
    """Queue the planning of a finished run's notifications; errors are logged, never raised."""
    try:
        _queue().enqueue(PLAN_RUN_JOB, run_id, job_timeout=PLAN_JOB_TIMEOUT, job_id=f"notify-run-{run_id}")
    except Exception:  # noqa: BLE001  (a notification problem must not fail the run)
        log.exception("run %s: could not queue its notifications", run_id)


def notify_deployment_event(project_id: int, event: str, deployment_id: int | str, *, environment: str,
                            status: str, branch: str | None = None, commit: str | None = None,
                            author: str | None = None, url: str | None = None, reason: str | None = None,
                            run_id: int | None = None) -> None:
    """Queue notifications for a deployment event (deployment_started, …_succeeded, …_failed, …_rolled_back).

    `deployment_id` with `event` identifies the notification, so calling this twice for
    the same pair sends once. Errors are logged, never raised.
    """
    details = {"environment": environment, "status": status, "branch": branch, "commit": commit, "author": author,
               "url": url, "reason": reason, "run_id": run_id}
    try:
        _queue().enqueue(PLAN_DEPLOYMENT_JOB, project_id, event, deployment_id, details,
                               job_timeout=PLAN_JOB_TIMEOUT)
    except Exception:  # noqa: BLE001  (a notification problem must not fail the deployment)
        log.exception("deployment %s: could not queue its %s notifications", deployment_id, event)
