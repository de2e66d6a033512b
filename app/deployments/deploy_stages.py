"""The deploy stage that waits for a deployment: its log lines, its end, and its cancel.

A deploy stage records its deployment (jobs/deploy_stage.py) and then stays running
with `waiting_for = "deployment"` and no worker. From then on the deployment drives
the stage: every transition and traffic change adds a line to the stage's log, and
the deployment's end ends the stage and advances the run (app/runs/service.py).
Nothing here may break the engine, so a failure is logged and left to
`finish_stages_of_ended_deployments`, which the scheduler calls every tick.
"""

import logging

from sqlalchemy import select

from app.deployments.status import TERMINAL, DeploymentStatus
from app.extensions import db
from app.models import Deployment, Run, Stage
from app.runs import service
from app.status import RunStatus, StageStatus, StageWait

log = logging.getLogger(__name__)


def waiting_stage(deployment_id: int) -> Stage | None:
    """Return the stage that recorded the deployment, if any, whatever its status."""
    return db.session.scalar(select(Stage).where(Stage.deployment_id == deployment_id))


def announce(deployment: Deployment, message: str) -> None:
    """Add `message` about the deployment to the log of the stage that recorded it.

    Any error is logged and swallowed, because a log line must not stop the engine.
    """
    try:
        stage = waiting_stage(deployment.id)
        if stage is not None:
            service.system_log(stage.run_id, stage.id, f"Deployment #{deployment.number}: {message}")
    except Exception:  # noqa: BLE001  (the engine goes on; the line is lost)
        db.session.rollback()
        log.exception("deployment %s: could not write to its stage's log", deployment.id)


def on_transition(deployment: Deployment, status: DeploymentStatus, reason: str | None) -> None:
    """Log a transition in the stage's log, and end the stage when the deployment ended.

    Any error is logged and swallowed; the scheduler ends the stage later instead.
    """
    announce(deployment, _describe(status, reason))
    if status not in TERMINAL:
        return
    try:
        finish_stage_of(deployment.id)
    except Exception:  # noqa: BLE001  (finish_stages_of_ended_deployments retries on the next scheduler tick)
        db.session.rollback()
        log.exception("deployment %s: could not end its stage; the scheduler will retry", deployment.id)


def _describe(status: DeploymentStatus, reason: str | None) -> str:
    label = status.replace("_", " ")
    if status == DeploymentStatus.WAITING_FOR_APPROVAL:
        return f"{label}. {reason or ''} Approve it on the deployment's page; this stage waits until then."
    return f"{label}: {reason}" if reason else label


def finish_stage_of(deployment_id: int) -> bool:
    """End the running stage that waits for a deployment that has ended; return True if one was ended.

    Succeeded ends the stage as success. Any other end (failed, rolled back,
    superseded) fails it with the deployment's reason, or cancels it when its run was
    cancelled meanwhile. A stage's `retries` do not apply: retrying would deploy a
    release that was just rolled back again.
    """
    deployment = db.session.get(Deployment, deployment_id, populate_existing=True)
    stage = waiting_stage(deployment_id)
    if deployment is None or stage is None or deployment.status not in TERMINAL:
        return False
    if stage.status != StageStatus.RUNNING or stage.waiting_for != StageWait.DEPLOYMENT:
        return False
    status, error = _stage_outcome(stage, deployment)
    if error:
        service.system_log(stage.run_id, stage.id, f"Stage {status}: {error}")
    log.info("run %s stage %s: deployment %s ended %s, so the stage ends %s", stage.run_id, stage.id,
             deployment.id, deployment.status, status)
    return service.finish_stage(stage.id, status, None, error, retry=False)


def _stage_outcome(stage: Stage, deployment: Deployment) -> tuple[StageStatus, str | None]:
    if deployment.status == DeploymentStatus.SUCCEEDED:
        return StageStatus.SUCCESS, None
    error = (f"Deployment #{deployment.number} to {deployment.environment.name!r} "
             f"{deployment.status.replace('_', ' ')}: {deployment.status_reason or 'no reason recorded'}")
    if db.session.scalar(select(Run.status).where(Run.id == stage.run_id)) == RunStatus.CANCELLED:
        return StageStatus.CANCELLED, f"The run was cancelled. {error}"
    if stage.options.get("allowFailure"):
        return StageStatus.ALLOWED_FAILURE, error
    return StageStatus.FAILED, error


def abort_for_cancelled_run(run_id: int, reason: str) -> int:
    """Abort the deployments that stages of a cancelled run wait for; return how many were asked to stop.

    Each stage stays running until its deployment has rolled back (or, if it had not
    started, failed), then ends as cancelled, so the run's page shows the rollback.
    """
    from app.deployments.requests import DeploymentConflictError, request_abort

    waiting = db.session.scalars(select(Stage).where(
        Stage.run_id == run_id, Stage.status == StageStatus.RUNNING, Stage.waiting_for == StageWait.DEPLOYMENT)).all()
    aborted = 0
    for stage in waiting:
        deployment = db.session.get(Deployment, stage.deployment_id) if stage.deployment_id else None
        if deployment is None:
            continue
        try:
            request_abort(deployment, f"Run cancelled: {reason}")
        except DeploymentConflictError:
            # It ended while the run was being cancelled; its end finishes the stage.
            finish_stage_of(deployment.id)
            continue
        service.system_log(run_id, stage.id, f"Run cancelled: aborting deployment #{deployment.number}; "
                                             "this stage ends once the deployment has stopped")
        log.info("run %s stage %s: run cancelled, deployment %s aborted", run_id, stage.id, deployment.id)
        aborted += 1
    return aborted


def finish_stages_of_ended_deployments() -> int:
    """End stages still waiting for a deployment that has ended or was deleted; return how many.

    The engine ends them itself; this catches a job that died between the
    deployment's last transition and the end of its stage.
    """
    stages = db.session.scalars(
        select(Stage).outerjoin(Deployment, Deployment.id == Stage.deployment_id)
        .where(Stage.status == StageStatus.RUNNING, Stage.waiting_for == StageWait.DEPLOYMENT,
               Deployment.id.is_(None) | Deployment.status.in_(TERMINAL))
    ).all()
    ended = 0
    for stage in stages:
        if stage.deployment_id is None:
            log.warning("run %s stage %s: its deployment was deleted", stage.run_id, stage.id)
            service.system_log(stage.run_id, stage.id, "Stage error: its deployment was deleted")
            ended += service.finish_stage(stage.id, StageStatus.ERROR, None, "its deployment was deleted",
                                          retry=False)
            continue
        log.warning("run %s stage %s: deployment %s ended but the stage did not; ending it now", stage.run_id,
                    stage.id, stage.deployment_id)
        ended += finish_stage_of(stage.deployment_id)
    return ended
