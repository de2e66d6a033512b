"""RQ job that drives a deployment (app/deployments/engine.py)."""

from app.extensions import db
from jobs.tasks import get_app


def drive_deployment(deployment_id: int) -> None:
    """Drive a deployment until it ends or waits for people.

    Enqueued by every deployment request, by the end of the environment's previous
    deployment, and by the scheduler's reaper when a job died. Safe to run twice: a
    job that cannot take the deployment's lease exits at once. Timeout
    DRIVE_JOB_TIMEOUT; not retried by RQ (the reaper queues a new job instead).
    """
    from app.deployments import engine

    with get_app().app_context():
        try:
            engine.drive(deployment_id)
        finally:
            db.session.remove()
