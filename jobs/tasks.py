"""RQ jobs: prepare a run (checkout, plan) and run one stage attempt.

Both take ids, reload their rows, and are safe to run twice. `prepare_run` does
nothing for a run that has a plan or has ended; after planning it may run the first
stage itself, in a sandbox made while it planned (`jobs/first_stage.py`). `run_stage` claims its stage with a
conditional update, so a second delivery of the same attempt exits at once.
"""

import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import redis
from flask import Flask, current_app
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from app.extensions import db
from app.forges.cloning import mirror_options
from app.models import Artifact, Project, Run, RunStatus, Stage, StageStatus
from app.models._columns import utcnow
from app.status import TERMINAL_RUN
from app.pipelines import graph, plan_reuse, runner
from app.queue import control_channel, redis_connection, run_queue
from app.runs import service, test_results
from app.runs.events import MAX_AUTHOR_CHARACTERS, bounded_changed_files, cut_message, make_event
from app.secret_store import is_fork_pull_request, secrets_for_stage, values_to_mask
from jobs import workspace as git_workspace
from jobs.artifacts import ArtifactError, ArtifactStore, left_out_link_note
from jobs.cache import CacheStore, restore_paths, stage_cache_key, stage_cache_paths
from jobs import deploy_stage, first_stage, next_stage, spare_workspace
from jobs.executor import get_executor
from jobs.log_sink import LogSink
from jobs.masking import SecretMasker
from jobs.removal import remove_later
from jobs.stage_execution import (StageContext, StageOutcome, can_hold, drop_held, execute_stage, named_secrets,
                                  secrets_subject)

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 2.0
# How long a job retries its bookkeeping while PostgreSQL is unreachable (a restart).
DATABASE_RETRY_SECONDS = 120.0
_app: Flask | None = None


def get_app() -> Flask:
    """Return this worker process's app, created on first use."""
    global _app
    if _app is None:
        from app.factory import create_app

        _app = create_app()
    return _app


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _data_dir() -> Path:
    return Path(current_app.config["DATA_DIR"])


def run_workspace(run_id: int) -> Path:
    return Path(current_app.config["WORKSPACES_DIR"]) / f"run-{run_id}"


def artifact_store(run_id: int) -> ArtifactStore:
    return ArtifactStore(_data_dir() / "artifacts" / str(run_id))


def prepare_run(run_id: int) -> None:
    """Resolve the run's commit, plan its pipeline and queue its first stages.

    Enqueued by `service.create_run`; timeout 900 s; not retried by RQ (a failure
    ends the run as error with the reason in its log).
    """
    with get_app().app_context():
        try:
            with _planning_heartbeat(run_id):
                claimed = _prepare(run_id)
            # Run after planning has ended: the planning's cancel listener stops planners, not stages.
            if claimed is not None:
                _run_chain(*claimed)
            _remove_ended_run_folder(run_id)
        finally:
            db.session.remove()


