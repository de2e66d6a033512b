"""What people and pipelines ask of deployments: create, approve, promote, abort and roll back.

Each function checks the request, records it in the deployment's history and
queues a drive job; the engine's job does the work, so a request returns at once.
"""

import json
import logging
import re

from sqlalchemy import func, select, update

from app.deployments import deploy_stages
from app.deployments.adapters.base import InvalidTargetError
from app.deployments.engine import (
    adapter_for, approval_rule, enqueue_drive, lock_environment,
)
from app.deployments.history import record_event, transition
from app.deployments.status import ACTIVE, PENDING, TERMINAL, DeploymentStatus, Gate
from app.deployments.strategies import SpecError, expand_steps
from app.extensions import db
from app.forges import crypto
from app.models import (
    Artifact, Deployment, DeploymentApproval, Environment, Membership, Project, Release, Role, Run, Stage, User,
)
from app.status import StageWait

log = logging.getLogger(__name__)

ENVIRONMENT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
ENVIRONMENT_KINDS = ("production", "staging", "review")
# A reviewer's role must rank at least as high as the role a gate requires.
ROLE_RANK = {Role.VIEWER: 0, Role.DEVELOPER: 1, Role.ADMIN: 2}


class DeploymentError(Exception):
    """A deployment request was invalid; the message gives the reason and the fix."""


class DeploymentConflictError(DeploymentError):
    """The request does not fit the deployment's current status."""


class ApprovalError(DeploymentError):
    """The person may not approve this deployment."""


def ensure_environment(project: Project, name: str, *, kind: str | None = None, pull_request: int | None = None,
                       target: dict | None = None) -> Environment:
    """Return the project's environment `name`, creating it (a review environment for a pull request) if new."""
    if not ENVIRONMENT_NAME.match(name or ""):
        raise DeploymentError(f"Environment name {name!r} is invalid: use lower-case letters, digits, '.', '_', '-'")
    if kind is None and name == "production":
        kind = "production"
    elif kind is None:
        kind = "review" if pull_request else "staging"
    if kind not in ENVIRONMENT_KINDS:
        raise DeploymentError(f"Environment kind {kind!r} is unknown: use one of {', '.join(ENVIRONMENT_KINDS)}")
    environment = db.session.scalar(select(Environment).where(Environment.project_id == project.id,
                                                              Environment.name == name))
    if environment is None:
        environment = Environment(project_id=project.id, name=name, kind=kind, pull_request=pull_request,
                                  target=target or {})
        db.session.add(environment)
        db.session.commit()
        log.info("project %s: environment %s created (%s)", project.id, name, kind)
    elif target:
        environment.target = target
        db.session.commit()
    return environment


def set_credentials(environment: Environment, credentials: dict[str, str]) -> None:
    """Store the environment's provider credentials encrypted; they are never shown or logged again."""
    environment.credentials_encrypted = crypto.encrypt(json.dumps(credentials)) if credentials else None
    db.session.commit()
    log.info("environment %s: credentials replaced (%s)", environment.id, ", ".join(sorted(credentials)) or "none")


def create_release(project: Project, name: str, artifact: str, *, commit_sha: str | None = None,
                   run_id: int | None = None) -> Release:
    """Return the project's release `name`, recording it if new; an existing name must name the same artifact."""
    existing = db.session.scalar(select(Release).where(Release.project_id == project.id, Release.name == name))
    if existing is not None:
        if existing.artifact != artifact or (commit_sha and existing.commit_sha != commit_sha):
            raise DeploymentError(f"Release {name!r} exists with another artifact ({existing.artifact!r}); "
                                  "releases are immutable, so give the new one another name")
        return existing
    release = Release(project_id=project.id, name=name, artifact=artifact, commit_sha=commit_sha, run_id=run_id)
    db.session.add(release)
    db.session.commit()
    return release


