"""The run's next stage, held while the current one runs, and run by the same job after it.

Starting a stage's sandbox and Deno took about 50 ms of every stage but the first,
and queueing it for the next free worker added 10 to 15 ms. So while a stage runs,
its worker picks the stage that will become ready once this one passes and waits
for nothing else. It checks the commit out into a folder of its own, unpacks the
dependency cache and starts its sandbox held, as the planning worker does for the
first stage (jobs/first_stage.py). When the running stage passes, the worker marks
the next one running on itself in the transaction that queues what the end makes
ready (`service.finish_stage_claiming`), and releases it. In every other case (the
stage failed, the run was cancelled, the dependency cache differs) it drops the sandbox,
in which none of the stage's code has run, and the stage is queued as before.

A stage is chained only when the job has time left for its timeout: RQ ends a job at
its own time limit, which covers one stage's timeout plus a margin.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from app.pipelines import graph
from jobs import first_stage
from jobs import workspace as git_workspace
from jobs.cache import CacheStore, stage_cache_key
from jobs.stage_execution import StageContext

log = logging.getLogger(__name__)

# Seconds of the job's time limit kept for recording a chained stage's end.
RECORD_MARGIN = 60
PREPARED_WHILE_PREVIOUS_RAN = "Sandbox made while the stage before it ran"


def candidate(run, current: str, waiting: set[str], passed: set[str]) -> dict | None:
    """Return the plan entry of the stage that becomes ready when stage `current` passes, or None.

    `waiting` names the run's stages that are neither queued for a worker nor started,
    `passed` those that passed. The stage must wait for `current` and otherwise only for
    passed stages. Deploy stages and runs of an edited pipeline are left to the queue.
    """
    if run.pipeline_override is not None or not run.plan:
        return None
    needs = graph.effective_needs(run.plan["stages"])
    for entry in run.plan["stages"]:
        name = entry["name"]
        if name not in waiting or name not in needs or entry.get("deploy"):
            continue
        if current in needs[name] and all(need == current or need in passed for need in needs[name]):
            return entry
    return None


def job_seconds_left() -> float | None:
    """Return how many seconds the current RQ job has left before its time limit, or None outside a job."""
    from rq import get_current_job

    job = get_current_job()
    if job is None or job.started_at is None or not job.timeout or job.timeout < 0:
        return None
    started = job.started_at if job.started_at.tzinfo else job.started_at.replace(tzinfo=timezone.utc)
    return job.timeout - (datetime.now(timezone.utc) - started).total_seconds()


def fits(plan_stage: dict, default_timeout: float) -> bool:
    """Return whether the current RQ job has time left for the stage's timeout."""
    left = job_seconds_left()
    timeout = float(plan_stage["options"].get("timeout") or default_timeout)
    return left is not None and timeout + RECORD_MARGIN <= left


class NextStage:
    """The next stage's folder and held sandbox, made in threads while the current stage runs."""

    def __init__(self, plan_stage: dict, context: StageContext, run_folder: Path, mirror: Path, sha: str,
                 clone_url: str, caches: CacheStore) -> None:
        self.plan_stage = plan_stage
        self._context = context
        self._run_folder = run_folder
        self._mirror, self._sha, self._clone_url = mirror, sha, clone_url
        self._caches = caches
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="next-stage")
        self._holding: Future | None = None

    def start(self) -> None:
        """Start checking out, unpacking the cache and starting the sandbox; call once."""
        folder = first_stage.make_folder(self._run_folder, f"held-next-stage-{self.plan_stage['index']}")
        if folder is None:
            return
        checking_out = self._pool.submit(git_workspace.checkout_into, self._mirror, self._sha, folder.workspace,
                                         self._clone_url)
        # The key covers files of the checkout, so the stage's archive is known only after it.
        # The newest archive is a poor guess: a restore makes its archive the newest, so after a
        # stage with a key of its own, the newest is that stage's.
        restoring = self._pool.submit(self._restore_cache, checking_out, folder)
        self._holding = self._pool.submit(first_stage.hold, self.plan_stage, self._context, folder, restoring, checking_out)

    def _restore_cache(self, checking_out: Future, folder: first_stage.StageFolder) -> str | None:
        checking_out.result()
        return self._caches.restore(stage_cache_key(folder.workspace, self.plan_stage["options"]), folder.deno_dir)

    def claim(self, worker: str) -> tuple[str, str] | None:
        """Wait for the held stage; return the claim for `service.finish_stage_claiming`, or None when it is not usable."""
        held = self.held_stage()
        if held is None:
            return None
        # The plan never changes within a run, so only the cache can differ.
        if not first_stage.has_right_cache(held, self._caches):
            log.info("run %s: stage %r needs another dependency cache than its held sandbox has; the sandbox is "
                     "dropped and the stage queued", self._context.run_id, held.plan_stage["name"])
            return None
        return held.plan_stage["name"], worker

    def held_stage(self) -> first_stage.HeldStage | None:
        """Wait for the held stage and return it, or None when it could not be made or was never started."""
        result = self._holding.result() if self._holding is not None else None
        self._pool.shutdown(wait=False)
        if result is not None:
            result.note = PREPARED_WHILE_PREVIOUS_RAN
        return result

    def drop(self) -> None:
        """End the held sandbox, if any, without running the stage."""
        held = self.held_stage()
        if held is not None:
            first_stage.drop(held)