@contextmanager
def _planning_heartbeat(run_id: int):
    """Keep the run's planning key alive in Redis while the block runs, so `service.reap_lost_planning` leaves it alone."""
    connection = _redis_or_none()
    if connection is None:
        yield
        return
    key, ttl = service.planning_key(run_id), max(int(current_app.config["STAGE_HEARTBEAT_TIMEOUT"]), 1)
    stopped = threading.Event()

    def beat() -> None:
        cancels = _cancel_subscription(connection, run_id)
        next_beat = 0.0
        while not stopped.is_set():
            if time.monotonic() >= next_beat:
                try:
                    connection.set(key, worker_name(), ex=ttl)
                except redis.RedisError as error:
                    log.warning("run %s: planning heartbeat failed: %s", run_id, error)
                next_beat = time.monotonic() + HEARTBEAT_INTERVAL
            if cancels is None:
                stopped.wait(HEARTBEAT_INTERVAL)
            elif _cancel_heard(cancels, timeout=0.25):
                # The run was cancelled while it was planned: a pipeline that keeps the planner
                # busy would otherwise hold this worker until the planning timeout.
                log.info("run %s: cancelled while planned; stopping the planning", run_id)
                runner.cancel_sandboxed_runners()
        if cancels is not None:
            cancels.close()
        # Deleted here, after the last beat, so that no beat can set the key again.
        try:
            connection.delete(key)
        except redis.RedisError:
            pass

    thread = threading.Thread(target=beat, name=f"planning heartbeat {run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        # Not joined: the thread may wait up to 0.25 s for a cancel, which would delay this worker's next job.
        stopped.set()


def _cancel_subscription(connection: redis.Redis, run_id: int):
    """Subscribe to the run's control channel, where a cancel of the run is published; None when Redis fails."""
    try:
        pubsub = connection.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(control_channel(run_id))
        return pubsub
    except redis.RedisError as error:
        log.warning("run %s: cannot subscribe to cancels, relying on heartbeats: %s", run_id, error)
        return None


def _cancel_heard(pubsub, timeout: float) -> bool:
    """Wait up to `timeout` seconds for a message on the control channel; return whether it was a cancel."""
    try:
        message = pubsub.get_message(timeout=timeout)
    except redis.RedisError:
        return False
    return bool(message and message.get("data") == b"cancel")


def _prepare(run_id: int) -> tuple[int, int, first_stage.HeldStage] | None:
    """Plan the run and queue its first stages; return (stage id, attempt, held sandbox) of a stage claimed to run here."""
    run = db.session.get(Run, run_id)
    if run is None or run.status in TERMINAL_RUN or run.plan is not None:
        return
    project = run.project
    # The same folder for every run of the project: Deno's type-check cache is keyed by
    # module URLs, so a folder per run would make every check cold (1.4 s instead of
    # 30 ms). The lock keeps two workers of one machine out of each other's way.
    folder = _data_dir() / "plan-workspaces" / str(project.id)
    plan_deno_dir = _data_dir() / "plan-caches" / cache_scope(run)
    caches = CacheStore(_data_dir(), cache_scope(run))
    spare = held_future = held_folder = None
    held_work: tuple[Future, ...] = ()
    # Fixed for the whole run: committed with the event below, and read by every stage.
    run.pipeline_path = pipeline_path = pipeline_file(run)
    try:
        mirror = git_workspace.update_mirror(_data_dir(), project.id, project.clone_url, **mirror_options(run))
        revision = run.commit_sha or run.tag or run.branch or project.default_branch
        sha = git_workspace.resolve_commit(mirror, revision)
        # Planning imports the repository's code: it runs in the stages' sandbox.
        executor = get_executor(current_app.config["EXECUTOR"])
        guessed = first_stage.guess(run, sha) if can_hold(executor) else None
        with ThreadPoolExecutor(max_workers=2) as pool:
            # The likely first stage gets a checkout of its own, made while its sandbox starts,
            # so no spare workspace is made for it.
            held_folder = first_stage.make_folder(run_workspace(run_id)) if guessed is not None else None
            if held_folder is not None:
                held_work = (pool.submit(caches.restore_newest, held_folder.deno_dir),
                             pool.submit(git_workspace.checkout_into, mirror, sha, held_folder.workspace, project.clone_url))
            else:
                spare = spare_workspace.SpareMaker(run_workspace(run_id), mirror, sha, project.clone_url, pipeline_path,
                                                   run.pipeline_override, caches).start()
            facts = _commit_facts(mirror, sha, (run.event_data or {}).get("before"))
            event = _complete_event(run, sha, facts)
            key = plan_reuse.plan_key(pipeline_path, event) if run.pipeline_override is None else None
            earlier = plan_reuse.earlier_plan(run, key) if key is not None else None
            if held_folder is not None:
                plan_stage = graph.first_stage(earlier[0]) if earlier is not None else guessed
                held_future = _hold_first_stage(pool, run, plan_stage, executor, held_folder, held_work)
            if earlier is not None:
                plan = earlier[0]
                service.system_log(run_id, None, f"Plan taken from run #{earlier[1]}, which planned the same commit "
                                                 "and event with this pipeline file, SDK and Deno")
            else:
                plan = _plan(run, mirror, sha, event, executor, facts["tree"], (folder, plan_deno_dir))
    except git_workspace.GitError as error:
        _discard_spare(spare, held_future, held_folder, held_work)
        service.fail_run(run_id, f"Cannot check out the commit: {error}")
        return
    except runner.PipelineError as error:
        _discard_spare(spare, held_future, held_folder, held_work)
        db.session.rollback()
        if db.session.get(Run, run_id, populate_existing=True).status in TERMINAL_RUN:
            # Cancelled while planned: the planning was stopped, which is no error of the pipeline's.
            log.info("run %s: planning stopped, the run has ended", run_id)
            return
        problems = runner.relative_problems(error.problems, folder)
        service.system_log(run_id, None, *[f"pipeline error: {problem}" for problem in problems])
        service.fail_run(run_id, f"The pipeline {pipeline_path!r} is invalid: {problems[0]}")
        return
    except BaseException:
        _discard_spare(spare, held_future, held_folder, held_work)
        raise
    # The spare must be in place before the first stage is queued, or that stage misses it.
    if spare is not None:
        spare.finish(keep=True)
    held_stage = held_future.result() if held_future is not None else None
    claim = _claim_for(run_id, plan, held_stage, caches) if held_stage is not None else None
    try:
        claimed_id = _record_plan(run_id, plan, key, claim)
    except BaseException:
        if held_stage is not None:
            first_stage.drop(held_stage)
        raise
    if claimed_id is not None:
        return claimed_id, 1, held_stage
    if held_stage is not None:
        first_stage.drop(held_stage)
    return None


def _plan(run: Run, mirror: Path, sha: str, event: dict, executor, tree: str, folders: tuple[Path, Path]) -> dict:
    """Check the commit out into the project's planning folder and plan and type-check its pipeline there.

    `folders` are the planning folder and its DENO_DIR.
    """
    folder, deno_dir = folders
    with git_workspace.locked(folder.with_suffix(".lock")):
        git_workspace.refresh_checkout(mirror, sha, folder, run.project.clone_url)
        git_workspace.write_pipeline_override(folder, run.pipeline_path, run.pipeline_override)
        # An edited pipeline from the editor is not the commit's tree, so it is always checked.
        return runner.plan_and_check(folder, run.pipeline_path, event, deno_dir, executor,
                                     source_key=tree if run.pipeline_override is None else None,
                                     max_memory_bytes=current_app.config["STAGE_MEMORY_BYTES"])


def _hold_first_stage(pool: ThreadPoolExecutor, run: Run, plan_stage: dict | None, executor,
                      folder: first_stage.StageFolder, work: tuple[Future, ...]) -> Future:
    """Start holding `plan_stage`, the run's likely first stage, in `folder` (see jobs/first_stage.py).

    Called once the run's event is complete, since the stage's environment carries it.
    `work` restores the cache and checks the commit out into the folder. The future's
    result is the held stage, or None.
    """
    if plan_stage is None:
        return pool.submit(first_stage.discard_folder, folder, *work)
    return pool.submit(first_stage.hold, plan_stage, _stage_context(run, plan_stage, executor), folder, *work)


def _claim_for(run_id: int, plan: dict, held_stage: first_stage.HeldStage, caches: CacheStore) -> tuple[str, str] | None:
    """Return the claim for `advance_run` that lets this job run the held stage, or None to drop it."""
    name = held_stage.plan_stage["name"]
    if not first_stage.matches(plan, held_stage, caches):
        log.info("run %s: the plan does not start stage %r as guessed; its prepared sandbox is dropped", run_id, name)
        return None
    # This job's own time limit leaves room for a stage of the default timeout, not more.
    timeout = float(held_stage.plan_stage["options"].get("timeout") or current_app.config["STAGE_TIMEOUT"])
    if timeout > current_app.config["STAGE_TIMEOUT"]:
        log.info("run %s: stage %r has a %g s timeout, longer than the planning job allows; it is queued instead",
                 run_id, name, timeout)
        return None
    return name, worker_name()


def _discard_spare(spare: spare_workspace.SpareMaker | None, held_future: Future | None = None,
                   held_folder: first_stage.StageFolder | None = None, held_work: tuple[Future, ...] = ()) -> None:
    """Remove what was made ahead for a run that will not start: the spare, and the held stage or its folder."""
    if spare is not None:
        spare.finish(keep=False)
    held_stage = held_future.result() if held_future is not None else None
    if held_stage is not None:
        first_stage.drop(held_stage)
    elif held_future is None and held_folder is not None:
        first_stage.discard_folder(held_folder, *held_work)


def _commit_facts(mirror: Path, sha: str, before: str | None) -> dict:
    """Return the commit's author and message, and the files the push changed, read side by side."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        changed = pool.submit(git_workspace.changed_files, mirror, before, sha)
        return {**git_workspace.commit_details(mirror, sha), "changedFiles": changed.result()}


def _complete_event(run: Run, sha: str, facts: dict) -> dict:
    event = dict(run.event_data or {}) or make_event(run.event, branch=run.branch, tag=run.tag)
    event["commit"] = sha
    event["author"] = cut_message(event.get("author") or facts["author"], MAX_AUTHOR_CHARACTERS)
    event["message"] = cut_message(event.get("message") or facts["message"])
    event["changedFiles"] = bounded_changed_files(facts["changedFiles"])
    run.commit_sha, run.author, run.message, run.event_data = sha, event["author"], event["message"], event
    db.session.commit()
    return event


def _record_plan(run_id: int, plan: dict, key: str | None, claim: tuple[str, str] | None = None) -> int | None:
    """Store the plan, its reuse key and its stages and queue the first ones; return the id of the stage claimed with `claim`."""
    run = db.session.execute(
        db.select(Run).where(Run.id == run_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one()
    if run.status in TERMINAL_RUN or run.plan is not None:
        db.session.rollback()
        return None
    needs = graph.effective_needs(plan["stages"])
    run.plan, run.plan_key = plan, key
    service.add_stages(run, plan, needs)
    db.session.commit()
    service.cancel_superseded_runs(run_id)
    if not needs:
        service.fail_run(run_id, "No stage of the pipeline is selected for this event; the run is skipped.", RunStatus.SKIPPED)
        return None
    return service.advance_run(run_id, claim)


def run_stage(stage_id: int, attempt: int) -> None:
    """Run one attempt of a stage in the sandbox, streaming its log, then advance the run.

    Enqueued by `service.advance_run` and on retries; its RQ timeout is the stage's
    timeout plus a margin. Lost workers are handled by `service.reap_lost_stages`.
    """
    with get_app().app_context():
        try:
            _run_chain(stage_id, attempt)
        finally:
            db.session.remove()


def _run_chain(stage_id: int, attempt: int, held_stage: first_stage.HeldStage | None = None) -> None:
    """Run a stage, then each next stage it held and claimed (jobs/next_stage.py)."""
    next_id: int | None = stage_id
    while next_id is not None:
        next_id, held_stage = _run_stage(next_id, attempt, held_stage)
        attempt = 1


def _run_stage(stage_id: int, attempt: int,
               held_stage: first_stage.HeldStage | None = None) -> tuple[int | None, first_stage.HeldStage | None]:
    """Run one attempt of a stage; return the id and held sandbox of the next stage it claimed, or (None, None).

    `held_stage` is the stage's sandbox made ahead, during planning or while the stage
    before it ran. It is released instead of making one. Such a stage is already marked
    running on this worker.
    """
    if held_stage is not None:
        stage = db.session.get(Stage, stage_id)
    else:
        stage = service.start_stage(stage_id, attempt, worker_name())
    if stage is None:
        log.info("stage %s attempt %s: already taken or ended; nothing to do", stage_id, attempt)
        return None, None
    run, project = stage.run, stage.run.project
    run_id = run.id
    log.info("run %s stage %s (%s): attempt %s started", run.id, stage.id, stage.name, attempt)
    folder = held_stage.folder if held_stage is not None else run_workspace(run.id) / f"stage-{stage.id}-{attempt}"
    connection = _redis_or_none()
    masker = SecretMasker(values_to_mask(run))
    sink = LogSink(db.engine, connection, run.id, stage.id, masker, attempt)
    plan_stage = next(entry for entry in run.plan["stages"] if entry["name"] == stage.name)
    deploy_spec = plan_stage.get("deploy")
    if deploy_spec and not deploy_spec.get("run"):
        # A deploy stage without a function needs no checkout and no sandbox.
        _finish_deploy_stage(stage.id, run, deploy_spec, sink)
        return None, None
    watchdog = _Watchdog(current_app._get_current_object(), run.id, stage.id, attempt)
    next_spare = next_held = None
    try:
        workspace, deno_dir = folder / "workspace", folder / "deno-dir"
        caches = CacheStore(_data_dir(), cache_scope(run))
        if held_stage is not None:
            artifact_store(run.id).restore_all(workspace)
            key, restored = stage_cache_key(workspace, stage.options), held_stage.cache_key
        else:
            key, restored = _prepare_workspace(run, stage, caches, workspace, deno_dir)
        # Read now: after the commit below, reading the stage's options would need the database.
        cache_paths = stage_cache_paths(stage.options)
        restore_paths(deno_dir, workspace, cache_paths)
        executor = get_executor(current_app.config["EXECUTOR"])
        next_held = _next_held_stage(run, stage, executor, caches)
        next_spare = _next_spare(run, stage, caches) if next_held is None else None
        ahead = next_held or next_spare
        if ahead is not None and held_stage is not None:
            # A held stage's sandbox started earlier, so making the next stage's now slows no start.
            ahead.start()
        sink.write("system", f"Restored dependency cache {restored}" if restored else "No dependency cache yet")
        if held_stage is not None:
            sink.write("system", held_stage.note)
        context = _stage_context(run, plan_stage, executor)
        if missing := _missing_secrets(run, plan_stage, context):
            sink.write("system", missing)
        # A stage may run for an hour: hold no database connection meanwhile, so a
        # database restart during the stage cannot break this job's session.
        db.session.commit()
        if held_stage is not None and _run_ended(run_id):
            # Cancelled after the stage was claimed: a cancel leaves running stages to their
            # workers, and none of this one's code has run yet.
            drop_held(held_stage.execution)
            outcome = StageOutcome(StageStatus.CANCELLED, None, "cancelled")
        else:
            # The next stage's workspace is made once this stage runs, because making it while the sandbox starts slows that start.
            outcome = execute_stage(plan_stage, context, workspace, deno_dir, on_log=sink.write, on_start=watchdog.watch,
                                    held_execution=held_stage.execution if held_stage is not None else None,
                                    on_running=ahead.start if ahead is not None and held_stage is None else None)
        watchdog.execution_ended()
        _retry_database(test_results.collect_stage_reports, run_id, stage_id, workspace)
        if outcome.status == StageStatus.SUCCESS:
            _retry_database(_collect_artifacts, run_id, stage_id, workspace, outcome, sink)
        if outcome.status == StageStatus.SUCCESS:
            caches.save(key, deno_dir, workspace, cache_paths)
        # A stage's error text quotes its own output, which may contain a secret.
        outcome.error = masker.mask(outcome.error) if outcome.error else outcome.error
    except git_workspace.GitError as error:
        outcome = None
        error_message = f"Cannot check out commit {run.commit_sha}: {error}"
    except Exception as error:  # noqa: BLE001  (any failure here must end the stage, not leave it running)
        log.exception("run %s stage %s: platform failure", run_id, stage_id)
        outcome = None
        error_message = f"The platform failed to run the stage: {error}"
    finally:
        remove_later(folder)
        # The next stage is queued when this one finishes: its workspace must be in place by then.
        if next_spare is not None:
            next_spare.finish(keep=True)
    # Heartbeats go on until the attempt's end is recorded: storing a large log backlog
    # can take longer than the heartbeat timeout, and the stage would be taken for lost.
    claimed_id = None
    try:
        if outcome is None:
            sink.write("system", error_message)
            sink.close()
            _record_end(run_id, stage_id, attempt, StageStatus.ERROR, None, error_message)
            return None, None
        if outcome.status == StageStatus.SUCCESS and deploy_spec:
            _finish_deploy_stage(stage_id, run, deploy_spec, sink)
            return None, None
        if outcome.error and outcome.status != StageStatus.SUCCESS:
            sink.write("system", f"Stage {outcome.status}: {outcome.error}")
        sink.close()
        log.info("run %s stage %s: attempt %s ended %s", run_id, stage_id, attempt, outcome.status)
        claim = None
        # The stage took time of the job's limit, so whether the next one fits is checked again.
        if (next_held is not None and outcome.status == StageStatus.SUCCESS
                and next_stage.fits(next_held.plan_stage, current_app.config["STAGE_TIMEOUT"])):
            claim = next_held.claim(worker_name())
        claimed_id = _record_end(run_id, stage_id, attempt, outcome.status, outcome.exit_code, outcome.error, claim)
    finally:
        watchdog.stop()
        if next_held is not None and claimed_id is None:
            next_held.drop()
    if claimed_id is not None:
        log.info("run %s stage %s: runs next on this worker in the sandbox made while stage %s ran",
                 run_id, claimed_id, stage_id)
        return claimed_id, next_held.held_stage()
    _remove_ended_run_folder(run_id)
    return None, None


def _record_end(run_id: int, stage_id: int, attempt: int, status: StageStatus, exit_code: int | None,
                error: str | None, claim: tuple[str, str] | None = None) -> int | None:
    """Record how the attempt ended, unless the stage has moved on to another attempt meanwhile.

    Returns the id of the stage claimed with `claim` (see `service.advance_run`), or None.
    """
    recorded, claimed_id = _retry_database(_finish_attempt, stage_id, attempt, status, exit_code, error, claim)
    if not recorded:
        log.warning("run %s stage %s attempt %s: ended %s after the stage had moved on; the result is not recorded",
                    run_id, stage_id, attempt, status)
    return claimed_id


def _finish_attempt(stage_id: int, attempt: int, status: StageStatus, exit_code: int | None, error: str | None,
                    claim: tuple[str, str] | None = None) -> tuple[bool, int | None]:
    return service.finish_stage_claiming(stage_id, status, exit_code, error, attempt=attempt, claim=claim)


def _stage_context(run: Run, plan_stage: dict, executor) -> StageContext:
    return StageContext(
        run_id=str(run.id), pipeline_path=pipeline_file(run), event=run.event_data, executor=executor,
        default_timeout=current_app.config["STAGE_TIMEOUT"], max_output_bytes=current_app.config["STAGE_MAX_OUTPUT"],
        secrets=secrets_for_stage(run, plan_stage.get("options") or {}), tmp_bytes=current_app.config["STAGE_TMP_BYTES"],
        max_memory_bytes=current_app.config["STAGE_MEMORY_BYTES"],
        max_processes=current_app.config["STAGE_MAX_PROCESSES"],
    )


def _missing_secrets(run: Run, plan_stage: dict, context: StageContext) -> str | None:
    """Return a note naming the secrets the stage lists that it does not get, or None when it gets them all."""
    missing = [name for name in named_secrets(plan_stage) if name not in context.secrets]
    if not missing:
        return None
    names = secrets_subject(missing)
    if is_fork_pull_request(run) and run.approved_at is None:
        return f"{names} withheld: this run of a fork's pull request gets secrets once a maintainer approves it."
    return (f"{names} not set in project {run.project.name!r}, so the stage runs without; a project admin sets "
            f"secrets on the project's settings page or with PUT /api/v1/projects/{run.project.name}/secrets/NAME.")


def _next_held_stage(run: Run, stage: Stage, executor, caches: CacheStore) -> next_stage.NextStage | None:
    """Return the maker of the sandbox of the stage that this one's success makes ready, when this job can run it next."""
    mirror = _data_dir() / "mirrors" / f"{run.project_id}.git"
    if not can_hold(executor) or not (mirror / "HEAD").exists() or _others_wait():
        return None
    stages = db.session.scalars(select(Stage).where(Stage.run_id == run.id)).all()
    waiting = {other.name for other in stages if other.status == StageStatus.QUEUED and other.enqueued_at is None}
    passed = {other.name for other in stages if other.status in graph.PASSED}
    entry = next_stage.candidate(run, stage.name, waiting, passed)
    if entry is None or not next_stage.fits(entry, current_app.config["STAGE_TIMEOUT"]):
        return None
    return next_stage.NextStage(entry, _stage_context(run, entry, executor), run_workspace(run.id), mirror,
                                run.commit_sha, run.project.clone_url, caches)


def _others_wait() -> bool:
    """Return whether jobs wait in the queue, as when every worker is busy.

    A held sandbox cannot start behind a stage that ends within milliseconds, so with
    busy workers chaining only made the worker wait for it: throughput of trivial runs
    fell from 3.9-4.3 to 3.1-3.6 runs/s. Busy workers take queued stages instead.
    """
    try:
        return run_queue().count > 0
    except redis.RedisError:
        return True


def _next_spare(run: Run, stage: Stage, caches: CacheStore) -> spare_workspace.SpareMaker | None:
    """Return the maker of a workspace for the run's next stage, to start while this one runs, when a stage still waits."""
    run_folder = run_workspace(run.id)
    mirror = _data_dir() / "mirrors" / f"{run.project_id}.git"
    if spare_workspace.exists(run_folder) or not (mirror / "HEAD").exists():
        return None
    waiting = db.session.scalar(select(func.count()).select_from(Stage).where(
        Stage.run_id == run.id, Stage.status == StageStatus.QUEUED, Stage.id != stage.id))
    if not waiting:
        return None
    project = run.project
    return spare_workspace.SpareMaker(run_folder, mirror, run.commit_sha, project.clone_url, pipeline_file(run),
                                      run.pipeline_override, caches)


def _run_ended(run_id: int) -> bool:
    """Return whether the run has ended, as the database has it now."""
    status = db.session.scalar(select(Run.status).where(Run.id == run_id))
    db.session.commit()
    return status in TERMINAL_RUN


def _remove_ended_run_folder(run_id: int) -> None:
    """Remove the run's folder on this machine once the run has ended: a spare workspace no stage took is left there."""
    db.session.expire_all()
    run = db.session.get(Run, run_id)
    if run is None or run.status in TERMINAL_RUN:
        remove_later(run_workspace(run_id))


def pipeline_file(run: Run) -> str:
    """Return the path of the pipeline file the run is planned from (the project's, for runs planned before it was kept)."""
    return run.pipeline_path or run.project.pipeline_path


def cache_scope(run: Run) -> str:
    """Return the cache folder name for a run: runs of pull requests from forks get their own.

    A fork's code could write anything into the dependency cache, which a run of the
    default branch with secrets would then execute. So fork runs neither read nor
    write the project's own caches, as GitHub Actions keeps fork caches apart too.
    """
    fork = bool((run.event_data or {}).get("pullRequest") and run.event_data["pullRequest"].get("fork"))
    return f"{run.project_id}-forks" if fork else str(run.project_id)


def _prepare_workspace(run: Run, stage: Stage, caches: CacheStore, workspace: Path, deno_dir: Path) -> tuple[str, str | None]:
    """Check the run's commit out, unpack the run's artifacts and the dependency cache; return (cache key, restored key)."""
    project = run.project
    taken, guessed_key = spare_workspace.take(run_workspace(run.id), workspace, deno_dir, run.commit_sha,
                                              run.pipeline_override)
    if not taken:
        # The commit is usually in the mirror already: prepare_run fetched it moments ago.
        if git_workspace.has_commit(_data_dir(), project.id, run.commit_sha):
            mirror = _data_dir() / "mirrors" / f"{project.id}.git"
        else:
            mirror = git_workspace.update_mirror(_data_dir(), project.id, project.clone_url, **mirror_options(run))
        guessed_key = spare_workspace.make_workspace(mirror, run.commit_sha, project.clone_url, pipeline_file(run),
                                                     run.pipeline_override, caches, workspace, deno_dir)
    artifact_store(run.id).restore_all(workspace)
    key = stage_cache_key(workspace, stage.options)
    restored = guessed_key if guessed_key == key else caches.restore(key, deno_dir)
    return key, restored


def _retry_database(action, *args):
    """Call `action`, trying again while the database is unreachable (a restart), for up to DATABASE_RETRY_SECONDS."""
    deadline = time.monotonic() + DATABASE_RETRY_SECONDS
    delay = 0.2
    while True:
        try:
            return action(*args)
        except DBAPIError as error:
            db.session.rollback()
            if not error.connection_invalidated and not isinstance(error, OperationalError) or time.monotonic() > deadline:
                raise
            log.warning("database unreachable during %s, retrying in %.1f s: %s", action.__name__, delay, error.orig)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


def _finish_deploy_stage(stage_id: int, run: Run, spec: dict, sink: LogSink) -> None:
    """Record the deploy stage's release and deployment, then end this job with the stage still running.

    From then on the deployment ends the stage (app/deployments/deploy_stages.py).
    The sink is closed before the deployment is recorded, so the lines the engine
    writes come after the stage's own in the log.
    """
    run_id = run.id
    try:
        request = deploy_stage.record_release(run, spec)
    except deploy_stage.DeployStageError as error:
        _end_deploy_stage(stage_id, sink, error.status, str(error))
        return
    except Exception as failure:  # noqa: BLE001  (any failure here must end the stage, not leave it running)
        log.exception("run %s stage %s: could not record the release", run_id, stage_id)
        _end_deploy_stage(stage_id, sink, StageStatus.ERROR, f"The platform failed to record the release: {failure}")
        return
    sink.write("system", f"Deploying release {request.release.name!r} to {request.environment.name!r}. "
                         "This stage holds no worker from here on: it stays running until the deployment ends, "
                         "and ends as the deployment does.")
    sink.close()
    try:
        deploy_stage.request_deployment(stage_id, run, spec, request)
    except Exception as failure:  # noqa: BLE001  (any failure here must end the stage, not leave it running)
        # TODO: a failure after the deployment was committed (Redis down while queuing it) leaves the
        # deployment queued with nothing driving it until another deployment of the environment ends.
        db.session.rollback()
        log.exception("run %s stage %s: could not record the deployment", run_id, stage_id)
        error = f"The platform failed to record the deployment: {failure}"
        service.system_log(run_id, stage_id, f"Stage {StageStatus.ERROR}: {error}")
        service.finish_stage(stage_id, StageStatus.ERROR, None, error)
        return
    log.info("run %s stage %s: waits for its deployment; the job ends", run_id, stage_id)


def _end_deploy_stage(stage_id: int, sink: LogSink, status: StageStatus, error: str) -> None:
    sink.write("system", f"Stage {status}: {error}")
    sink.close()
    _retry_database(service.finish_stage, stage_id, status, None, error)


def _collect_artifacts(run_id: int, stage_id: int, workspace: Path, outcome, sink: LogSink) -> None:
    """Store every artifact the stage published, or none: one invalid artifact fails the stage."""
    days = current_app.config["ARTIFACT_RETENTION_DAYS"]
    saved: list[tuple[str, Path]] = []
    notes: list[str] = []
    for artifact in outcome.artifacts:
        try:
            path, left_out = artifact_store(run_id).save(artifact["name"], workspace, artifact["paths"])
            saved.append((artifact["name"], path))
            notes += [left_out_link_note(artifact["name"], note) for note in left_out]
        except ArtifactError as error:
            for _, path in saved:
                path.unlink(missing_ok=True)
            outcome.status, outcome.error = StageStatus.FAILED, str(error)
            return
    for name, path in saved:
        db.session.execute(db.delete(Artifact).where(Artifact.run_id == run_id, Artifact.name == name))
        db.session.add(Artifact(run_id=run_id, stage_id=stage_id, name=name, path=str(path),
                                size=path.stat().st_size, expires_at=utcnow() + timedelta(days=days)))
    db.session.commit()
    # After the commit: a retry after a database outage would write them twice.
    for note in notes:
        sink.write("system", note)


def _redis_or_none() -> redis.Redis | None:
    try:
        return redis_connection()
    except redis.RedisError:
        return None


class _Watchdog:
    """Sends the stage's heartbeat and cancels its execution when the run is cancelled.

    It listens on the run's control channel for a prompt cancel, and also reads the
    run's status at every heartbeat, so a cancel is seen even while Redis is down.
    """

    def __init__(self, app: Flask, run_id: int, stage_id: int, attempt: int) -> None:
        self.app, self.run_id, self.stage_id, self.attempt = app, run_id, stage_id, attempt
        self._stopped = threading.Event()
        # Set once the stage's process has ended; the heartbeats go on until its end is recorded.
        self._ended = threading.Event()
        self._execution = None
        self._thread: threading.Thread | None = None

    def watch(self, execution) -> None:
        self._execution = execution
        self._thread = threading.Thread(target=self._loop, name=f"watchdog-{self.stage_id}", daemon=True)
        self._thread.start()

    def execution_ended(self) -> None:
        self._ended.set()

    def stop(self) -> None:
        # Not joined: the thread may sit in a 0.5 s read of the control channel, and
        # the stage's end must not wait for it. Its last heartbeat is harmless.
        self._stopped.set()

    def _loop(self) -> None:
        pubsub = self._subscribe()
        next_beat = 0.0

        while not self._stopped.is_set():
            if pubsub is not None and _cancel_heard(pubsub, timeout=0.5):
                self._execution.cancel()
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + HEARTBEAT_INTERVAL
                if self._beat_and_check_cancelled():
                    self._execution.cancel()
            if pubsub is None:
                self._stopped.wait(0.5)
        if pubsub is not None:
            try:
                pubsub.close()
            except redis.RedisError:
                pass

    def _subscribe(self):
        with self.app.app_context():
            return _cancel_subscription(redis_connection(), self.run_id)

    def _beat_and_check_cancelled(self) -> bool:
        """Send the heartbeat; return whether the execution is to stop.

        It stops when the run was cancelled, and when the stage no longer runs this
        attempt: the scheduler took the worker for lost and queued the stage again, so
        the attempt must not go on beside the new one.
        """
        try:
            with self.app.app_context():
                beating = db.session.execute(
                    update(Stage).where(Stage.id == self.stage_id, Stage.attempt == self.attempt,
                                        Stage.status == StageStatus.RUNNING)
                    .values(heartbeat_at=utcnow()).returning(Stage.run_id)
                ).scalar_one_or_none()
                run_status = db.session.scalar(db.select(Run.status).where(Run.id == self.run_id))
                db.session.commit()
                db.session.remove()
            if beating is None and run_status != RunStatus.CANCELLED and not self._ended.is_set():
                log.warning("run %s stage %s: attempt %s no longer runs; its execution is stopped",
                            self.run_id, self.stage_id, self.attempt)
            return beating is None or run_status == RunStatus.CANCELLED
        except Exception as error:  # noqa: BLE001  (a database outage must not kill the stage)
            log.warning("run %s stage %s: heartbeat failed: %s", self.run_id, self.stage_id, error)
            return False