def create_deployment(environment: Environment, release: Release, spec: dict, *, requested_by: str | None,
                      user: User | None = None, run_id: int | None = None,
                      rollback_of: Deployment | None = None, stage_id: int | None = None) -> Deployment:
    """Record a deployment of `release` and queue it; an invalid spec or target gives a failed deployment.

    A pending deployment of the same environment is superseded by the new one.
    `stage_id` names the deploy stage that waits for it; the stage is linked in the
    same transaction, before any job can move the deployment, so the stage hears
    about every transition (app/deployments/deploy_stages.py).
    """
    lock_environment(environment.id)
    number = (db.session.scalar(select(func.max(Deployment.number)).where(
        Deployment.environment_id == environment.id)) or 0) + 1
    for pending in db.session.scalars(select(Deployment).where(
            Deployment.environment_id == environment.id, Deployment.status.in_(PENDING))).all():
        pending.status_reason = f"Superseded by deployment #{number} of release {release.name!r}"
        transition(pending, DeploymentStatus.SUPERSEDED)
        lock_environment(environment.id)
    deployment = Deployment(environment_id=environment.id, number=number, release_id=release.id, spec=spec,
                            steps=[], status=DeploymentStatus.QUEUED, requested_by=requested_by,
                            created_by_id=user.id if user else None, run_id=run_id,
                            rollback_of_id=rollback_of.id if rollback_of else None, split={}, weight=0, step_index=0)
    db.session.add(deployment)
    db.session.flush()
    if stage_id is not None:
        db.session.execute(update(Stage).where(Stage.id == stage_id).values(
            deployment_id=deployment.id, waiting_for=StageWait.DEPLOYMENT, worker=None))
    problems = _plan(deployment)
    if problems:
        transition(deployment, DeploymentStatus.FAILED, "Invalid deployment: " + "; ".join(problems) +
                   ". The live release keeps serving.")
        return deployment
    record_event(deployment, "status", f"Queued by {requested_by or 'the platform'}")
    db.session.commit()
    log.info("deployment %s: #%s of %s to %s queued", deployment.id, number, release.name, environment.name)
    deploy_stages.announce(deployment, f"queued: release {release.name!r} to {environment.name!r}, "
                                       f"{len(deployment.steps)} step(s)")
    enqueue_drive(deployment.id)
    return deployment


def _plan(deployment: Deployment) -> list[str]:
    try:
        adapter = adapter_for(deployment)
        deployment.steps = expand_steps(deployment.spec, adapter.capabilities)
    except (InvalidTargetError, SpecError) as error:
        return error.problems
    return []


def raise_alarm(environment: Environment, token: str, name: str) -> Deployment | None:
    """Abort the environment's active deployment because a monitoring alarm fired; return it, or None.

    The caller proves itself with the environment's `alarm_token` credential.
    """
    import hmac

    from app.deployments.engine import environment_credentials

    expected = environment_credentials(environment).get("alarm_token")
    if not expected or not hmac.compare_digest(expected.encode(), (token or "").encode()):
        raise ApprovalError(f"The alarm token for environment {environment.name!r} is missing or wrong")
    active = db.session.scalar(select(Deployment).where(Deployment.environment_id == environment.id,
                                                       Deployment.status.in_(ACTIVE)))
    if active is None:
        log.info("environment %s: alarm %r fired with no active deployment", environment.id, name)
        return None
    return request_abort(active, f"Alarm {name!r} fired")


def resolve_artifact(project: Project, reference: str, user: User) -> str:
    """Turn "run:<run id>/<artifact name>" into the archive's path; only administrators may give a path."""
    match = re.match(r"^run:(\d+)/(.+)$", reference or "")
    if match:
        artifact = db.session.scalar(select(Artifact).join(Run, Run.id == Artifact.run_id).where(
            Run.project_id == project.id, Artifact.run_id == int(match.group(1)), Artifact.name == match.group(2)))
        if artifact is None:
            raise DeploymentError(f"Run {match.group(1)} of {project.name!r} has no artifact {match.group(2)!r}")
        return artifact.path
    if reference.startswith("/") and not user.is_admin:
        raise DeploymentError("Only administrators may deploy an artifact by its path on the platform's disk; "
                              "give 'run:<run id>/<artifact name>' instead")
    return reference


