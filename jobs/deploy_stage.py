"""What a deploy stage does on the worker: record the release and hand the stage to its deployment.

A deploy stage's plan entry carries `deploy` (see sdk/deploy.ts). The platform runs
the stage's own function first when it has one. Then this module records the run's
artifact as a release and a deployment of it, linked to the stage. The RQ job ends
there, so a canary that takes an hour occupies no worker. The stage stays running
("deploying") until the deployment ends, and the engine then ends the stage
(app/deployments/deploy_stages.py).
"""

import logging
from dataclasses import dataclass

from sqlalchemy import select

from app.deployments import requests as deployment_requests
from app.deployments.deploy_stages import abort_for_cancelled_run
from app.extensions import db
from app.models import Artifact, Deployment, Environment, Release, Run, RunStatus, StageStatus

log = logging.getLogger(__name__)


class DeployStageError(Exception):
    """The stage cannot deploy; `status` is how it ends, and the message gives the reason and the fix."""

    def __init__(self, message: str, status: StageStatus = StageStatus.FAILED) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ReleaseRequest:
    """The environment a deploy stage deploys to, and the release it deploys."""

    environment: Environment
    release: Release


def record_release(run: Run, spec: dict) -> ReleaseRequest:
    """Check that the run may deploy, then return its environment and its artifact recorded as a release.

    Raises DeployStageError when the run was cancelled, awaits a maintainer's approval,
    lacks the artifact, or the environment or release is invalid.
    """
    db.session.refresh(run)
    if run.status == RunStatus.CANCELLED:
        raise DeployStageError("The run was cancelled before the deployment was recorded", StageStatus.CANCELLED)
    if run.approval_required and run.approved_at is None:
        # advance_run keeps such a stage queued until the approval, so only a stage queued some other way gets here.
        raise DeployStageError("A pull request from a fork deploys only after a maintainer approves its run; "
                               "approve the run and re-run the stage")
    artifact = db.session.scalar(select(Artifact).where(Artifact.run_id == run.id,
                                                        Artifact.name == spec["release"]["artifact"]))
    if artifact is None:
        raise DeployStageError(f"Cannot deploy: run #{run.number} has no artifact "
                               f"{spec['release']['artifact']!r}; publish it in a stage this one needs")
    name = spec["release"].get("name") or f"run-{run.number}"
    try:
        environment = deployment_requests.ensure_environment(
            run.project, spec["environment"], pull_request=run.pull_request if run.event == "pull_request" else None)
        release = deployment_requests.create_release(run.project, name, artifact.path, commit_sha=run.commit_sha,
                                                     run_id=run.id)
    except deployment_requests.DeploymentError as error:
        raise DeployStageError(str(error)) from error
    return ReleaseRequest(environment, release)


def request_deployment(stage_id: int, run: Run, spec: dict, request: ReleaseRequest) -> Deployment:
    """Record the deployment, linked to the stage that now waits for it, and queue it.

    The deployment's transitions go to the stage's log from here on, and its end
    ends the stage, even when it fails at once (an invalid strategy or target).
    """
    deployment = deployment_requests.create_deployment(
        request.environment, request.release, _engine_spec(spec), requested_by=run.author, run_id=run.id,
        stage_id=stage_id)
    log.info("run %s stage %s: deployment %s to %s recorded", run.id, stage_id, deployment.id,
             request.environment.name)
    # A cancel that came while the deployment was being recorded found no deployment to abort.
    if db.session.scalar(select(Run.status).where(Run.id == run.id)) == RunStatus.CANCELLED:
        abort_for_cancelled_run(run.id, "the run was cancelled while its deployment was recorded")
    return deployment


def _engine_spec(spec: dict) -> dict:
    engine_spec = {"strategy": spec.get("strategy") or {"type": "allAtOnce"}, "approvals": spec.get("approvals") or {}}
    if spec.get("target"):
        engine_spec["target"] = spec["target"]
    if spec.get("progressDeadline"):
        engine_spec["progressDeadline"] = spec["progressDeadline"]
    return engine_spec
