"""Starting, advancing, finishing and cancelling runs: the one place that moves their statuses.

The CLI, the API, webhooks, schedules and the workers all come through here, so a
run started by hand follows the same path as one started by a forge. Functions take
ids where they lock rows, and every status change locks the run row first, so two
workers finishing parallel stages of one run cannot both miss the last step.
"""

import logging
from datetime import timedelta, timezone

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from flask import current_app
from sqlalchemy import func, select, update

from app.extensions import db
from app.forges.status import report_run_status
from app.models import Project, Run, RunStatus, Stage, StageStatus
from app.models._columns import utcnow
from app.notifications import notify_run_finished
from app.status import RETRIED_STAGE, TERMINAL_RUN, TERMINAL_STAGE, StageWait
from app.pipelines import graph
from app.queue import control_channel, redis_connection, run_queue
from app.runs.logs import append_system_lines

log = logging.getLogger(__name__)

# Seconds an RQ job may run beyond its stage's own timeout before RQ kills it.
JOB_TIMEOUT_MARGIN = 300
# Seconds the planning job has for checking out and planning, before any stage it runs itself.
PREPARE_TIMEOUT = 900
# A planning job started this many seconds ago may not have written its first heartbeat yet.
PLANNING_START_GRACE = 5
# The error of a stage skipped because a stage it needs did not pass.
NEED_FAILED = "a stage it needs did not pass"
# The log line of a deploy stage that waits for a fork run's approval.
APPROVAL_NEEDED = ("Waiting for approval: this run comes from a fork, so a maintainer (project admin) must approve "
                   "the run on its page or with POST /api/v1/runs/<id>/approve before this stage deploys")


class RunError(Exception):
    """A run could not be started or changed; the message says why and what to do."""


def _redis() -> redis.Redis | None:
    try:
        return redis_connection()
    except redis.RedisError:
        return None


def system_log(run_id: int, stage_id: int | None, *messages: str) -> None:
    """Add platform messages to a run's log."""
    append_system_lines(db.engine, _redis(), run_id, stage_id, list(messages))


def create_run(project: Project, *, trigger: str, event: dict, pipeline_override: str | None = None) -> Run:
    """Record a queued run of `project` for `event` and queue its preparation.

    `pipeline_override` is an edited pipeline file to run in place of the committed one.
    Raises RunError when the queue is unreachable; the run is then recorded as error.
    """
    db.session.execute(select(Project.id).where(Project.id == project.id).with_for_update())
    number = (db.session.scalar(select(func.max(Run.number)).where(Run.project_id == project.id)) or 0) + 1
    run = Run(
        project_id=project.id, number=number, trigger=trigger, event=event["kind"], ref=event.get("ref"),
        branch=event.get("branch"), tag=event.get("tag"), commit_sha=event.get("commit"),
        before_sha=event.get("before"), author=event.get("author"), message=event.get("message"),
        pull_request=(event.get("pullRequest") or {}).get("number"), event_data=event, status=RunStatus.QUEUED,
        pipeline_override=pipeline_override,
    )
    # Set before the run is queued, so no stage can start before the run is known to need approval.
    run.approval_required = event["kind"] == "pull_request" and bool((event.get("pullRequest") or {}).get("fork"))
    db.session.add(run)
    db.session.commit()
    log.info("run %s: queued #%s of project %s (%s, %s)", run.id, number, project.name, trigger, event["kind"])
    try:
        enqueue_prepare(run.id, prepare_job_ids(run.id)[0])
    except redis.RedisError as error:
        fail_run(run.id, f"Cannot queue the run: Redis is unreachable ({error}). Start Redis or check REDIS_URL.")
        raise RunError(f"Run #{number} of {project.name!r} could not be queued: Redis is unreachable ({error})") from error
    report_run_status(run.id)
    return run


def _locked_run(run_id: int) -> Run:
    return db.session.execute(select(Run).where(Run.id == run_id).with_for_update().execution_options(populate_existing=True)).scalar_one()


