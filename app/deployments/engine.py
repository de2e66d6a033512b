"""The deployment engine: drives one deployment through its steps, whatever the target.

`drive(deployment_id)` is the body of the RQ job `jobs.deployments.drive_deployment`.
A job first takes the deployment's lease (a worker name and a heartbeat in its row),
so a second job for the same deployment exits at once. It then runs steps until the
deployment ends or waits for people, at an approval gate or an untimed pause. A timed
pause keeps the lease and sleeps in short ticks, so an abort is noticed within `TICK`
seconds.
Every change of traffic is recorded with the split the adapter reports.

Restarts: a job that takes over an active deployment (its previous job died, or it
was woken by a request) first reads the target's real split with `describe()`. If
the target serves the recorded split, or the split the current step was applying,
the deployment goes on from its step; otherwise it is rolled back, so traffic never
stays in a split nobody recorded. `reap_stalled_deployments()`, run by the
scheduler, queues a job for every active deployment whose lease expired.

Locks: the environment's row is locked (SELECT ... FOR UPDATE) whenever a deployment
starts or a new one is recorded, and partial unique indexes allow one active and one
pending deployment per environment, so two workers can never both start one.
"""

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select, update

from app.deployments import analysis, deploy_stages
from app.deployments.adapters.base import Adapter, AdapterError, InvalidTargetError
from app.deployments.adapters.registry import create_adapter
from app.deployments.history import record_event, record_traffic, transition
from app.deployments.status import ACTIVE, PENDING, TERMINAL, DeploymentStatus, Gate
from app.extensions import db
from app.forges import crypto
from app.models import Deployment, DeploymentApproval, Environment
from app.models._columns import utcnow
from app.queue import run_queue

log = logging.getLogger(__name__)

# Seconds without a heartbeat after which another job may take a deployment over.
LEASE_SECONDS = 20
# Seconds between checks for an abort or a promote while a step waits.
TICK = 0.1
# Attempts at a rollback before the engine leaves it to the next job.
ROLLBACK_ATTEMPTS = 3
DRIVE_JOB = "jobs.deployments.drive_deployment"
# RQ timeout of a drive job; a longer canary continues in the next job after the reaper requeues it.
DRIVE_JOB_TIMEOUT = 6 * 3600

WAIT, GO_ON = "wait", "go on"


class LeaseLostError(Exception):
    """Another job took the deployment over; this one must stop touching it."""


def enqueue_drive(deployment_id: int) -> None:
    """Queue a job that drives the deployment; extra jobs exit at once, so queuing twice is safe."""
    run_queue().enqueue(DRIVE_JOB, deployment_id, job_timeout=DRIVE_JOB_TIMEOUT,
                        job_id=f"deploy-{deployment_id}-{uuid.uuid4().hex[:8]}")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def drive(deployment_id: int, worker: str | None = None) -> None:
    """Drive a deployment until it ends or waits for people; return at once if another job drives it."""
    worker = worker or worker_name()
    if not _claim(deployment_id, worker):
        log.info("deployment %s: another job drives it; nothing to do", deployment_id)
        return
    try:
        while True:
            _Driver(deployment_id, worker).run()
            if _release(deployment_id, worker):
                return
    except LeaseLostError:
        log.warning("deployment %s: lease lost to another job; stopping", deployment_id)
    except AdapterError as error:
        # The lease is kept until it expires, so the reaper retries after LEASE_SECONDS, not at every tick.
        db.session.rollback()
        _record_interruption(deployment_id, f"{error}; retrying in {LEASE_SECONDS} s")
        raise


def _record_interruption(deployment_id: int, message: str) -> None:
    deployment = db.session.get(Deployment, deployment_id, populate_existing=True)
    deployment.status_reason = message
    record_event(deployment, "status", message)
    db.session.commit()
    log.warning("deployment %s: %s", deployment_id, message)


def _claim(deployment_id: int, worker: str) -> bool:
    stale = utcnow() - timedelta(seconds=LEASE_SECONDS)
    claimed = db.session.execute(
        update(Deployment)
        .where(Deployment.id == deployment_id, Deployment.status.notin_(TERMINAL),
               (Deployment.worker.is_(None)) | (Deployment.heartbeat_at < stale))
        .values(worker=worker, heartbeat_at=utcnow())
        .returning(Deployment.id)
    ).scalar_one_or_none()
    db.session.commit()
    return claimed is not None


