"""Re-running a run: all of it, or only its failed stages and what depends on them.

A failed-stages re-run is a new run of the same commit and plan whose passed stages are
copied as they ended, with their artifacts, so only the failed part executes again.
"""

import logging
import os
import shutil
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.forges.status import report_run_status
from app.models import Artifact, Project, Run, RunStatus, Stage, StageStatus
from app.runs import service
from app.status import TERMINAL_RUN

log = logging.getLogger(__name__)

# Stages a failed-stages re-run keeps as they ended. A stage skipped because a need
# failed is not kept: it runs again with the stages it needs.
KEPT = {StageStatus.SUCCESS, StageStatus.ALLOWED_FAILURE}


class RerunError(Exception):
    """A run cannot be re-run in the way requested; the message says why."""


def rerun(run_id: int, *, failed_only: bool = False) -> Run:
    """Start a new run repeating run `run_id`; raise RerunError when that is impossible."""
    original = db.session.get(Run, run_id)
    if original is None:
        raise RerunError(f"Run {run_id} not found")
    if original.status not in TERMINAL_RUN:
        raise RerunError(f"Run {run_id} is still {original.status}; cancel it or wait for it to end before re-running")
    if failed_only:
        return _rerun_failed(original)
    event = dict(original.event_data or {})
    # Runs recorded without event data (created directly, or before it was stored) still have their kind.
    event.setdefault("kind", original.event)
    # The re-run tests the same commit, even if the branch has moved on since.
    event["commit"] = original.commit_sha or event.get("commit")
    run = service.create_run(original.project, trigger="rerun", event=event,
                             pipeline_override=original.pipeline_override)
    run.rerun_of_id, run.approval_required = original.id, original.approval_required
    db.session.commit()
    return run


def stages_to_rerun(stages: list[Stage]) -> set[str]:
    """Return the names of the stages that did not pass, and of every stage that needs one of them."""
    selected = {stage.name for stage in stages if stage.status not in KEPT and not _filtered_out(stage)}
    needs = {stage.name: set(stage.needs or []) for stage in stages}
    changed = True
    while changed:
        dependents = {name for name, required in needs.items() if required & selected} - selected
        selected |= dependents
        changed = bool(dependents)
    return selected


def _filtered_out(stage: Stage) -> bool:
    # Skipped by the pipeline's filters (no attempt, not skipped for a failed need): skipped again.
    return stage.status == StageStatus.SKIPPED and stage.attempt == 0 and stage.error != service.NEED_FAILED


def _rerun_failed(original: Run) -> Run:
    if not original.plan or not original.stages:
        raise RerunError(f"Run {original.id} has no stages to re-run ({original.status}); re-run the whole run instead")
    selected = stages_to_rerun(original.stages)
    if not selected:
        raise RerunError(f"Run {original.id} has no failed stage; re-run the whole run instead")
    run = _copy_run(original)
    kept = [stage for stage in original.stages if stage.name not in selected]
    for stage in original.stages:
        db.session.add(_copy_stage(stage, run.id, rerun=stage.name in selected))
    db.session.flush()
    _copy_artifacts(original, run, kept)
    db.session.commit()
    log.info("run %s: re-runs stages %s of run %s", run.id, sorted(selected), original.id)
    service.system_log(run.id, None, f"Re-run of run #{original.number}: stages {', '.join(sorted(selected))} run again; "
                                     "the others are copied with their artifacts")
    report_run_status(run.id)
    service.advance_run(run.id)
    return db.session.get(Run, run.id)


def _copy_run(original: Run) -> Run:
    db.session.execute(select(Project.id).where(Project.id == original.project_id).with_for_update())
    number = (db.session.scalar(select(func.max(Run.number)).where(Run.project_id == original.project_id)) or 0) + 1
    run = Run(
        project_id=original.project_id, number=number, trigger="rerun", event=original.event, ref=original.ref,
        branch=original.branch, tag=original.tag, commit_sha=original.commit_sha, before_sha=original.before_sha,
        pull_request=original.pull_request, author=original.author, message=original.message,
        event_data=original.event_data, plan=original.plan, status=RunStatus.QUEUED, rerun_of_id=original.id,
        approval_required=original.approval_required, pipeline_override=original.pipeline_override,
        pipeline_path=original.pipeline_path,
    )
    db.session.add(run)
    db.session.flush()
    return run


def _copy_stage(stage: Stage, run_id: int, *, rerun: bool) -> Stage:
    copy = Stage(run_id=run_id, name=stage.name, position=stage.position, needs=stage.needs, options=stage.options,
                 deno_flags=stage.deno_flags)
    if rerun:
        copy.status, copy.attempt = StageStatus.QUEUED, 0
    else:
        copy.status, copy.attempt, copy.exit_code = stage.status, stage.attempt, stage.exit_code
        copy.error, copy.started_at, copy.finished_at = stage.error, stage.started_at, stage.finished_at
    return copy


def _copy_artifacts(original: Run, run: Run, kept: list[Stage]) -> None:
    new_ids = {stage.name: stage.id for stage in db.session.scalars(select(Stage).where(Stage.run_id == run.id))}
    names = {stage.id: stage.name for stage in kept}
    folder = Path(current_app.config["DATA_DIR"]) / "artifacts" / str(run.id)
    for artifact in db.session.scalars(select(Artifact).where(Artifact.run_id == original.id)):
        if artifact.stage_id not in names or not Path(artifact.path).exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / Path(artifact.path).name
        _link_or_copy(Path(artifact.path), target)
        db.session.add(Artifact(run_id=run.id, stage_id=new_ids[names[artifact.stage_id]], name=artifact.name,
                                path=str(target), size=artifact.size, expires_at=artifact.expires_at))


def _link_or_copy(source: Path, target: Path) -> None:
    # A hard link costs no space; archives are never modified in place, only replaced.
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