def fail_run(run_id: int, message: str, status: RunStatus = RunStatus.ERROR) -> None:
    """End a run that could not run, with `message` as its reason and in its log."""
    run = _locked_run(run_id)
    if run.status in TERMINAL_RUN:
        db.session.rollback()
        return
    for stage in run.stages:
        if stage.status == StageStatus.QUEUED:
            stage.status = StageStatus.SKIPPED
    run.status, run.status_reason, run.finished_at = status, message, utcnow()
    db.session.commit()
    log.warning("run %s: %s: %s", run_id, status, message)
    system_log(run_id, None, message)
    announce_run_end(run_id)


def announce_run_end(run_id: int) -> None:
    """Tell the forge and the people who asked that a run ended; neither can fail or delay the run."""
    report_run_status(run_id)
    notify_run_finished(run_id)


def add_stages(run: Run, plan: dict, needs: dict[str, list[str]]) -> None:
    """Create the run's stage rows from its plan: selected stages queued, the others skipped with the reason."""
    for entry in plan["stages"]:
        selected = entry["name"] in needs
        db.session.add(Stage(
            run_id=run.id, name=entry["name"], position=entry["index"], needs=needs.get(entry["name"], []),
            options=entry.get("options") or {}, deno_flags=entry.get("denoFlags") or [],
            status=StageStatus.QUEUED if selected else StageStatus.SKIPPED,
            error=None if selected else (entry.get("skipReason") or "not selected by its filters"),
        ))


def advance_run(run_id: int, claim: tuple[str, str] | None = None) -> int | None:
    """Skip stages whose needs failed, queue those that may start, and finish the run when all ended.

    `claim` is (stage name, worker): when that stage may start, it is marked running on
    the worker in the same transaction instead of being queued, and its id is returned.
    Should the worker die, the stage's missing heartbeat gets it requeued.
    """
    run = _locked_run(run_id)
    stages = {stage.name: stage for stage in run.stages}
    if run.status in TERMINAL_RUN:
        _cancel_waiting(stages.values())
        db.session.commit()
        return None
    needs = {stage.name: stage.needs for stage in stages.values()}
    statuses = {name: stages[name].status for name in needs}
    ready, skip = graph.next_moves(needs, statuses)
    while skip:
        for name in skip:
            stages[name].status = statuses[name] = StageStatus.SKIPPED
            stages[name].error = NEED_FAILED
            stages[name].finished_at = utcnow()
        ready, skip = graph.next_moves(needs, statuses)
    to_queue = [stages[name] for name in ready if stages[name].enqueued_at is None]
    held, newly_held = _hold_unapproved_deploy_stages(run, to_queue)
    to_queue = [stage for stage in to_queue if stage not in held]
    for stage in to_queue:
        stage.enqueued_at = utcnow()
        stage.attempt = 1
    claimed = next((stage for stage in to_queue if claim and stage.name == claim[0]), None)
    run_started = False
    if claimed is not None:
        to_queue.remove(claimed)
        now = utcnow()
        claimed.status, claimed.worker, claimed.started_at, claimed.heartbeat_at = StageStatus.RUNNING, claim[1], now, now
        if run.status == RunStatus.QUEUED:
            run.status, run.started_at, run_started = RunStatus.RUNNING, now, True
    finished = all(status in TERMINAL_STAGE for status in statuses.values())
    if finished:
        _finish(run, [statuses[name] for name in needs])
    db.session.commit()
    for stage in newly_held:
        log.info("run %s stage %s: deploy stage waits for a maintainer to approve the run", run_id, stage.id)
        system_log(run_id, stage.id, APPROVAL_NEEDED)
    for stage in to_queue:
        enqueue_stage(stage)
    if run_started:
        report_run_status(run_id)
    if finished:
        announce_run_end(run_id)
    return claimed.id if claimed is not None else None


