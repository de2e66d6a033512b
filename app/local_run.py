"""`deno-ci run`: run a repository's pipeline on this machine, in the same sandbox as the platform.

Each stage gets a fresh copy of the directory, as each stage on the platform gets a
fresh checkout, so a pipeline that passes here does not lean on files an earlier
stage left behind; artifacts carry files between stages in both places.
"""

import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from app.cli.terminal import printable
from app.status import RunStatus, StageStatus
from app.pipelines import graph, runner
from app.runs.events import make_event
from config import Config
from jobs.artifacts import ArtifactError, ArtifactStore
from jobs.cache import CacheStore, cache_key
from jobs.executor import get_executor
from jobs.stage_execution import StageContext, StageOutcome, execute_stage

log = logging.getLogger(__name__)

IGNORED_IN_COPY = shutil.ignore_patterns(".deno-ci")


@dataclass
class StageReport:
    name: str
    status: str
    seconds: float = 0.0
    error: str | None = None
    attempts: int = 0


def _git(directory: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def copy_working_tree(source: Path, destination: Path) -> None:
    """Copy the files of `source` a stage needs: in a git checkout, tracked and untracked-but-not-ignored files.

    `.git` stays behind, because copying its many small files would cost more than the
    stage itself; the platform's checkouts do include it.
    """
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=source, capture_output=True)
    if listing.returncode != 0:
        shutil.copytree(source, destination, symlinks=True, ignore=IGNORED_IN_COPY)
        return
    destination.mkdir(parents=True)
    for name in listing.stdout.decode().split("\0"):
        if not name or name.startswith(".deno-ci/"):
            continue
        origin, target = source / name, destination / name
        if not origin.exists() and not origin.is_symlink():
            continue  # deleted in the working tree but still in the index
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(origin, target, follow_symlinks=False)


def clean_tree_id(directory: Path) -> str | None:
    """Return the tree id of HEAD when the directory contains exactly that tree (nothing changed or untracked), else None.

    Ignored files are not looked at: a pipeline that imports one is checked against the
    version that was there when its tree first passed.
    """
    if _git(directory, "status", "--porcelain", "--untracked-files=normal") != "":
        return None
    return _git(directory, "rev-parse", "HEAD^{tree}") or None


def local_event(directory: Path, kind: str, branch: str | None, tag: str | None) -> dict:
    """Describe the directory's current state as an event of `kind`."""
    branch = branch if branch is not None else (_git(directory, "rev-parse", "--abbrev-ref", "HEAD") or None)
    if branch == "HEAD":
        branch = None
    changed = set(_git(directory, "diff-tree", "--root", "--no-commit-id", "--name-only", "-r", "HEAD").split())
    changed |= set(_git(directory, "diff", "--name-only", "HEAD").split())
    return make_event(
        kind,
        branch=None if tag else branch,
        tag=tag,
        commit=_git(directory, "rev-parse", "HEAD") or None,
        author=_git(directory, "log", "-1", "--format=%an <%ae>") or None,
        message=_git(directory, "log", "-1", "--format=%B") or None,
        changed_files=sorted(changed),
    )


