"""The run's first stage, made ready while the pipeline is planned, and run by the planning worker.

Planning takes tens of milliseconds in the sandbox, and the first stage then spends
about as long again making its own sandbox and starting Deno. When an earlier run of
the project planned the same commit, or another commit of the same branch, its plan
names the stage that most likely comes first. So the planning worker makes that
stage's sandbox and loads the runner while it plans (`stage_execution.hold_stage`).
If the new plan has a stage of that name with the same settings and nothing to wait
for, the worker marks it running on itself in the transaction that queues the run's
other first stages (`service.advance_run`), then releases it. Otherwise it drops the
sandbox, in which none of the stage's code has run.

As soon as the commit is known, the stage's folder is made, the dependency cache is
unpacked into it and the commit is checked out into its workspace, side by side. The
sandbox starts once the cache is in place and the run's event is complete, since the
stage's environment carries it; the checkout may still be going on then (`hold`),
because the stage's code reads the workspace only once released.

When an earlier run planned the same commit for the same event, the run takes that plan
without planning (`app/pipelines/plan_reuse.py`), and the same path runs its first
stage. The sandbox is then made while the stages are recorded.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import or_, select

from app.extensions import db
from app.models import Run
from app.pipelines import graph
from jobs.cache import CacheStore, stage_cache_key
from jobs.executor import Execution, ExecutorError
from jobs.stage_execution import PREPARED_DURING_PLANNING, StageContext, drop_held, hold_stage
from jobs.workspace import GitError

log = logging.getLogger(__name__)

FOLDER = "held-first-stage"
# How many of the project's latest runs are searched for an earlier plan of the commit.
RECENT_RUNS = 50


@dataclass
class HeldStage:
    """A stage whose sandbox was made ahead: its plan entry, the held execution and its folder."""

    plan_stage: dict
    execution: Execution
    folder: Path
    # Key of the dependency cache unpacked into the stage's DENO_DIR, or None when there was none.
    cache_key: str | None
    # Written to the stage's log when it starts: when its sandbox was made.
    note: str = PREPARED_DURING_PLANNING

    @property
    def workspace(self) -> Path:
        return self.folder / "workspace"


def guess(run: Run, sha: str) -> dict | None:
    """Return the plan entry of the stage that an earlier plan started first, or None.

    The latest plan of the same commit is taken, else the latest of the same branch:
    a push of a new commit seldom changes the pipeline, so its first stage is usually
    the one the branch's last run started with.
    """
    if run.pipeline_override is not None:
        return None
    # Only the project's latest runs are read (index ix_runs_project_id_id): a project
    # without such a run would otherwise have every run read to find none.
    recent = (select(Run.id, Run.plan, Run.commit_sha, Run.branch, Run.pipeline_override)
              .where(Run.project_id == run.project_id, Run.id < run.id)
              .order_by(Run.id.desc()).limit(RECENT_RUNS).subquery())
    same_commit = recent.c.commit_sha == sha
    related = same_commit if run.branch is None else or_(same_commit, recent.c.branch == run.branch)
    previous = db.session.scalar(
        select(recent.c.plan).where(related, recent.c.plan.is_not(None), recent.c.pipeline_override.is_(None))
        .order_by(same_commit.desc().nulls_last(), recent.c.id.desc()).limit(1)
    )
    return graph.first_stage(previous) if previous else None


@dataclass
class StageFolder:
    """The folder of a stage to hold, with its workspace and its DENO_DIR."""

    path: Path

    @property
    def workspace(self) -> Path:
        return self.path / "workspace"

    @property
    def deno_dir(self) -> Path:
        return self.path / "deno-dir"


def make_folder(run_folder: Path, name: str = FOLDER) -> StageFolder | None:
    """Make a held stage's folder `name` with an empty workspace, replacing one that a killed worker left; None on failure."""
    folder = StageFolder(run_folder / name)
    shutil.rmtree(folder.path, ignore_errors=True)
    try:
        folder.workspace.mkdir(parents=True)
    except OSError as error:
        log.warning("run folder %s: no folder for the first stage: %s", run_folder, error)
        return None
    return folder


def hold(plan_stage: dict, context: StageContext, folder: StageFolder, restoring: Future,
         checking_out: Future) -> HeldStage | None:
    """Start the stage's sandbox in `folder`, held, once its cache is restored; return it once the checkout is done.

    `restoring` unpacks the dependency cache into the DENO_DIR and gives its key: the
    runner reads the cache when Deno starts. `checking_out` fills the workspace, which
    the stage's code reads only once released. Return None, with the folder removed,
    when the sandbox, the cache or the checkout fails.
    """
    execution = None
    try:
        restored_key = restoring.result()
        execution = hold_stage(plan_stage, context, folder.workspace, folder.deno_dir)
        checking_out.result()
    except (ExecutorError, OSError, GitError) as error:
        log.info("run %s: stage %r could not be prepared ahead, so it is queued: %s", context.run_id, plan_stage["name"], error)
        if execution is not None:
            drop_held(execution)
        discard_folder(folder, restoring, checking_out)
        return None
    return HeldStage(plan_stage, execution, folder.path, restored_key)


def discard_folder(folder: StageFolder, *work: Future) -> None:
    """Remove `folder` once the `work` filling it has ended, when no stage is held in it."""
    for future in work:
        future.exception()
    shutil.rmtree(folder.path, ignore_errors=True)


def matches(plan: dict, held_stage: HeldStage, caches: CacheStore) -> bool:
    """Return whether the new plan starts the stage that `held_stage` was made for, with the same settings.

    The stage must be in the plan with the very same entry and nothing to wait for, and
    the dependency cache already in its DENO_DIR must be the one its key names.
    """
    return graph.starts_unchanged(plan, held_stage.plan_stage) and has_right_cache(held_stage, caches)


def has_right_cache(held_stage: HeldStage, caches: CacheStore) -> bool:
    """Return whether the held stage's DENO_DIR has the dependency cache that `CacheStore.restore` would give it now."""
    key = stage_cache_key(held_stage.workspace, held_stage.plan_stage["options"])
    if caches.archive_path(key).exists():
        return held_stage.cache_key == key
    # Without an archive of its own key, a stage starts from the newest one.
    return held_stage.cache_key == caches.newest_key()


def drop(held_stage: HeldStage) -> None:
    """End the held sandbox without running the stage and remove its folder."""
    drop_held(held_stage.execution)
    shutil.rmtree(held_stage.folder, ignore_errors=True)
