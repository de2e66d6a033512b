"""Commit statuses: each run status change becomes a report that an RQ job sends to the forge.

`report_run_status` is called by the run service after each status change and only
inserts a row and enqueues a job, so a forge outage never slows or fails a run. The
job retries with backoff; a report older than one already sent is dropped, so a
late retry of "pending" cannot overwrite "success".
"""

import logging

import redis
from flask import current_app, has_app_context
from rq import Retry, get_current_job
from sqlalchemy import select

from app.extensions import db
from app.forges import FORGES, get_forge
from app.forges.base import CommitState, ForgeError
from app.forges.crypto import SecretDecryptionError
from app.models import CommitStatusReport, ForgeAccount, Run, RunStatus
from app.models._columns import utcnow
from app.queue import run_queue

log = logging.getLogger(__name__)

# The name of the status on the commit; a later report with the same name replaces the earlier one.
CONTEXT = "deno-ci"
# Seconds between attempts: about 37 minutes in all before a report is given up.
RETRY_INTERVALS = [10, 30, 120, 600, 1500]
JOB_TIMEOUT = 60

STATES = {
    RunStatus.QUEUED: CommitState.PENDING, RunStatus.RUNNING: CommitState.RUNNING,
    RunStatus.SUCCESS: CommitState.SUCCESS, RunStatus.FAILED: CommitState.FAILURE,
    RunStatus.ERROR: CommitState.ERROR, RunStatus.CANCELLED: CommitState.CANCELLED,
    # A skipped run is a success, so that a required check does not wait forever.
    RunStatus.SKIPPED: CommitState.SUCCESS,
}


def describe(run: Run) -> tuple[CommitState, str]:
    """Return the commit state and the one-line description for the run's current status."""
    reason = (run.status_reason or "").strip().splitlines()[0] if run.status_reason else ""
    text = {
        RunStatus.QUEUED: f"Run #{run.number} is queued",
        RunStatus.RUNNING: f"Run #{run.number} is running",
        RunStatus.SUCCESS: f"Run #{run.number} passed",
        RunStatus.FAILED: f"Run #{run.number} failed",
        RunStatus.ERROR: f"Run #{run.number} could not run: {reason}",
        RunStatus.CANCELLED: f"Run #{run.number} was cancelled: {reason}",
        RunStatus.SKIPPED: f"Run #{run.number} skipped: {reason}",
    }[RunStatus(run.status)]
    return STATES[RunStatus(run.status)], text.rstrip(": ")


def report_run_status(run_id: int) -> None:
    """Queue a commit status report of the run's current status, if it is a forge project's run.

    Never raises: a failure to queue is logged, because reporting must not fail the run.
    """
    try:
        _queue_report(run_id)
    except (redis.RedisError, ForgeError) as error:
        log.warning("run %s: cannot queue its commit status report: %s", run_id, error)


def _queue_report(run_id: int) -> None:
    run = db.session.get(Run, run_id, populate_existing=True)
    if run is None or run.project.forge not in FORGES or not run.project.forge_repo:
        return
    state, description = describe(run)
    last = db.session.scalar(select(CommitStatusReport).where(CommitStatusReport.run_id == run_id)
                             .order_by(CommitStatusReport.id.desc()).limit(1))
    if last is not None and (last.state, last.description) == (state, description):
        return
    report = CommitStatusReport(run_id=run_id, state=state, description=description)
    skip = _skip_reason(run)
    if skip:
        report.delivery_status, report.last_error = "skipped", skip
    db.session.add(report)
    db.session.commit()
    if not skip:
        run_queue().enqueue("app.forges.status.send_report", report.id, job_id=f"commit-status-{report.id}",
                            job_timeout=JOB_TIMEOUT, retry=Retry(max=len(RETRY_INTERVALS), interval=RETRY_INTERVALS))


def _skip_reason(run: Run) -> str | None:
    if run.project.forge_account_id is None:
        return "the project has no forge account to report with; connect it through the forge sign-in"
    if not run.commit_sha:
        return "the run has no commit id yet"
    return None


def send_report(report_id: int) -> None:
    """Send one commit status report to the forge (an RQ job).

    Enqueued by `report_run_status`; timeout 60 s; retried 5 times with growing
    intervals (RETRY_INTERVALS). Safe to run twice: a sent report is not sent again.
    """
    if has_app_context():
        _send(report_id)
        return
    from app.factory import create_app

    with create_app().app_context():
        try:
            _send(report_id)
        finally:
            db.session.remove()


def _send(report_id: int) -> None:
    report = db.session.get(CommitStatusReport, report_id, populate_existing=True)
    if report is None or report.delivery_status != "pending":
        return
    if _newer_report_sent(report):
        report.delivery_status = "superseded"
        db.session.commit()
        return
    report.attempts += 1
    try:
        _deliver(report)
    except (ForgeError, SecretDecryptionError) as error:
        report.last_error = str(error)
        job = get_current_job()
        if job is None or not job.retries_left:
            report.delivery_status = "failed"
        db.session.commit()
        log.warning("run %s: commit status report %s attempt %s failed: %s", report.run_id, report.id, report.attempts, error)
        raise
    report.delivery_status, report.sent_at, report.last_error = "sent", utcnow(), None
    db.session.commit()
    log.info("run %s: reported %s to the forge", report.run_id, report.state)


def _newer_report_sent(report: CommitStatusReport) -> bool:
    return db.session.scalar(select(CommitStatusReport.id).where(
        CommitStatusReport.run_id == report.run_id, CommitStatusReport.id > report.id,
        CommitStatusReport.delivery_status == "sent",
    ).limit(1)) is not None


def _deliver(report: CommitStatusReport) -> None:
    from app.forges.accounts import access_token

    run = db.session.get(Run, report.run_id)
    project = run.project
    account = db.session.get(ForgeAccount, project.forge_account_id)
    if account is None:
        raise ForgeError(f"Project {project.name!r} has no forge account to report with")
    get_forge(project.forge).report_status(
        access_token(account), project.forge_repo, run.commit_sha, CommitState(report.state),
        target_url=f"{current_app.config['BASE_URL'].rstrip('/')}/runs/{run.id}",
        description=report.description, context=CONTEXT, ref=run.branch or run.tag,
    )
