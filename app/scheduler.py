"""The periodic duties of the platform: cron schedules, lost workers, notification retries and expired artifacts.

Lost workers include stalled deployments, and deploy stages that a job dying at the
wrong moment left running after their deployment ended. A deploy stage that waits
for a deployment still going on is not lost.

Several schedulers may run at once (one per `deno-ci serve`); each duty is safe
under that: a schedule slot is claimed with a conditional update, so it starts at
most one run, and lost stages are taken with `SKIP LOCKED`.
"""

import logging
import shutil
import time
from datetime import datetime
from pathlib import Path

from croniter import croniter
from flask import current_app
from sqlalchemy import select, update

from app.deployments.deploy_stages import finish_stages_of_ended_deployments
from app.deployments.engine import reap_stalled_deployments
from app.extensions import db
from app.models import Artifact, Run, Schedule
from app.models._columns import utcnow
from app.notifications.delivery import enqueue_due_deliveries
from app.runs import service
from app.runs.events import make_event
from app.status import TERMINAL_RUN
from jobs.removal import REMOVING_MARK

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
RETENTION_EVERY_SECONDS = 3600.0


def latest_slot(cron: str, now: datetime) -> datetime:
    """Return the most recent time at or before `now` that the cron expression names."""
    return croniter(cron, now).get_prev(datetime)


def run_due_schedules(now: datetime | None = None) -> int:
    """Start one run for each schedule whose latest slot has not started one; return how many started.

    Only the latest slot counts, so slots missed while the platform was down start
    one run on start-up, not one per missed slot. A schedule created after its
    latest slot waits for the next one.
    """
    now = now or utcnow()
    started = 0
    for schedule in db.session.scalars(select(Schedule).where(Schedule.enabled)).all():
        slot = latest_slot(schedule.cron, now)
        if slot <= (schedule.last_slot or schedule.created_at):
            continue
        claimed = db.session.execute(
            update(Schedule)
            .where(Schedule.id == schedule.id, (Schedule.last_slot.is_(None)) | (Schedule.last_slot < slot))
            .values(last_slot=slot)
        ).rowcount
        db.session.commit()
        if not claimed:
            continue
        log.info("schedule %s: starting run of %s for slot %s", schedule.id, schedule.branch, slot.isoformat())
        service.create_run(schedule.project, trigger="schedule", event=make_event("schedule", branch=schedule.branch))
        started += 1
    return started


def delete_expired_artifacts(now: datetime | None = None) -> int:
    """Delete artifacts past their retention; return how many."""
    expired = db.session.scalars(select(Artifact).where(Artifact.expires_at < (now or utcnow()))).all()
    for artifact in expired:
        Path(artifact.path).unlink(missing_ok=True)
        db.session.delete(artifact)
    db.session.commit()
    return len(expired)


def remove_ended_run_folders(workspaces: Path) -> int:
    """Remove the folders of runs that have ended (or no longer exist) under `workspaces`; return how many.

    Workers remove a run's folder when its last stage ends on them. A run that ends
    elsewhere (its deployment, a cancel) can leave a spare workspace behind.
    """
    folders = {}
    for folder in workspaces.glob("run-*"):
        if REMOVING_MARK in folder.name:
            # Renamed for removal by a worker that stopped before it was deleted.
            shutil.rmtree(folder, ignore_errors=True)
            continue
        try:
            folders[int(folder.name.removeprefix("run-"))] = folder
        except ValueError:
            continue
    if not folders:
        return 0
    going_on = set(db.session.scalars(select(Run.id).where(Run.id.in_(list(folders)), Run.status.not_in(list(TERMINAL_RUN)))))
    removed = 0
    for run_id, folder in folders.items():
        if run_id not in going_on:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def run_forever(stop) -> None:
    """Do the duties every tick until `stop` (a threading.Event) is set."""
    last_retention = 0.0
    while not stop.is_set():
        try:
            run_due_schedules()
            service.reap_lost_stages()
            service.reap_lost_planning()
            reap_stalled_deployments()
            finish_stages_of_ended_deployments()
            enqueue_due_deliveries()
            if time.monotonic() - last_retention > RETENTION_EVERY_SECONDS:
                delete_expired_artifacts()
                remove_ended_run_folders(Path(current_app.config["WORKSPACES_DIR"]))
                last_retention = time.monotonic()
        except Exception:  # noqa: BLE001  (one bad tick must not stop the scheduler)
            log.exception("scheduler tick failed")
            db.session.rollback()
        finally:
            db.session.remove()
        stop.wait(TICK_SECONDS)
