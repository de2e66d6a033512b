"""The status sets of runs and stages, and the moves the database allows between them."""

from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"  # created; its plan is being computed or its first stages wait for a worker
    RUNNING = "running"  # at least one stage has started
    SUCCESS = "success"  # every selected stage succeeded or failed with allowFailure
    FAILED = "failed"  # a stage failed, so the run failed
    CANCELLED = "cancelled"  # a person or a newer run cancelled it
    SKIPPED = "skipped"  # the pipeline's filters selected no stage for the event
    ERROR = "error"  # the platform could not run it (bad pipeline, missing commit, lost worker)


class StageStatus(StrEnum):
    QUEUED = "queued"  # waiting for the stages it needs, or for a worker
    RUNNING = "running"  # a worker is executing it
    SUCCESS = "success"  # its function returned and every child process exited 0
    FAILED = "failed"  # it threw, or a child process exited non-zero
    ALLOWED_FAILURE = "allowed_failure"  # it failed, but allowFailure keeps the run going and green
    CANCELLED = "cancelled"  # the run was cancelled before or while it ran
    SKIPPED = "skipped"  # a stage it needs failed, or its filters did not select it
    ERROR = "error"  # the platform failed it: timeout, lost worker, sandbox failure


# An attempt that ended in one of these is tried again while the stage's `retries` allow.
# A failure that `allowFailure` lets pass counts as a failure here.
RETRIED_STAGE = frozenset({StageStatus.FAILED, StageStatus.ALLOWED_FAILURE, StageStatus.ERROR})


class StageWait(StrEnum):
    """The reason a stage waits without a worker; NULL for every other stage."""

    APPROVAL = "approval"  # queued: a deploy stage of a fork's pull request run waits for a maintainer's approval
    DEPLOYMENT = "deployment"  # running: a deploy stage waits for its deployment to end


TERMINAL_RUN = frozenset({RunStatus.SUCCESS, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.SKIPPED, RunStatus.ERROR})
TERMINAL_STAGE = frozenset(StageStatus) - {StageStatus.QUEUED, StageStatus.RUNNING}

# Moves allowed by the database triggers in the migration "status transitions".
# A stage may also go from running back to queued, but only as a new attempt.
RUN_TRANSITIONS = {
    RunStatus.QUEUED: {RunStatus.RUNNING, *TERMINAL_RUN},
    RunStatus.RUNNING: TERMINAL_RUN - {RunStatus.SKIPPED},
}
STAGE_TRANSITIONS = {
    StageStatus.QUEUED: {StageStatus.RUNNING, StageStatus.CANCELLED, StageStatus.SKIPPED, StageStatus.ERROR},
    StageStatus.RUNNING: TERMINAL_STAGE - {StageStatus.SKIPPED} | {StageStatus.QUEUED},
}


def stage_label(status: str, waiting_for: str | None) -> str:
    """Return the words the run page shows for a stage: "deploying" and "waiting for approval" name the waits."""
    if status == StageStatus.RUNNING and waiting_for == StageWait.DEPLOYMENT:
        return "deploying"
    if status == StageStatus.QUEUED and waiting_for == StageWait.APPROVAL:
        return "waiting for approval"
    return status.replace("_", " ")
