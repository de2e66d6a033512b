"""What a deploy stage does on the worker: record the release and queue its deployment.

A deploy stage's plan entry carries `deploy` (see sdk/deploy.ts). The platform runs
the stage's own function first when it has one. Then this module records the run's
artifact as a release and queues a deployment of it for the engine.
The stage ends as soon as the deployment is queued, so a canary that takes an hour
never holds a stage worker.
"""

import logging

from sqlalchemy import select

from app.deployments import requests as deployment_requests
from app.deployments.status import DeploymentStatus
from app.extensions import db
from app.models import Artifact, Run, StageStatus

log = logging.getLogger(__name__)


def start_deployment(run: Run, spec: dict, write) -> tuple[StageStatus, str | None]:
    """Create the release and deployment a deploy stage requests; return the stage's outcome.

    `write(stream, text)` adds a line to the stage's log.
    """
    if run.approval_required and run.approved_at is None:
        return StageStatus.FAILED, ("A pull request from a fork deploys only after a maintainer approves its run; "
                                    "approve the run and re-run the stage")
    artifact = db.session.scalar(select(Artifact).where(Artifact.run_id == run.id,
                                                        Artifact.name == spec["release"]["artifact"]))
    if artifact is None:
        return StageStatus.FAILED, (f"Cannot deploy: run #{run.number} has no artifact "
                                    f"{spec['release']['artifact']!r}; publish it in a stage this one needs")
    name = spec["release"].get("name") or f"run-{run.number}"
    try:
        environment = deployment_requests.ensure_environment(
            run.project, spec["environment"], pull_request=run.pull_request if run.event == "pull_request" else None)
        release = deployment_requests.create_release(run.project, name, artifact.path, commit_sha=run.commit_sha,
                                                     run_id=run.id)
    except deployment_requests.DeploymentError as error:
        return StageStatus.FAILED, str(error)
    deployment = deployment_requests.create_deployment(
        environment, release, _engine_spec(spec), requested_by=run.author, run_id=run.id)
    write("system", f"Deployment #{deployment.number} of release {name!r} to {environment.name!r}: "
                    f"{deployment.status}{' (' + deployment.status_reason + ')' if deployment.status_reason else ''}")
    log.info("run %s: deployment %s to %s recorded", run.id, deployment.id, environment.name)
    if deployment.status == DeploymentStatus.FAILED:
        return StageStatus.FAILED, deployment.status_reason
    return StageStatus.SUCCESS, None


def _engine_spec(spec: dict) -> dict:
    engine_spec = {"strategy": spec.get("strategy") or {"type": "allAtOnce"}, "approvals": spec.get("approvals") or {}}
    if spec.get("target"):
        engine_spec["target"] = spec["target"]
    if spec.get("progressDeadline"):
        engine_spec["progressDeadline"] = spec["progressDeadline"]
    return engine_spec