def _release(deployment_id: int, worker: str) -> bool:
    """Give up the lease; return False (keeping it) if a request arrived that this job must handle first."""
    released = db.session.execute(
        update(Deployment)
        .where(Deployment.id == deployment_id, Deployment.worker == worker,
               Deployment.requested_action.is_(None) | Deployment.status.in_(TERMINAL))
        .values(worker=None).returning(Deployment.id)
    ).scalar_one_or_none()
    db.session.commit()
    return released is not None


class _Driver:
    """One pass of a job over a deployment: reconcile, then steps until it ends or waits."""

    def __init__(self, deployment_id: int, worker: str) -> None:
        self.deployment_id, self.worker = deployment_id, worker
        self._adapter: Adapter | None = None

    # -- loading and the lease -------------------------------------------------------------------

    def load(self) -> Deployment:
        deployment = db.session.execute(
            select(Deployment).where(Deployment.id == self.deployment_id).execution_options(populate_existing=True)
        ).scalar_one()
        if deployment.worker != self.worker:
            raise LeaseLostError(self.deployment_id)
        return deployment

    def beat(self) -> None:
        beaten = db.session.execute(
            update(Deployment).where(Deployment.id == self.deployment_id, Deployment.worker == self.worker)
            .values(heartbeat_at=utcnow())
        ).rowcount
        db.session.commit()
        if not beaten:
            raise LeaseLostError(self.deployment_id)

    @property
    def adapter(self) -> Adapter:
        if self._adapter is None:
            self._adapter = adapter_for(self.load())
        return self._adapter

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        deployment = self.load()
        if deployment.status in ACTIVE and deployment.status != DeploymentStatus.PREPARING:
            self.reconcile(deployment)
        while True:
            self.beat()
            deployment = self.load()
            if deployment.status in TERMINAL:
                return
            if deployment.requested_action == "resume":
                deployment.requested_action = None
                db.session.commit()
            if deployment.requested_action == "abort":
                self.abort(deployment)
                continue
            if self.missed_deadline(deployment):
                continue
            if self.advance(deployment) == WAIT:
                return

    def advance(self, deployment: Deployment) -> str:
        status = DeploymentStatus(deployment.status)
        if status == DeploymentStatus.QUEUED:
            return self.start(deployment)
        if status == DeploymentStatus.WAITING_FOR_APPROVAL:
            return self.check_deploy_approvals(deployment)
        if status == DeploymentStatus.PREPARING:
            return self.prepare(deployment)
        if status == DeploymentStatus.ROLLING_BACK:
            return self.roll_back(deployment, deployment.status_reason or "rolling back")
        if deployment.step_index >= len(deployment.steps):
            return self.succeed(deployment)
        step = deployment.steps[deployment.step_index]
        return STEP_HANDLERS[step["kind"]](self, deployment, step)

    # -- start ---------------------------------------------------------------------------------

    def start(self, deployment: Deployment) -> str:
        rule = approval_rule(deployment, Gate.DEPLOY)
        if rule and approval_count(deployment, Gate.DEPLOY) < rule["count"]:
            transition(deployment, DeploymentStatus.WAITING_FOR_APPROVAL, approval_reason(deployment, Gate.DEPLOY))
            return WAIT
        environment = lock_environment(deployment.environment_id)
        active = db.session.scalar(select(Deployment).where(
            Deployment.environment_id == environment.id, Deployment.status.in_(ACTIVE), Deployment.id != deployment.id))
        if active is not None:
            deployment.status_reason = f"Waits for deployment #{active.number} ({active.status}) to end"
            db.session.commit()
            deploy_stages.announce(deployment, deployment.status_reason)
            return WAIT
        live = environment.live_deployment
        deployment.stable_release_id = live.release_id if live else None
        if live is None and any(step["kind"] in ("weight", "pause") for step in deployment.steps):
            # Like Argo Rollouts, a first deployment has no traffic to shift, so it goes live at once.
            deployment.steps = [step for step in deployment.steps if step["kind"] not in ("weight", "pause")]
            record_event(deployment, "status", "First deployment of the environment: its weight steps and "
                                               "pauses are skipped, as there is no live release to share with")
        deployment.started_at = deployment.step_started_at = utcnow()
        deployment.split = dict(live.split) if live else {}
        transition(deployment, DeploymentStatus.PREPARING, f"Installing release {deployment.release.name!r}")
        return GO_ON

    def check_deploy_approvals(self, deployment: Deployment) -> str:
        rule = approval_rule(deployment, Gate.DEPLOY)
        if rule and approval_count(deployment, Gate.DEPLOY) < rule["count"]:
            reason = approval_reason(deployment, Gate.DEPLOY)
            if deployment.status_reason != reason:
                deployment.status_reason = reason
                db.session.commit()
                deploy_stages.announce(deployment, reason)
            return WAIT
        transition(deployment, DeploymentStatus.QUEUED, "Approved for deployment")
        return GO_ON

    def prepare(self, deployment: Deployment) -> str:
        release, stable = deployment.release, self.stable_name(deployment)
        try:
            split = self.adapter.prepare(release.name, release.artifact, stable)
            self.adapter.wait_until_ready(release.name, progress_deadline(deployment))
        except AdapterError as error:
            # prepare() never gives the new release traffic, so the live release kept all of it.
            transition(deployment, DeploymentStatus.FAILED, f"Cannot prepare release {release.name!r}: {error}. "
                                                            f"The live release {stable!r} keeps serving.")
            start_next_pending(deployment.environment_id)
            return WAIT
        record_traffic(deployment, 0, split, f"Release {release.name!r} installed at 0 %")
        transition(deployment, DeploymentStatus.READY, f"Release {release.name!r} is ready at 0 %")
        return GO_ON

    # -- steps ---------------------------------------------------------------------------------

    def step_weight(self, deployment: Deployment, step: dict) -> str:
        weight = step["weight"]
        split = self.apply(deployment, lambda: self.adapter.set_traffic(deployment.release.name, weight,
                                                                        self.stable_name(deployment)))
        if split is None:
            return GO_ON
        record_traffic(deployment, weight, split, f"Step {deployment.step_index + 1}: {weight} % to "
                                                  f"{deployment.release.name!r}")
        return self.next_step(deployment, DeploymentStatus.PROGRESSING, f"At {weight} %")

    def step_pause(self, deployment: Deployment, step: dict) -> str:
        seconds = step.get("seconds")
        if deployment.requested_action == "promote":
            deployment.requested_action = None
            record_event(deployment, "request", "Promoted by hand: " + (deployment.requested_reason or ""))
            deployment.resume_at = None
            return self.next_step(deployment, DeploymentStatus.PROGRESSING, "Promoted past the pause")
        if seconds is None:
            if deployment.status != DeploymentStatus.PAUSED:
                transition(deployment, DeploymentStatus.PAUSED, f"Paused at {deployment.weight} % until promoted")
            return WAIT
        return self.wait_until(deployment, seconds, DeploymentStatus.PAUSED,
                               f"Paused at {deployment.weight} % for {seconds:g} s")

    def step_keep_previous(self, deployment: Deployment, step: dict) -> str:
        return self.wait_until(deployment, step["seconds"], DeploymentStatus.PROMOTING,
                               f"Keeping {self.stable_name(deployment)!r} installed for {step['seconds']:g} s")

    def wait_until(self, deployment: Deployment, seconds: float, status: DeploymentStatus, reason: str) -> str:
        if deployment.resume_at is None:
            deployment.resume_at = utcnow() + timedelta(seconds=seconds)
            db.session.commit()
            if deployment.status != status:
                transition(deployment, status, reason)
        if utcnow() >= deployment.resume_at:
            deployment.resume_at = None
            return self.next_step(deployment, DeploymentStatus(deployment.status), None)
        time.sleep(TICK)
        return GO_ON

    def step_analysis(self, deployment: Deployment, step: dict) -> str:
        check = step["check"]
        if deployment.status != DeploymentStatus.PROGRESSING:
            transition(deployment, DeploymentStatus.PROGRESSING, f"Analysing with a {check['type']} check")
        passed, summary = analysis.run_check(check, self.analysis_context(deployment))
        deployment = self.load()
        if passed is None:
            # An abort or the progress deadline stopped it; the loop handles both next.
            return GO_ON
        if not passed:
            return self.roll_back(deployment, f"Analysis failed: {summary}")
        record_event(deployment, "analysis", summary, {"passed": True, "check": check["type"]})
        result = self.next_step(deployment, DeploymentStatus.PROGRESSING, None)
        deploy_stages.announce(deployment, f"Analysis passed: {summary}")
        return result

    def step_approval(self, deployment: Deployment, step: dict) -> str:
        rule = approval_rule(deployment, Gate.PROMOTE)
        if approval_count(deployment, Gate.PROMOTE) >= rule["count"]:
            return self.next_step(deployment, DeploymentStatus.PROGRESSING, "Approved for promotion")
        reason = approval_reason(deployment, Gate.PROMOTE)
        if deployment.status != DeploymentStatus.PAUSED or deployment.status_reason != reason:
            transition(deployment, DeploymentStatus.PAUSED, reason)
        return WAIT

    def step_promote(self, deployment: Deployment, step: dict) -> str:
        if deployment.status != DeploymentStatus.PROMOTING:
            transition(deployment, DeploymentStatus.PROMOTING, f"Giving {deployment.release.name!r} all the traffic")
        split = self.apply(deployment, lambda: self.adapter.promote(deployment.release.name,
                                                                    self.stable_name(deployment)))
        if split is None:
            return GO_ON
        record_traffic(deployment, 100, split, f"Promoted {deployment.release.name!r} to 100 %")
        return self.next_step(deployment, DeploymentStatus.PROMOTING, None)

    def step_cleanup(self, deployment: Deployment, step: dict) -> str:
        keep = [deployment.release.name]
        if step.get("keep_previous") and self.stable_name(deployment):
            keep.append(self.stable_name(deployment))
        try:
            self.adapter.cleanup(keep)
        except AdapterError as error:
            # Leftover releases cost disk space, not traffic, so the deployment still succeeds.
            record_event(deployment, "status", f"Cleanup failed, releases other than {keep} may remain: {error}")
            db.session.commit()
        return self.next_step(deployment, DeploymentStatus(deployment.status), None)

    def next_step(self, deployment: Deployment, status: DeploymentStatus, reason: str | None) -> str:
        deployment.step_index += 1
        deployment.step_started_at = utcnow()
        db.session.commit()
        if status != deployment.status or reason:
            transition(deployment, status, reason)
        return GO_ON

    def succeed(self, deployment: Deployment) -> str:
        environment = lock_environment(deployment.environment_id)
        environment.live_deployment_id = deployment.id
        transition(deployment, DeploymentStatus.SUCCEEDED, f"Release {deployment.release.name!r} is live")
        start_next_pending(deployment.environment_id)
        return WAIT

    # -- traffic changes that can fail -----------------------------------------------------------

    def apply(self, deployment: Deployment, change) -> dict | None:
        """Run a traffic change; on an adapter error roll back and return None."""
        try:
            return change()
        except AdapterError as error:
            if error.applied is not None:
                record_traffic(deployment, deployment.weight, error.applied, "Split after the failed change")
            self.roll_back(deployment, f"Traffic change failed: {error}")
            return None

    def abort(self, deployment: Deployment) -> None:
        reason = deployment.requested_reason or "Aborted"
        deployment.requested_action = None
        db.session.commit()
        if deployment.status in PENDING:
            transition(deployment, DeploymentStatus.FAILED, f"{reason} before it started")
            return
        self.roll_back(deployment, reason)

    def roll_back(self, deployment: Deployment, reason: str) -> str:
        if deployment.status != DeploymentStatus.ROLLING_BACK:
            transition(deployment, DeploymentStatus.ROLLING_BACK, reason)
        stable, release = self.stable_name(deployment), deployment.release.name
        for attempt in range(1, ROLLBACK_ATTEMPTS + 1):
            try:
                split = self.adapter.rollback(stable, release)
                break
            except AdapterError as error:
                record_event(deployment, "status", f"Rollback attempt {attempt} failed: {error}")
                db.session.commit()
                log.warning("deployment %s: rollback attempt %s failed: %s", deployment.id, attempt, error)
                time.sleep(0.5 * attempt)
        else:
            # The status stays rolling_back (not failed) because the split is unknown; the reaper retries with a new job.
            raise AdapterError(f"Deployment {deployment.id}: rollback to {stable!r} failed {ROLLBACK_ATTEMPTS} times")
        record_traffic(deployment, 0, split, f"Rolled back: {stable!r} has all the traffic" if stable
                       else f"Rolled back: {release!r} removed from traffic")
        transition(deployment, DeploymentStatus.ROLLED_BACK, reason)
        start_next_pending(deployment.environment_id)
        return WAIT

    def missed_deadline(self, deployment: Deployment) -> bool:
        if not self.deadline_passed(deployment):
            return False
        step = deployment.steps[deployment.step_index] if deployment.step_index < len(deployment.steps) else {}
        self.roll_back(deployment, f"Missed the progress deadline: step {deployment.step_index + 1} "
                                   f"({step.get('kind', 'prepare')}) took more than {self.allowed(step):g} s")
        return True

    def deadline_passed(self, deployment: Deployment) -> bool:
        if deployment.status not in ACTIVE or deployment.status in (DeploymentStatus.ROLLING_BACK,
                                                                    DeploymentStatus.PREPARING):
            return False
        step = deployment.steps[deployment.step_index] if deployment.step_index < len(deployment.steps) else {}
        if step.get("kind") == "approval" or (step.get("kind") == "pause" and step.get("seconds") is None):
            return False
        started = deployment.step_started_at or deployment.started_at
        return started is not None and (utcnow() - started).total_seconds() > self.allowed(step)

    def allowed(self, step: dict) -> float:
        # A timed pause or keep-previous step takes its own duration on top of the deadline.
        return progress_deadline(self.load()) + float(step.get("seconds") or 0)

    # -- restarts ------------------------------------------------------------------------------

    def reconcile(self, deployment: Deployment) -> None:
        """Compare the target's real split with the recorded one; roll back when neither it nor the step's explains it."""
        real = self.adapter.describe().split
        if real == deployment.split:
            record_event(deployment, "status", f"Resumed: the target serves {real}, as recorded")
            db.session.commit()
            return
        intended = self.intended_split(deployment)
        if intended is not None and real == intended:
            record_event(deployment, "status", f"Resumed: the target serves {real}, as the interrupted step "
                                               f"{deployment.step_index + 1} intended")
            db.session.commit()
            return
        if deployment.status == DeploymentStatus.ROLLING_BACK:
            return
        self.roll_back(deployment, f"After an interruption the target served {real}, not the recorded "
                                   f"{deployment.split}; rolled back to {self.stable_name(deployment)!r}")

    def intended_split(self, deployment: Deployment) -> dict | None:
        if deployment.step_index >= len(deployment.steps):
            return None
        step, release, stable = deployment.steps[deployment.step_index], deployment.release.name, \
            self.stable_name(deployment)
        if step["kind"] == "weight":
            return _split_of(release, step["weight"], stable)
        if step["kind"] == "promote":
            return {release: 100}
        return None

    # -- helpers -------------------------------------------------------------------------------

    def stable_name(self, deployment: Deployment) -> str | None:
        return deployment.stable_release.name if deployment.stable_release else None

    def analysis_context(self, deployment: Deployment) -> analysis.Context:
        release = deployment.release.name

        def record(measurement: analysis.Measurement) -> None:
            record_event(self.load(), "analysis", measurement.summary,
                         {"passed": measurement.passed, **measurement.details})
            db.session.commit()

        def should_stop() -> bool:
            self.beat()
            current = self.load()
            return current.requested_action == "abort" or self.deadline_passed(current)

        return analysis.Context(
            release=release, environment=deployment.environment.name, deployment_id=deployment.id,
            weight=deployment.weight, preview_url=self.adapter.preview_url(release),
            public_url=self.adapter.public_url(), record=record, should_stop=should_stop)