def approve(deployment: Deployment, user: User) -> Deployment:
    """Record `user`'s approval of the gate the deployment waits at; raise ApprovalError if not allowed."""
    gate = waiting_gate(deployment)
    if gate is None:
        raise DeploymentConflictError(f"Deployment {deployment.id} waits for no approval (it is {deployment.status})")
    rule = approval_rule(deployment, gate)
    if user.id == deployment.created_by_id or user.username == deployment.requested_by:
        raise ApprovalError(f"{user.username!r} requested deployment {deployment.id}, so cannot approve it; "
                            "ask another reviewer")
    role = role_of(user, deployment.environment.project_id)
    if role is None or ROLE_RANK[role] < ROLE_RANK[Role(rule["role"])]:
        raise ApprovalError(f"Approving deployment {deployment.id} needs the role {rule['role']} or above; "
                            f"{user.username!r} has {role or 'no role'} in this project")
    exists = db.session.scalar(select(DeploymentApproval.id).where(
        DeploymentApproval.deployment_id == deployment.id, DeploymentApproval.gate == gate,
        DeploymentApproval.user_id == user.id))
    if exists is None:
        db.session.add(DeploymentApproval(deployment_id=deployment.id, gate=gate, user_id=user.id))
        record_event(deployment, "approval", f"Approved to {gate} by {user.username}")
    _wake(deployment, "resume", None)
    return deployment


def waiting_gate(deployment: Deployment) -> Gate | None:
    """Return the gate the deployment waits at, if any."""
    if deployment.status in (DeploymentStatus.WAITING_FOR_APPROVAL, DeploymentStatus.QUEUED) \
            and approval_rule(deployment, Gate.DEPLOY):
        return Gate.DEPLOY
    step = deployment.steps[deployment.step_index] if deployment.step_index < len(deployment.steps) else {}
    if deployment.status in ACTIVE and step.get("kind") == "approval":
        return Gate.PROMOTE
    return None


def role_of(user: User, project_id: int) -> Role | None:
    if user.is_admin:
        return Role.ADMIN
    role = db.session.scalar(select(Membership.role).where(Membership.user_id == user.id,
                                                           Membership.project_id == project_id))
    return Role(role) if role else None


def request_promote(deployment: Deployment, user: User) -> Deployment:
    """Ask the engine to end the current pause and go on."""
    if deployment.status not in (DeploymentStatus.PAUSED, DeploymentStatus.PROGRESSING, DeploymentStatus.READY):
        raise DeploymentConflictError(f"Deployment {deployment.id} is {deployment.status}; only a paused or "
                                      "progressing deployment can be promoted")
    record_event(deployment, "request", f"Promote requested by {user.username}")
    _wake(deployment, "promote", f"by {user.username}")
    return deployment


def request_abort(deployment: Deployment, reason: str) -> Deployment:
    """Ask the engine to roll the deployment back (or drop it, if it has not started)."""
    if deployment.status in TERMINAL:
        raise DeploymentConflictError(f"Deployment {deployment.id} has ended ({deployment.status}); "
                                      "roll back by deploying an older release instead")
    record_event(deployment, "request", reason)
    _wake(deployment, "abort", reason)
    return deployment


def rollback(deployment: Deployment, user: User) -> Deployment:
    """Deploy again the release that was live before `deployment`, all at once, as a new deployment."""
    if deployment.status != DeploymentStatus.SUCCEEDED or deployment.stable_release_id is None:
        raise DeploymentConflictError(f"Deployment {deployment.id} is {deployment.status}; only a succeeded "
                                      "deployment that replaced another release can be rolled back")
    spec = {**deployment.spec, "strategy": {"type": "allAtOnce"}, "approvals": {}}
    return create_deployment(deployment.environment, deployment.stable_release, spec, requested_by=user.username,
                             user=user, rollback_of=deployment)


def _wake(deployment: Deployment, action: str, reason: str | None) -> None:
    # An abort is never replaced by a weaker request.
    if deployment.requested_action != "abort":
        deployment.requested_action = action
        deployment.requested_reason = reason if action != "abort" else reason
    db.session.commit()
    enqueue_drive(deployment.id)