def _hold_unapproved_deploy_stages(run: Run, ready: list[Stage]) -> tuple[list[Stage], list[Stage]]:
    """Keep the ready deploy stages of an unapproved fork run from the queue; return (held, newly held).

    Code from a fork must not deploy before a maintainer has read it, so such a stage
    stays queued, with no job and no worker, until `release_approved_stages`.
    """
    if not run.approval_required or run.approved_at is not None:
        return [], []
    deploy_stages = {entry["name"] for entry in (run.plan or {}).get("stages", []) if entry.get("deploy")}
    held = [stage for stage in ready if stage.name in deploy_stages]
    newly_held = [stage for stage in held if stage.waiting_for != StageWait.APPROVAL]
    for stage in newly_held:
        stage.waiting_for = StageWait.APPROVAL
    return held, newly_held


def release_approved_stages(run_id: int) -> int:
    """Queue the deploy stages that waited for the run's approval; return how many."""
    run = _locked_run(run_id)
    waiting = [stage for stage in run.stages
               if stage.status == StageStatus.QUEUED and stage.waiting_for == StageWait.APPROVAL]
    for stage in waiting:
        stage.waiting_for = None
    db.session.commit()
    for stage in waiting:
        log.info("run %s stage %s: run approved, deploy stage released", run_id, stage.id)
        system_log(run_id, stage.id, "The run was approved; the deploy stage is queued")
    advance_run(run_id)
    return len(waiting)


def prepare_job_ids(run_id: int) -> tuple[str, str]:
    """Return the RQ job ids of a run's planning: the first try, and the one after its worker was lost."""
    return f"prepare-{run_id}", f"prepare-{run_id}-again"


def planning_key(run_id: int) -> str:
    """Return the Redis key that the worker planning a run keeps alive (see `jobs.tasks.prepare_run`)."""
    return f"deno-ci:planning:{run_id}"


def enqueue_prepare(run_id: int, job_id: str) -> None:
    # The worker that plans may then run the first stage itself (jobs/first_stage.py).
    timeout = PREPARE_TIMEOUT + current_app.config["STAGE_TIMEOUT"] + JOB_TIMEOUT_MARGIN
    run_queue().enqueue("jobs.tasks.prepare_run", run_id, job_timeout=timeout, job_id=job_id)


def enqueue_stage(stage: Stage) -> None:
    timeout = int(float(stage.options.get("timeout") or current_app.config["STAGE_TIMEOUT"])) + JOB_TIMEOUT_MARGIN
    run_queue().enqueue("jobs.tasks.run_stage", stage.id, stage.attempt, job_timeout=timeout,
                        job_id=f"stage-{stage.id}-{stage.attempt}")


def _finish(run: Run, statuses: list[str]) -> None:
    run.status = graph.run_outcome(statuses)
    run.finished_at = utcnow()
    if run.status == RunStatus.SKIPPED and not run.status_reason:
        run.status_reason = "the pipeline's filters selected no stage for this event"
    log.info("run %s: finished as %s", run.id, run.status)


def _cancel_waiting(stages) -> None:
    for stage in stages:
        if stage.status == StageStatus.QUEUED:
            stage.status = StageStatus.CANCELLED
            stage.finished_at = utcnow()
            stage.waiting_for = None


def start_stage(stage_id: int, attempt: int, worker: str) -> Stage | None:
    """Mark the stage running as `attempt` on `worker`; return None if another execution owns it.

    The conditional update is what keeps a stage from running twice at one attempt
    when a job is delivered twice.
    """
    now = utcnow()
    claimed = db.session.execute(
        update(Stage).where(Stage.id == stage_id, Stage.status == StageStatus.QUEUED, Stage.attempt == attempt)
        .values(status=StageStatus.RUNNING, worker=worker, started_at=now, heartbeat_at=now,
                finished_at=None, exit_code=None, error=None, waiting_for=None)
        .returning(Stage.run_id)
    ).scalar_one_or_none()
    if claimed is None:
        db.session.rollback()
        return None
    started_run = db.session.execute(
        update(Run).where(Run.id == claimed, Run.status == RunStatus.QUEUED).values(status=RunStatus.RUNNING, started_at=now)
    ).rowcount
    db.session.commit()
    if started_run:
        report_run_status(claimed)
    return db.session.get(Stage, stage_id)