STEP_HANDLERS = {
    "weight": _Driver.step_weight, "pause": _Driver.step_pause, "analysis": _Driver.step_analysis,
    "approval": _Driver.step_approval, "promote": _Driver.step_promote,
    "keep_previous": _Driver.step_keep_previous, "cleanup": _Driver.step_cleanup,
}


def _split_of(release: str, weight: int, stable: str | None) -> dict[str, int]:
    from app.deployments.adapters.base import split_of

    return split_of(release, weight, stable)


def adapter_for(deployment: Deployment) -> Adapter:
    """Return the adapter of the deployment's target, with the environment's credentials.

    A pipeline's target settings fill in what the environment leaves out, and never
    replace a setting a project admin gave the environment: settings can name host
    paths and commands that the platform runs with the environment's credentials.
    """
    environment = deployment.environment
    from_pipeline = (deployment.spec or {}).get("target") or {}
    # The environment's settings replace the pipeline's whole, one top-level key at a time.
    unreplaced = {name: value for name, value in from_pipeline.items() if name not in (environment.target or {})}
    programs = sorted(set(_program_settings(unreplaced)))
    if programs:
        raise InvalidTargetError([
            f"The deploy stage's target sets {', '.join(repr(name) for name in programs)}: such settings name "
            f"programs or commands that run on the Deno CI machine, so only a project admin may set them, in the "
            f"target of environment {environment.name!r} (PUT /api/v1/projects/<project>/environments/"
            f"{environment.name})"])
    # TODO: decide which host paths a pipeline may set on its own. An environment without an
    # admin-set target takes them all from the pipeline. So a pipeline can still have nginx load
    # a configuration file that it wrote through a release folder.
    target = {**from_pipeline, **(environment.target or {})}
    return create_adapter(target, environment_credentials(environment))


