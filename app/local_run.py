"""`deno-ci run`: run a repository's pipeline on this machine, in the same sandbox as the platform.

Each stage gets a fresh copy of the directory, as each stage on the platform gets a
fresh checkout, so a pipeline that passes here does not lean on files an earlier
stage left behind; artifacts carry files between stages in both places.
"""

import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from app import waiting
from app.cli.terminal import printable
from app.status import RETRIED_STAGE, RunStatus, StageStatus
from app.local_scratch import remove_stale_temp_folders
from app.local_tree import local_scope
from app.pipelines import graph
from config import Config
from jobs.artifacts import ArtifactError, ArtifactStore, left_out_link_note
from jobs.cache import CacheStore, has_own_cache_key, restore_paths, stage_cache_key, stage_cache_paths
from jobs.executor import Execution, ExecutorError, get_executor
from jobs.stage_execution import (PREPARED_DURING_PLANNING, StageContext, StageOutcome, can_gate, can_hold, drop_held,
                                  execute_stage, hold_stage, import_map_path, named_secrets, secrets_subject)

log = logging.getLogger(__name__)

IGNORED_IN_COPY = shutil.ignore_patterns(".deno-ci")
# Stages whose needs are running get their sandbox made ahead (see `LocalRun._hold_next`); at most this many at once.
MAX_HELD = 2
# How long a printed line may wait in the output buffer before it is flushed.
FLUSH_SECONDS = 0.05


@dataclass
class StageReport:
    name: str
    status: str
    seconds: float = 0.0
    error: str | None = None
    attempts: int = 0


def working_tree_files(source: Path) -> list[str] | None:
    """Return the files of `source` a stage needs, in a git checkout: tracked and untracked-but-not-ignored ones.

    Return None when `source` is not a git checkout, and then every file counts.
    """
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=source, capture_output=True)
    return listing.stdout.decode().split("\0") if listing.returncode == 0 else None


def copy_working_tree(source: Path, destination: Path, files: list[str] | None, data_dir: Path | None = None) -> None:
    """Copy `files` of `source` (from `working_tree_files`), or all of it but `data_dir` when `files` is None.

    `.git` stays behind, because copying its many small files would cost more than the
    stage itself; the platform's checkouts do include it.
    """
    if files is None:
        shutil.copytree(source, destination, symlinks=True, ignore=_left_out_of_copy(data_dir), dirs_exist_ok=True)
        return
    # It may exist, empty: a sandbox made ahead mounts it before the copy (see `LocalRun._hold_gated`).
    destination.mkdir(parents=True, exist_ok=True)
    for name in files:
        if not name or name.startswith(".deno-ci/"):
            continue
        origin, target = source / name, destination / name
        if not origin.is_symlink() and not origin.is_file():
            # Deleted in the working tree but still in the index, or no longer a file: a folder
            # in its place has its files listed on their own, and a named pipe cannot be copied.
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, target, follow_symlinks=False)


def _left_out_of_copy(data_dir: Path | None):
    """Return a copytree filter that leaves out `.deno-ci` folders and the data folder, where it lies in the copy."""
    def left_out(folder: str, names: list[str]) -> set[str]:
        names_left_out = set(IGNORED_IN_COPY(folder, names))
        if data_dir is not None and Path(folder).resolve() == data_dir.parent and data_dir.name in names:
            names_left_out.add(data_dir.name)
        return names_left_out

    return left_out