def finish_stage(stage_id: int, status: StageStatus, exit_code: int | None, error: str | None, *,
                 retry: bool = True, attempt: int | None = None) -> bool:
    """Record how an attempt ended; retry it if `retry` and its `retries` allow, else advance the run.

    With `attempt`, only that attempt's end is recorded. Returns False when the stage
    was not running that attempt (another call ended it first, or the scheduler queued
    it again after its worker stopped responding).
    """
    return finish_stage_claiming(stage_id, status, exit_code, error, retry=retry, attempt=attempt)[0]


def finish_stage_claiming(stage_id: int, status: StageStatus, exit_code: int | None, error: str | None, *,
                          retry: bool = True, attempt: int | None = None,
                          claim: tuple[str, str] | None = None) -> tuple[bool, int | None]:
    """Do what `finish_stage` does, and claim a stage the run may start next, as `advance_run` does.

    Returns (whether the end was recorded, id of the stage claimed with `claim` or None).
    """
    stage = db.session.get(Stage, stage_id, with_for_update=True, populate_existing=True)
    if stage.status != StageStatus.RUNNING or (attempt is not None and stage.attempt != attempt):
        db.session.rollback()
        return False, None
    retries = int(stage.options.get("retries") or 0) if retry else 0
    if status in RETRIED_STAGE and stage.attempt <= retries and stage.run.status not in TERMINAL_RUN:
        requeue_stage(stage, f"attempt {stage.attempt} ended {status}: {error}; retrying")
        return True, None
    stage.status, stage.exit_code, stage.error, stage.finished_at = status, exit_code, error, utcnow()
    stage.waiting_for = None
    db.session.commit()
    return True, advance_run(stage.run_id, claim)


def requeue_stage(stage: Stage, reason: str) -> None:
    """Queue a running stage again as a new attempt (retry, or its worker was lost)."""
    stage.status = StageStatus.QUEUED
    stage.attempt += 1
    stage.error = reason
    stage.enqueued_at = utcnow()
    db.session.commit()
    system_log(stage.run_id, stage.id, reason)
    enqueue_stage(stage)


def cancel_run(run_id: int, reason: str = "cancelled") -> bool:
    """Cancel a run that has not ended; return False if it had ended already.

    Queued stages are cancelled here; running ones are killed by their workers,
    which hear about it on the run's control channel. A deploy stage waiting for its
    deployment has no worker: its deployment is aborted, and its end cancels the stage.
    """
    from app.deployments.deploy_stages import abort_for_cancelled_run

    run = _locked_run(run_id)
    if run.status in TERMINAL_RUN:
        db.session.rollback()
        return False
    _cancel_waiting(run.stages)
    run.status, run.status_reason, run.finished_at = RunStatus.CANCELLED, reason, utcnow()
    db.session.commit()
    log.info("run %s: cancelled (%s)", run_id, reason)
    connection = _redis()
    if connection is not None:
        try:
            connection.publish(control_channel(run_id), "cancel")
        except redis.RedisError as error:
            log.warning("run %s: could not publish the cancel, workers will see it on their next check: %s", run_id, error)
    system_log(run_id, None, f"Run cancelled: {reason}")
    abort_for_cancelled_run(run_id, reason)
    announce_run_end(run_id)
    return True