class LocalRun:
    """One local run of a directory's pipeline, printing every log line as `[stage] text`."""

    def __init__(self, directory: Path, pipeline_path: str, event: dict, executor_name: str, data_dir: Path,
                 out=sys.stdout) -> None:
        self.directory = directory.resolve()
        self.pipeline_path = pipeline_path
        self.event = event
        self.executor = get_executor(executor_name)
        self.settings = Config()
        self.out = out
        self.scratch = Path(tempfile.mkdtemp(prefix="deno-ci-run-"))
        local_id = "local-" + hashlib.sha256(str(self.directory).encode()).hexdigest()[:16]
        self.caches = CacheStore(data_dir, local_id)
        # Kept between runs: Deno's type-check cache makes the next check fast.
        self.plan_deno_dir = data_dir / "plan-caches" / local_id
        self.artifacts = ArtifactStore(self.scratch / "artifacts")
        self._preparer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="prepare")
        self._prepared: dict[str, Future] = {}
        self._print_lock = threading.Lock()
        self._executions: dict[str, object] = {}
        self._cancelled = threading.Event()

    def emit(self, stage: str, text: str) -> None:
        with self._print_lock:
            self.out.write(f"[{printable(stage)}] {printable(text)}\n")
            self.out.flush()

    def plan(self) -> dict:
        """Plan and type-check the pipeline; raise PipelineError with every problem found."""
        return runner.plan_and_check(self.directory, self.pipeline_path, self.event, self.plan_deno_dir,
                                     source_key=clean_tree_id(self.directory))

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
        # Workspaces of first attempts are copied while earlier stages run.
        self._prepared = {name: self._preparer.submit(self._prepare, stages[name], 1) for name in needs}
        with ThreadPoolExecutor(max_workers=max(1, len(needs))) as pool:
            while True:
                ready, skip = graph.next_moves(needs, statuses)
                for name in skip:
                    statuses[name] = reports[name].status = StageStatus.SKIPPED
                    self.emit(name, "skipped: a stage it needs did not pass")
                for name in ready:
                    if self._cancelled.is_set():
                        statuses[name] = reports[name].status = StageStatus.CANCELLED
                        continue
                    statuses[name] = StageStatus.RUNNING
                    running[pool.submit(self._run_stage, stages[name], reports[name])] = name
                if not running:
                    if skip or ready:
                        continue
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    name = running.pop(future)
                    statuses[name] = reports[name].status = future.result().status
        ended = [statuses[name] for name in needs]
        return graph.run_outcome(ended), [reports[stage["name"]] for stage in plan["stages"]]

    def _run_stage(self, stage: dict, report: StageReport) -> StageOutcome:
        started = time.monotonic()
        retries = int(stage["options"].get("retries") or 0)
        context = StageContext(run_id="local", pipeline_path=self.pipeline_path, event=self.event, executor=self.executor,
                               default_timeout=self.settings.STAGE_TIMEOUT, max_output_bytes=self.settings.STAGE_MAX_OUTPUT,
                               tmp_bytes=self.settings.STAGE_TMP_BYTES, max_memory_bytes=self.settings.STAGE_MEMORY_BYTES)
        name = stage["name"]
        outcome = StageOutcome(StageStatus.ERROR, error="never started")
        for attempt in range(1, retries + 2):
            report.attempts = attempt
            prepared = self._prepared.pop(name, None) if attempt == 1 else None
            workspace, deno_dir, key = prepared.result() if prepared else self._prepare(stage, attempt)
            self.artifacts.restore_all(workspace)
            outcome = execute_stage(stage, context, workspace, deno_dir,
                                    on_log=lambda stream, text: self.emit(name, text),
                                    on_start=lambda execution: self._executions.__setitem__(name, execution))
            if outcome.status == StageStatus.SUCCESS:
                self._collect(name, outcome, workspace)
                self.caches.save(key, deno_dir)
            if outcome.status not in (StageStatus.FAILED, StageStatus.ERROR) or self._cancelled.is_set():
                break
            if attempt <= retries:
                self.emit(name, f"attempt {attempt} failed ({outcome.error}); retrying")
        report.seconds = time.monotonic() - started
        report.error = outcome.error
        if outcome.error and outcome.status != StageStatus.SUCCESS:
            self.emit(name, f"{outcome.status}: {outcome.error}")
        return outcome

    def _prepare(self, stage: dict, attempt: int) -> tuple[Path, Path, str]:
        """Copy the directory and restore the dependency cache for one attempt; return (workspace, DENO_DIR, cache key)."""
        workspace = self.scratch / "workspaces" / f"{stage['index']}-{attempt}"
        copy_working_tree(self.directory, workspace)
        deno_dir = self.scratch / "deno-dirs" / f"{stage['index']}-{attempt}"
        key = cache_key(workspace, (stage["options"].get("cache") or {}).get("key") or [])
        self.caches.restore(key, deno_dir)
        return workspace, deno_dir, key

    def _collect(self, name: str, outcome: StageOutcome, workspace: Path) -> None:
        for artifact in outcome.artifacts:
            try:
                self.artifacts.save(artifact["name"], workspace, artifact["paths"])
            except ArtifactError as error:
                outcome.status, outcome.error = StageStatus.FAILED, str(error)

    def cancel(self) -> None:
        """Cancel every running stage (Ctrl-C)."""
        self._cancelled.set()
        for execution in list(self._executions.values()):
            execution.cancel()

    def cleanup(self) -> None:
        self._preparer.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.scratch, ignore_errors=True)


def format_summary(status: RunStatus, reports: list[StageReport]) -> str:
    """Return the table printed at the end of a local run."""
    width = max([len("stage"), *(len(report.name) for report in reports)])
    lines = [f"{'stage':<{width}}  {'status':<16}  duration", f"{'-' * width}  {'-' * 16}  --------"]
    for report in reports:
        duration = f"{report.seconds:7.2f} s" if report.seconds else "      -"
        lines.append(f"{report.name:<{width}}  {report.status:<16}  {duration}")
    lines.append(f"run {status}")
    return "\n".join(lines)
