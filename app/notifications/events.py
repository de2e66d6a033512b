"""The events that can notify, and which of them a finished run raises."""

from enum import StrEnum

from sqlalchemy import select

from app.extensions import db
from app.models import Run, RunStatus


class Event(StrEnum):
    RUN_FAILED = "run_failed"  # a run ended failed, or error (the platform could not run it)
    RUN_FIXED = "run_fixed"  # a run succeeded after the previous finished run of its branch failed
    RUN_SUCCEEDED = "run_succeeded"  # a run succeeded
    RUN_CANCELLED = "run_cancelled"  # a person or a newer run cancelled a run
    DEPLOYMENT_STARTED = "deployment_started"
    DEPLOYMENT_SUCCEEDED = "deployment_succeeded"
    DEPLOYMENT_FAILED = "deployment_failed"
    DEPLOYMENT_ROLLED_BACK = "deployment_rolled_back"


RUN_EVENTS = (Event.RUN_FAILED, Event.RUN_FIXED, Event.RUN_SUCCEEDED, Event.RUN_CANCELLED)
DEPLOYMENT_EVENTS = tuple(event for event in Event if event.name.startswith("DEPLOYMENT_"))

EVENT_LABELS = {
    Event.RUN_FAILED: "Run failed",
    Event.RUN_FIXED: "Run fixed",
    Event.RUN_SUCCEEDED: "Run succeeded",
    Event.RUN_CANCELLED: "Run cancelled",
    Event.DEPLOYMENT_STARTED: "Deployment started",
    Event.DEPLOYMENT_SUCCEEDED: "Deployment succeeded",
    Event.DEPLOYMENT_FAILED: "Deployment failed",
    Event.DEPLOYMENT_ROLLED_BACK: "Deployment rolled back",
}

# The words a pipeline's `notifications[].on` may use, besides the event names themselves.
PIPELINE_EVENT_WORDS = {
    "failure": (Event.RUN_FAILED,),
    "failed": (Event.RUN_FAILED,),
    "success": (Event.RUN_SUCCEEDED,),
    "succeeded": (Event.RUN_SUCCEEDED,),
    "fixed": (Event.RUN_FIXED,),
    "cancelled": (Event.RUN_CANCELLED,),
    "always": RUN_EVENTS,
}

# Statuses that show whether the code passed. Cancelled and skipped runs show nothing, so "fixed" looks past them.
VERDICT_STATUSES = (RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.ERROR)


def run_events(run: Run) -> list[Event]:
    """Return the events a finished run raises, the most specific first (fixed before succeeded)."""
    if run.status in (RunStatus.FAILED, RunStatus.ERROR):
        return [Event.RUN_FAILED]
    if run.status == RunStatus.CANCELLED:
        return [Event.RUN_CANCELLED]
    if run.status != RunStatus.SUCCESS:
        return []
    if previous_verdict(run) in (RunStatus.FAILED, RunStatus.ERROR):
        return [Event.RUN_FIXED, Event.RUN_SUCCEEDED]
    return [Event.RUN_SUCCEEDED]


def previous_verdict(run: Run) -> str | None:
    """Return the status of the latest earlier succeeded, failed or errored run of the same project and branch."""
    if run.branch is None:
        return None
    return db.session.scalar(
        select(Run.status)
        .where(Run.project_id == run.project_id, Run.branch == run.branch, Run.number < run.number,
               Run.status.in_(VERDICT_STATUSES))
        .order_by(Run.number.desc())
        .limit(1)
    )


def pipeline_events(words: list) -> set[Event]:
    """Map a pipeline entry's `on` list to events; words it does not know are left out."""
    events: set[Event] = set()
    for word in words:
        if word in PIPELINE_EVENT_WORDS:
            events.update(PIPELINE_EVENT_WORDS[word])
        elif word in Event.__members__.values():
            events.add(Event(word))
    return events