class LocalRun:
    """One local run of a directory's pipeline, printing every log line as `[stage] text`."""

    def __init__(self, directory: Path, pipeline_path: str, executor_name: str, data_dir: Path,
                 out=sys.stdout) -> None:
        """Set a run up and start copying the directory; `begin` gives it the event before it executes."""
        self.directory = directory.resolve()
        self.pipeline_path = pipeline_path
        self.event: dict = {}
        self.executor = get_executor(executor_name)
        self.settings = Config()
        self.out = out
        self.scratch = Path(tempfile.mkdtemp(prefix="deno-ci-run-"))
        self.data_dir = data_dir.resolve()
        self.caches = CacheStore(data_dir, local_scope(self.directory))
        self.artifacts = ArtifactStore(self.scratch / "artifacts")
        self._files_lock = threading.Lock()
        self._files: list[str] | None = None
        self._files_read = False
        self._preparer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="prepare")
        self._prepared: dict[str, Future] = {}
        self._held: dict[str, Future] = {}
        # Copied while the pipeline is planned, for the first stage that adds no cache key files.
        self._spare: Future | None = self._preparer.submit(self._prepare_folder, "spare", {})
        if warm_up := getattr(self.executor, "warm_up", None):
            self._preparer.submit(warm_up)
        self._preparer.submit(remove_stale_temp_folders)
        self._guessed: dict | None = None
        self._guess: Future | None = None
        self._print_lock = threading.Lock()
        self._pending: list[str] = []
        self._output_closed = out is None
        self._executions: dict[str, object] = {}
        self._cancelled = threading.Event()

    def begin(self, event: dict, previous_plan: dict | None) -> None:
        """Take the run's event, and prepare the stage `previous_plan` started with while this run is planned.

        `previous_plan` comes from an earlier run of the directory; `execute` drops the
        prepared stage unless the new plan starts with the same stage.
        """
        self.event = event
        self._guessed = graph.first_stage(previous_plan) if previous_plan and can_hold(self.executor) else None
        if self._guessed is not None and not has_own_cache_key(self._guessed["options"]):
            if self._can_gate():
                self._guess = self._hold_gated(self._guessed, self._spare)
            else:
                self._guess = self._preparer.submit(self._hold, self._guessed, self._spare)
            self._spare = None

    def emit(self, stage: str, text: str) -> None:
        line = f"[{printable(stage)}] {printable(text)}\n"
        with self._print_lock:
            # Written shortly after, in one call, not per line: a stage printing a million lines
            # would otherwise spend most of its time in write calls (stdout may be unbuffered,
            # as with PYTHONUNBUFFERED), and run into its timeout.
            self._pending.append(line)
            if len(self._pending) == 1:
                flusher = threading.Timer(FLUSH_SECONDS, self._flush)
                flusher.daemon = True
                flusher.start()

    def _flush(self) -> None:
        with self._print_lock:
            text, self._pending = "".join(self._pending), []
            if text and not self._output_closed:
                try:
                    self.out.write(text)
                    self.out.flush()
                except (BrokenPipeError, ValueError):
                    # The reader went away (`| head`). The run goes on, and its exit status still reports how it ended.
                    self._output_closed = True

    def execute(self, plan: dict) -> tuple[RunStatus, list[StageReport]]:
        """Run the selected stages, in parallel where the graph allows; return the run's status and a report per stage."""
        stages = {stage["name"]: stage for stage in plan["stages"]}
        needs = graph.effective_needs(plan["stages"])
        statuses = {name: StageStatus.QUEUED for name in needs}
        reports = {name: StageReport(name, StageStatus.QUEUED) for name in needs}
        for stage in plan["stages"]:
            if not stage.get("selected", True):
                reports[stage["name"]] = StageReport(stage["name"], "not selected", error=stage.get("skipReason"))
        running: dict[Future, str] = {}
        self._take_guess(plan, needs)
        # Workspaces of first attempts are copied while earlier stages run.
        self._prepared = {}
        for name in needs:
            if name in self._held:
                continue
            if self._spare is not None and not has_own_cache_key(stages[name]["options"]):
                self._prepared[name], self._spare = self._spare, None
            else:
                self._prepared[name] = self._preparer.submit(self._prepare, stages[name], 1)
        with ThreadPoolExecutor(max_workers=max(1, len(needs))) as pool:
            while True:
                ready, skip = graph.next_moves(needs, statuses)
                for name in skip:
                    self._drop_held(name)
                    if self._cancelled.is_set():
                        statuses[name] = reports[name].status = StageStatus.CANCELLED
                        continue
                    statuses[name] = reports[name].status = StageStatus.SKIPPED
                    self.emit(name, "skipped: a stage it needs did not pass")
                for name in ready:
                    if self._cancelled.is_set():
                        self._drop_held(name)
                        statuses[name] = reports[name].status = StageStatus.CANCELLED
                        continue
                    statuses[name] = StageStatus.RUNNING
                    # Taken from the held ones here, not in the stage's thread: the count of held
                    # stages decides below whether the stages after it are held too.
                    sandbox = self._held.pop(name, None)
                    running[pool.submit(self._run_stage, stages[name], reports[name], sandbox)] = name
                if not self._cancelled.is_set():
                    self._hold_next(stages, needs, statuses)
                if not running:
                    if skip or ready:
                        continue
                    break
                done = waiting.first_done(running)
                for future in done:
                    name = running.pop(future)
                    statuses[name] = reports[name].status = future.result().status
        ended = [statuses[name] for name in needs]
        return graph.run_outcome(ended), [reports[stage["name"]] for stage in plan["stages"]]

    def _run_stage(self, stage: dict, report: StageReport, sandbox: Future | None) -> StageOutcome:
        """Run every attempt of `stage`; the first takes the sandbox made ahead from `sandbox`, when there is one."""
        started = time.monotonic()
        retries = int(stage["options"].get("retries") or 0)
        context = self._stage_context()
        name = stage["name"]
        cache_paths = stage_cache_paths(stage["options"])
        outcome = StageOutcome(StageStatus.ERROR, error="never started")
        if note := _missing_secrets_note(stage):
            self.emit(name, note)
        for attempt in range(1, retries + 2):
            report.attempts = attempt
            held_execution = None
            if attempt == 1 and sandbox is not None:
                held_execution, workspace, deno_dir, key = sandbox.result()
            else:
                prepared = self._prepared.pop(name, None) if attempt == 1 else None
                workspace, deno_dir, key = prepared.result() if prepared else self._prepare(stage, attempt)
            self.artifacts.restore_all(workspace)
            restore_paths(deno_dir, workspace, cache_paths)
            if self._cancelled.is_set():
                # Cancelled while its folders were copied, which can take seconds: none of its code ran.
                if held_execution is not None:
                    drop_held(held_execution)
                self._preparer.submit(_remove_attempt_folders, workspace, deno_dir)
                outcome = StageOutcome(StageStatus.CANCELLED, error="cancelled")
                break
            outcome = execute_stage(stage, context, workspace, deno_dir,
                                    on_log=lambda stream, text: self.emit(name, text),
                                    on_start=lambda execution: self._started(name, execution),
                                    held_execution=held_execution)
            if outcome.status == StageStatus.SUCCESS:
                self._collect(name, outcome, workspace)
                self.caches.save(key, deno_dir, workspace, cache_paths)
            # Deleted while later stages run, so that the end of the run has little left to delete.
            self._preparer.submit(_remove_attempt_folders, workspace, deno_dir)
            if outcome.status not in RETRIED_STAGE or self._cancelled.is_set():
                break
            if attempt <= retries:
                self.emit(name, f"attempt {attempt} failed ({outcome.error}); retrying")
        report.seconds = time.monotonic() - started
        report.error = outcome.error
        if outcome.error and outcome.status != StageStatus.SUCCESS:
            # A reason the runner printed above is not repeated.
            plain = outcome.error == outcome.status or outcome.printed
            self.emit(name, outcome.status if plain else f"{outcome.status}: {outcome.error}")
        return outcome

    def _started(self, name: str, execution: Execution) -> None:
        self._executions[name] = execution
        # A cancel that came after the check before the start found no execution to stop.
        if self._cancelled.is_set():
            execution.cancel()

    def _stage_context(self) -> StageContext:
        return StageContext(run_id="local", pipeline_path=self.pipeline_path, event=self.event, executor=self.executor,
                            default_timeout=self.settings.STAGE_TIMEOUT, max_output_bytes=self.settings.STAGE_MAX_OUTPUT,
                            tmp_bytes=self.settings.STAGE_TMP_BYTES, max_memory_bytes=self.settings.STAGE_MEMORY_BYTES,
                            max_processes=self.settings.STAGE_MAX_PROCESSES)

    def _hold_next(self, stages: dict[str, dict], needs: dict[str, list[str]], statuses: dict[str, str]) -> None:
        """Make the sandbox of each stage that will be ready when the running and held stages pass, so it starts at once.

        The sandbox and Deno start while the stages it needs run; the pipeline's code
        runs only when the stage does (see `hold_stage`).
        """
        if not can_hold(self.executor):
            return
        # A held stage counts as running: the stage after it is held too, so a chain of
        # stages does not wait for each sandbox in turn.
        expected = {**statuses, **dict.fromkeys(self._held, StageStatus.RUNNING)}
        for name, waits_for in needs.items():
            if len(self._held) >= MAX_HELD:
                return
            if statuses[name] != StageStatus.QUEUED or name in self._held:
                continue
            if graph.ready_when_running_pass(waits_for, expected):
                self._held[name] = self._preparer.submit(self._hold, stages[name])
                expected[name] = StageStatus.RUNNING

    def _take_guess(self, plan: dict, needs: dict[str, list[str]]) -> None:
        """Keep the stage prepared during planning when the plan starts it unchanged; drop it otherwise."""
        if self._guess is None or not graph.starts_unchanged(plan, self._guessed) or self._guessed["name"] not in needs:
            self._drop_guess()
            return
        guess, self._guess = self._guess, None
        # Without a sandbox (it failed to start), the stage still takes the prepared workspace.
        self._held[self._guessed["name"]] = guess
        if guess.result()[0] is not None:
            self.emit(self._guessed["name"], PREPARED_DURING_PLANNING)

    def _drop_guess(self) -> None:
        """End the stage prepared during planning if no run took it (the plan failed)."""
        guess, self._guess = self._guess, None
        if guess is not None and (execution := guess.result()[0]) is not None:
            drop_held(execution)

    def _hold(self, stage: dict, prepared: Future | None = None) -> tuple[Execution | None, Path, Path, str]:
        """Make a held sandbox for `stage` in its prepared workspace (or `prepared`); return it with the folders."""
        workspace, deno_dir, key = (prepared or self._prepared.pop(stage["name"])).result()
        try:
            execution = hold_stage(stage, self._stage_context(), workspace, deno_dir)
        except ExecutorError as error:
            log.info("local run: stage %s could not be prepared ahead, so it starts when it runs: %s", stage["name"], error)
            execution = None
        return execution, workspace, deno_dir, key

    def _can_gate(self) -> bool:
        """Return whether the first stage's sandbox can be made before its folders are filled.

        Not when the pipeline file is a link: the stage's import map names the file the
        link leads to, which is known only once the link is copied.
        """
        pipeline = self.directory / self.pipeline_path
        return can_gate(self.executor) and pipeline.resolve() == pipeline

    def _hold_gated(self, stage: dict, spare: Future) -> Future:
        """Make the held sandbox of `stage` now, in the spare folders that `spare` fills; its runner starts once they are.

        The sandbox's start (namespaces, network, limits) then overlaps the copy of the
        directory and of the dependency cache instead of following them. Return a future
        of what `_hold` returns.
        """
        workspace, deno_dir = self._folders("spare")
        workspace.mkdir(parents=True, exist_ok=True)
        try:
            execution = hold_stage(stage, self._stage_context(), workspace, deno_dir, gated=True)
        except ExecutorError as error:
            log.info("local run: stage %s could not be prepared ahead, so it starts when it runs: %s", stage["name"], error)
            execution = None
        held_stage: Future = Future()

        def open_gate(filled: Future) -> None:
            try:
                folders = filled.result()
            except BaseException as error:  # noqa: BLE001  (handed on to whoever takes the held stage)
                if execution is not None:
                    drop_held(execution)
                held_stage.set_exception(error)
                return
            if execution is not None:
                execution.open_gate()
            held_stage.set_result((execution, *folders))

        spare.add_done_callback(open_gate)
        return held_stage

    def _drop_held(self, name: str) -> None:
        future = self._held.pop(name, None)
        if future is not None and (execution := future.result()[0]) is not None:
            drop_held(execution)

    def _prepare(self, stage: dict, attempt: int) -> tuple[Path, Path, str]:
        """Copy the directory and restore the dependency cache for one attempt; return (workspace, DENO_DIR, cache key)."""
        return self._prepare_folder(f"{stage['index']}-{attempt}", stage["options"])

    def _folders(self, label: str) -> tuple[Path, Path]:
        """Return the workspace and DENO_DIR of the attempt or spare folder `label`."""
        return self.scratch / "workspaces" / label, self.scratch / "deno-dirs" / label

    def _prepare_folder(self, label: str, options: dict) -> tuple[Path, Path, str]:
        workspace, deno_dir = self._folders(label)
        copy_working_tree(self.directory, workspace, self._listed_files(), self.data_dir)
        key = stage_cache_key(workspace, options)
        self.caches.restore(key, deno_dir)
        return workspace, deno_dir, key

    def _listed_files(self) -> list[str] | None:
        """Return the directory's files for a stage's copy, listed once per run: each listing started git.

        In a folder that its repository ignores, git lists no file, not even the pipeline
        file. Then the whole directory is copied, as outside a repository.
        """
        with self._files_lock:
            if not self._files_read:
                files = working_tree_files(self.directory)
                self._files = files if files is None or self.pipeline_path in files else None
                self._files_read = True
            return self._files

    def _collect(self, name: str, outcome: StageOutcome, workspace: Path) -> None:
        for artifact in outcome.artifacts:
            try:
                _, left_out = self.artifacts.save(artifact["name"], workspace, artifact["paths"])
            except ArtifactError as error:
                outcome.status, outcome.error = StageStatus.FAILED, str(error)
                continue
            for note in left_out:
                self.emit(name, left_out_link_note(artifact["name"], note))

    def cancel(self) -> None:
        """Cancel every running stage (Ctrl-C)."""
        self._cancelled.set()
        for execution in list(self._executions.values()):
            execution.cancel()

    def cleanup(self) -> None:
        self._flush()
        self._drop_guess()
        for name in list(self._held):
            self._drop_held(name)
        self._preparer.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.scratch, ignore_errors=True)


def _missing_secrets_note(stage: dict) -> str | None:
    """Return the note that the secrets a stage names are unset here, or None when it names none."""
    named = named_secrets(stage)
    if not named:
        return None
    return (f"{secrets_subject(named)} not set: deno-ci run has no secrets store, so the stage runs without. On the platform "
            "a project admin sets secrets on the project's settings page.")


def _remove_attempt_folders(workspace: Path, deno_dir: Path) -> None:
    """Delete an ended attempt's workspace, DENO_DIR and the import map beside it."""
    for folder in (workspace, deno_dir):
        shutil.rmtree(folder, ignore_errors=True)
    import_map_path(deno_dir).unlink(missing_ok=True)


def format_summary(status: RunStatus, reports: list[StageReport]) -> str:
    """Return the table printed at the end of a local run."""
    width = max([len("stage"), *(len(report.name) for report in reports)])
    lines = [f"{'stage':<{width}}  {'status':<16}  duration", f"{'-' * width}  {'-' * 16}  --------"]
    for report in reports:
        duration = f"{report.seconds:7.2f} s" if report.seconds else "      -"
        lines.append(f"{report.name:<{width}}  {report.status:<16}  {duration}")
    lines.append(f"run {status}")
    return "\n".join(lines)