def cancel_superseded_runs(run_id: int) -> list[int]:
    """Cancel older queued or running runs of the same project and branch, if the run's plan asks for it.

    Called once the plan is recorded, because only the pipeline can ask, through its
    top-level `concurrency: {cancelInProgress: true}`. Returns the ids of the cancelled runs.
    """
    run = db.session.get(Run, run_id, populate_existing=True)
    concurrency = (run.plan or {}).get("concurrency") or {}
    if not isinstance(concurrency, dict) or not concurrency.get("cancelInProgress") or not run.branch:
        return []
    older = db.session.scalars(select(Run.id).where(
        Run.project_id == run.project_id, Run.branch == run.branch, Run.number < run.number,
        Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]),
    ).order_by(Run.number)).all()
    reason = f"superseded by run #{run.number} of branch {run.branch!r}"
    return [older_id for older_id in older if cancel_run(older_id, reason)]


PLANNING_LOST = "the worker planning the run stopped responding"


def reap_lost_planning() -> int:
    """Plan again, once, the runs whose planning worker stopped sending heartbeats; fail them the second time.

    A run still waiting in the queue for a free worker is left alone. Return how many runs were handled.
    """
    connection = _redis()
    if connection is None:
        return 0
    limit = utcnow() - timedelta(seconds=current_app.config["STAGE_HEARTBEAT_TIMEOUT"])
    waiting = db.session.scalars(
        select(Run).where(Run.status == RunStatus.QUEUED, Run.plan.is_(None), Run.queued_at < limit)
    ).all()
    handled = 0
    for run in waiting:
        first, again = prepare_job_ids(run.id)
        try:
            job_id = again if Job.exists(again, connection=connection) else first
            if not _planning_lost(connection, run.id, job_id):
                continue
        except redis.RedisError as error:
            log.warning("run %s: cannot tell whether its planning worker is alive: %s", run.id, error)
            continue
        handled += 1
        log.warning("run %s: %s (job %s)", run.id, PLANNING_LOST, job_id)
        if job_id == first:
            system_log(run.id, None, f"{PLANNING_LOST}; planning it again on another worker")
            enqueue_prepare(run.id, again)
        else:
            fail_run(run.id, f"The run was not planned: {PLANNING_LOST}, twice. "
                             "Trigger it again, and check the workers' logs if it happens again.")
    db.session.commit()
    return handled


def _planning_lost(connection: redis.Redis, run_id: int, job_id: str) -> bool:
    """Return whether the planning job ended or died without a plan, as opposed to waiting for a worker or running."""
    if connection.exists(planning_key(run_id)):
        return False
    try:
        job = Job.fetch(job_id, connection=connection)
    except NoSuchJobError:
        return True
    status = job.get_status()
    if status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED):
        return False
    if status != JobStatus.STARTED or job.started_at is None:
        return True
    started_at = job.started_at if job.started_at.tzinfo else job.started_at.replace(tzinfo=timezone.utc)
    return started_at < utcnow() - timedelta(seconds=PLANNING_START_GRACE)


def reap_lost_stages() -> int:
    """Requeue or fail running stages whose worker stopped sending heartbeats; return how many."""
    limit = utcnow() - timedelta(seconds=current_app.config["STAGE_HEARTBEAT_TIMEOUT"])
    # A deploy stage waiting for its deployment has no worker, so it sends no heartbeat.
    lost = db.session.scalars(
        select(Stage).where(Stage.status == StageStatus.RUNNING, Stage.heartbeat_at < limit,
                            Stage.waiting_for.is_(None)).with_for_update(skip_locked=True)
    ).all()
    for stage in lost:
        message = f"worker {stage.worker} stopped responding during attempt {stage.attempt}"
        log.warning("run %s stage %s: %s", stage.run_id, stage.id, message)
        if stage.run.status not in TERMINAL_RUN and stage.attempt <= max(int(stage.options.get("retries") or 0), 1):
            requeue_stage(stage, f"{message}; retrying on another worker")
        else:
            stage.status, stage.error, stage.finished_at = StageStatus.ERROR, message, utcnow()
            db.session.commit()
            system_log(stage.run_id, stage.id, message)
            advance_run(stage.run_id)
    db.session.commit()
    return len(lost)