# Settings that name a program the platform starts: nginx's binary, shell commands of any adapter.
PROGRAM_SETTINGS = frozenset({"binary", "command", "program", "executable"})
PROGRAM_SUFFIXES = tuple(f"_{word}" for word in PROGRAM_SETTINGS)


def _program_settings(settings: object) -> Iterator[str]:
    """Yield the names of the settings, at any depth, that name a program or shell command the platform runs."""
    if isinstance(settings, dict):
        for name, value in settings.items():
            if isinstance(name, str) and (name.lower() in PROGRAM_SETTINGS or name.lower().endswith(PROGRAM_SUFFIXES)):
                yield name
            yield from _program_settings(value)
    elif isinstance(settings, list):
        for value in settings:
            yield from _program_settings(value)


def environment_credentials(environment: Environment) -> dict:
    import json

    if not environment.credentials_encrypted:
        return {}
    return json.loads(crypto.decrypt(environment.credentials_encrypted))


def lock_environment(environment_id: int) -> Environment:
    """Lock the environment's row until the next commit: starting and recording deployments serialise on it."""
    return db.session.execute(
        select(Environment).where(Environment.id == environment_id).with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def progress_deadline(deployment: Deployment) -> float:
    return float((deployment.spec or {}).get("progressDeadline") or 600)


def approval_rule(deployment: Deployment, gate: Gate) -> dict | None:
    key = "beforeDeploy" if gate == Gate.DEPLOY else "beforePromote"
    rule = ((deployment.spec or {}).get("approvals") or {}).get(key)
    return {"role": rule.get("role", "developer"), "count": int(rule.get("count", 1))} if rule else None


def approval_count(deployment: Deployment, gate: Gate) -> int:
    return db.session.scalar(select(func.count()).select_from(DeploymentApproval).where(
        DeploymentApproval.deployment_id == deployment.id, DeploymentApproval.gate == gate)) or 0


def approval_reason(deployment: Deployment, gate: Gate) -> str:
    rule = approval_rule(deployment, gate)
    what = "deploy" if gate == Gate.DEPLOY else "promote"
    return (f"Waiting for {rule['count']} approval(s) to {what} from reviewers with the role {rule['role']} or "
            f"above, other than {deployment.requested_by or 'the requester'} "
            f"({approval_count(deployment, gate)} so far)")


def start_next_pending(environment_id: int) -> None:
    """Queue the environment's pending deployment, if any, now that the active one ended."""
    pending = db.session.scalar(select(Deployment.id).where(
        Deployment.environment_id == environment_id, Deployment.status.in_(PENDING)))
    if pending is not None:
        enqueue_drive(pending)


def reap_stalled_deployments() -> int:
    """Queue a job for every active deployment whose job died or released it without waiting for people; return how many."""
    stale = utcnow() - timedelta(seconds=LEASE_SECONDS)
    waiting_for_people = (Deployment.status == DeploymentStatus.PAUSED) & Deployment.resume_at.is_(None)
    stalled = db.session.scalars(select(Deployment.id).where(
        Deployment.status.in_(ACTIVE),
        (Deployment.worker.isnot(None) & (Deployment.heartbeat_at < stale))
        | (Deployment.worker.is_(None) & ~waiting_for_people),
    )).all()
    for deployment_id in stalled:
        log.warning("deployment %s: no job drives it; queuing one", deployment_id)
        enqueue_drive(deployment_id)
    return len(stalled)
