"""Calls into the Deno runner (`sdk/runner.ts`): plan a pipeline, type-check it, build a stage's command.

The protocol (command lines, JSON shapes, control events on file descriptor 3)
is written down in `sdk/README.md`.
"""

import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import deno

from app.pipelines.plan_check import located_plan_problems

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SDK_DIR = ROOT / "sdk"
RUNNER = SDK_DIR / "runner.ts"
DENO = Path(deno.find_deno_bin()).resolve()
PLAN_TIMEOUT = 60.0
CHECK_TIMEOUT = 300.0
# How long a type check may go on after the plan of the same file failed, before it is stopped: the
# plan's problem is reported either way, and a check stuck on the same import would add minutes.
CHECK_AFTER_FAILED_PLAN = 10.0
# How often a runner command started with a `stop` event looks at it.
STOP_CHECK_SECONDS = 0.2
# Every runner command ignores the repository's deno.json, so it cannot change how
# the runner or the pipeline resolve "deno-ci".
BASE_FLAGS = ("run", "--no-prompt", "--no-config")


@dataclass(frozen=True)
class Problem:
    """One error in a pipeline file, at a place in a file."""

    file: str
    line: int | None
    column: int | None
    message: str

    def __str__(self) -> str:
        place = ":".join(str(part) for part in (self.file, self.line, self.column) if part is not None)
        return f"{place}: {self.message}"


def relative_problems(problems: list[Problem], workspace: Path) -> list[Problem]:
    """Return `problems` with files inside `workspace` named relative to it, as the repository names them.

    The platform plans in a folder of its data directory. That path means nothing to the
    pipeline's authors, and it would show where the platform keeps its data.
    """
    root = str(workspace).rstrip("/") + "/"
    relative = []
    for problem in problems:
        file, message = problem.file, problem.message.replace(workspace.as_uri() + "/", "").replace(root, "")
        if file.startswith("file://"):
            file = file.removeprefix("file://")
        relative.append(Problem(file.removeprefix(root), problem.line, problem.column, message))
    return relative


class PipelineError(Exception):
    """The pipeline file could not be planned or type-checked; `problems` lists every error found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(problem) for problem in problems))
        self.problems = problems


def deno_env(deno_dir: Path | None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment for a Deno process the platform starts outside the sandbox."""
    env = {
        "PATH": f"{DENO.parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "DENO_NO_UPDATE_CHECK": "1",
        "DENO_TLS_CA_STORE": "mozilla,system",
        "NO_COLOR": "1",
    }
    if deno_dir is not None:
        env["DENO_DIR"] = str(deno_dir)
    env.update(extra or {})
    return env


def write_import_map(pipeline_file: Path, destination: Path) -> Path:
    """Write the import map that lets a pipeline import "deno-ci"; return its path.

    The map names the pipeline file itself as "deno-ci:pipeline", which is how the
    runner imports it without read permission. Paths are the same inside the sandbox.
    """
    document = {
        "imports": {
            "deno-ci": (SDK_DIR / "mod.ts").as_uri(),
            "deno-ci/templates": (SDK_DIR / "templates" / "mod.ts").as_uri(),
            "deno-ci:pipeline": pipeline_file.resolve().as_uri(),
        }
    }
    destination.parent.mkdir(parents=True, exist_ok=True)
    destination.write_text(json.dumps(document))
    return destination


def _last_json_line(output: str) -> dict | None:
    # The document is the last line: a pipeline writing to Deno.stdout directly may add others before it.
    for line in reversed(output.strip().splitlines()):
        try:
            document = json.loads(line)
        except ValueError:
            return None
        return document if isinstance(document, dict) else None
    return None


# Raw runner output quoted in an error is cut to this many characters: it ends up in the run's reason.
MAX_MESSAGE_CHARACTERS = 2000


# Deno's words when the event loop empties while a top-level await still waits.
UNSETTLED_AWAIT = "Top-level await promise never resolved"


def _problems_from(result: subprocess.CompletedProcess, fallback_file: str) -> list[Problem]:
    document = _last_json_line(result.stdout)
    if (not document or not document.get("errors")) and UNSETTLED_AWAIT in (result.stderr or ""):
        return [Problem(fallback_file, None, None, "The pipeline file awaits, at its top level, a promise that never "
                                                   "settles, so it never finished loading. Await only work that ends "
                                                   "there, or move the work into a stage function.")]
    if not document or not document.get("errors"):
        message = (result.stderr or result.stdout).strip() or f"the runner exited with code {result.returncode}"
        if len(message) > MAX_MESSAGE_CHARACTERS:
            message = f"{message[:MAX_MESSAGE_CHARACTERS]}... ({len(message) - MAX_MESSAGE_CHARACTERS} more characters)"
        return [Problem(fallback_file, None, None, message)]
    return [
        Problem(error.get("file") or fallback_file, error.get("line"), error.get("column"), error.get("message", ""))
        for error in document["errors"]
    ]


def _timeout_problem(file: str, timeout: float) -> Problem:
    return Problem(file, None, None, f"loading the pipeline did not finish within {timeout:.0f} s. Look for a remote "
                                     "import that does not answer, or a loop at the top level of the pipeline file "
                                     "or of a module it imports.")


def _run(command: list[str], workspace: Path, deno_dir: Path | None, timeout: float, file: str,
         executor=None, mounts: tuple[Path, ...] = (), max_memory_bytes: int | None = None,
         stop: threading.Event | None = None) -> subprocess.CompletedProcess:
    """Run a runner command on the host, or in `executor`'s sandbox when one is given.

    `max_memory_bytes` caps the sandbox's memory (None keeps `StageSpec`'s default); on
    the host the runner has no memory limit. Setting `stop` ends the command, which then
    raises PipelineError with no problems.
    """
    if executor is not None:
        return _run_sandboxed(executor, command, workspace, deno_dir, timeout, file, mounts, max_memory_bytes, stop)
    # No terminal input: a pipeline that reads it at its top level (prompt()) would wait for good.
    prefix = _kill_with_parent_prefix()
    env = deno_env(deno_dir, {KILL_WITH_PARENT_VARIABLE: json.dumps(prefix)} if prefix else None)
    process = subprocess.Popen(_killed_with_parent(command), cwd=workspace, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               errors="replace")
    with _HOST_RUNNERS_LOCK:
        _HOST_RUNNERS.add(process)
        if _HOST_RUNNERS_STOPPED.is_set():
            process.kill()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                remaining = max(0.0, deadline - time.monotonic())
                stdout, stderr = process.communicate(timeout=remaining if stop is None else min(STOP_CHECK_SECONDS, remaining))
                break
            except subprocess.TimeoutExpired as error:
                stopped = stop is not None and stop.is_set()
                if stopped or time.monotonic() >= deadline:
                    process.kill()
                    process.communicate()
                    raise PipelineError([] if stopped else [_timeout_problem(file, timeout)]) from error
    except BaseException:
        # Ctrl-C or SIGTERM in this process: the runner must not go on alone.
        process.kill()
        raise
    finally:
        with _HOST_RUNNERS_LOCK:
            _HOST_RUNNERS.discard(process)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


# Run by setpriv after it set the parent-death signal. A parent that died before that cannot
# send the signal, so the shell then ends instead of starting the command: $0 is the pid of
# the process that started setpriv, $PPID is the shell's parent now.
_PARENT_ALIVE_GUARD = 'if [ "$PPID" != "$0" ]; then exit 1; fi; exec "$@"'


# The runner's own children (`deno check`) are started with the command line in this variable,
# followed by the runner's pid and the child's command line, so that they die with the runner too.
KILL_WITH_PARENT_VARIABLE = "DENO_CI_KILL_WITH_PARENT"


@functools.cache
def _kill_with_parent_prefix() -> tuple[str, ...] | None:
    """Return the command line that starts a command so that the kernel kills it with its parent.

    The parent's pid and the command follow it. None when setpriv is not installed.
    """
    setpriv = shutil.which("setpriv")
    return None if setpriv is None else (setpriv, "--pdeathsig", "KILL", "--", "/bin/sh", "-c", _PARENT_ALIVE_GUARD)


def _killed_with_parent(command: list[str]) -> list[str]:
    """Return `command` started through util-linux's setpriv, so that the kernel kills it if this process dies.

    A pipeline that loops at its top level would otherwise keep Deno running after a
    `deno-ci run` that was killed: its timeout is this process's to enforce.
    """
    prefix = _kill_with_parent_prefix()
    return command if prefix is None else [*prefix, str(os.getpid()), *command]


# Runner processes started on the host (by `deno-ci run` and `validate`), which a Ctrl-C ends.
_HOST_RUNNERS: set[subprocess.Popen] = set()
_HOST_RUNNERS_LOCK = threading.RLock()
_HOST_RUNNERS_STOPPED = threading.Event()


def stop_host_runners() -> None:
    """Kill the runner processes this process started on the host, planning or type-checking, and any it starts later.

    Called when the user cancels.

    Deno may not end on Ctrl-C by itself: a pipeline busy at its top level (`while (true) {}`)
    kept it running until the planning timeout.
    """
    with _HOST_RUNNERS_LOCK:
        # One that is started later, or was just being registered, is killed at once.
        _HOST_RUNNERS_STOPPED.set()
        for process in _HOST_RUNNERS:
            process.kill()


# The plan of 256 stages with long options and environments stays well below this.
PLAN_MAX_OUTPUT_BYTES = 32 * 1024 * 1024


def _run_sandboxed(executor, command: list[str], workspace: Path, deno_dir: Path | None, timeout: float, file: str,
                   mounts: tuple[Path, ...], max_memory_bytes: int | None = None,
                   stop: threading.Event | None = None) -> subprocess.CompletedProcess:
    """Run a runner command in the stage sandbox: the pipeline's imports see only the checkout."""
    from jobs.executor import Exit, LogChunk, Mount, StageSpec

    sandbox_mounts = [Mount(DENO), Mount(SDK_DIR), *(Mount(path) for path in mounts)]
    if deno_dir is not None:
        deno_dir.mkdir(parents=True, exist_ok=True)
        sandbox_mounts.append(Mount(deno_dir, writable=True))
    limits = {} if max_memory_bytes is None else {"max_memory_bytes": max_memory_bytes}
    spec = StageSpec(argv=command, workspace=workspace, env=deno_env(deno_dir, {"HOME": "/tmp"}), network=True,
                     timeout=timeout, mounts=tuple(sandbox_mounts), max_output_bytes=PLAN_MAX_OUTPUT_BYTES,
                     max_line_bytes=PLAN_MAX_OUTPUT_BYTES, **limits)
    streams: dict[str, list[str]] = {"stdout": [], "stderr": [], "system": []}
    code = 1
    execution = executor.start(spec)
    ended = threading.Event()
    if stop is not None:
        def cancel_when_stopped() -> None:
            while not ended.is_set():
                if stop.wait(STOP_CHECK_SECONDS):
                    execution.cancel()
                    return

        threading.Thread(target=cancel_when_stopped, name="runner stop", daemon=True).start()
    with _SANDBOXED_RUNNERS_LOCK:
        _SANDBOXED_RUNNERS.add(execution)
    try:
        events = list(execution.events())
    finally:
        ended.set()
        with _SANDBOXED_RUNNERS_LOCK:
            _SANDBOXED_RUNNERS.discard(execution)
    for event in events:
        if isinstance(event, LogChunk):
            streams[event.stream].append(event.text)
        elif isinstance(event, Exit):
            if event.reason == "timeout":
                raise PipelineError([_timeout_problem(file, timeout)])
            if event.reason == "cancelled" and stop is not None and stop.is_set():
                raise PipelineError([])
            if event.reason == "out_of_memory":
                raise PipelineError([Problem(file, None, None, f"planning the pipeline failed: {event.message}")])
            if event.reason != "exited":
                raise PipelineError([Problem(file, None, None, f"the runner could not run in the sandbox: {event.message}")])
            code = event.code
    return subprocess.CompletedProcess(command, code, "\n".join(streams["stdout"]), "\n".join(streams["stderr"] + streams["system"]))


# Runner executions in a sandbox (a worker's planning and type check), which a cancel of the run ends.
_SANDBOXED_RUNNERS: set = set()
_SANDBOXED_RUNNERS_LOCK = threading.Lock()


def cancel_sandboxed_runners() -> None:
    """Cancel the sandboxed planning and type check that run in this process: their run was cancelled.

    A worker plans one run at a time, so these are that run's.
    """
    with _SANDBOXED_RUNNERS_LOCK:
        for execution in _SANDBOXED_RUNNERS:
            execution.cancel()


def plan(workspace: Path, pipeline_path: str, event: dict | None = None, deno_dir: Path | None = None,
         executor=None, max_memory_bytes: int | None = None) -> dict:
    """Return the runner's plan of the pipeline, with each stage selected or not for `event`.

    The pipeline is imported with no Deno permissions, and inside `executor`'s sandbox
    when one is given: Deno lets even a permission-less import read a host file named in
    the code (a JSON module), so untrusted repositories must be planned there. Raises
    PipelineError.
    """
    pipeline_file = workspace / pipeline_path
    if not pipeline_file.is_file():
        raise PipelineError([Problem(pipeline_path, None, None, f"pipeline file {pipeline_path!r} not found in the repository")])
    with tempfile.TemporaryDirectory(prefix="deno-ci-plan-") as scratch:
        import_map = write_import_map(pipeline_file, Path(scratch) / "import_map.json")
        command = [str(DENO), *BASE_FLAGS, "--allow-import", f"--import-map={import_map}"]
        arguments = [str(RUNNER), "plan", str(pipeline_file)]
        if event is not None:
            event_file = Path(scratch) / "event.json"
            event_file.write_text(json.dumps(event))
            command.append(f"--allow-read={event_file}")
            arguments += ["--event", str(event_file)]
        result = _run(command + arguments, workspace, deno_dir, PLAN_TIMEOUT, pipeline_path, executor, (Path(scratch),),
                      max_memory_bytes)
    document = _last_json_line(result.stdout) if result.returncode == 0 else None
    if document is None or "stages" not in document:
        raise PipelineError(_problems_from(result, pipeline_path))
    problems = located_plan_problems(document)
    if problems:
        raise PipelineError([_problem_at(stage, pipeline_path, message) for message, stage in problems])
    return document


def _problem_at(stage: object, fallback_file: str, message: str) -> Problem:
    """Place a problem the platform found in the plan at its stage's declaration, when the plan gives one."""
    place = stage if isinstance(stage, dict) else {}
    file, line, column = place.get("file"), place.get("line"), place.get("column")
    if not isinstance(file, str) or not _is_position(line):
        return Problem(fallback_file, None, None, message)
    return Problem(file, line, column if _is_position(column) else None, message)


def _is_position(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def type_check(workspace: Path, pipeline_path: str, deno_dir: Path | None = None, executor=None,
               max_memory_bytes: int | None = None, stop: threading.Event | None = None) -> list[Problem]:
    """Type-check the pipeline file against the SDK's types (in `executor`'s sandbox if given); return the problems.

    Setting `stop` ends the check early, with no problems.
    """
    pipeline_file = workspace / pipeline_path
    with tempfile.TemporaryDirectory(prefix="deno-ci-check-") as scratch:
        import_map = write_import_map(pipeline_file, Path(scratch) / "import_map.json")
        command = [str(DENO), *BASE_FLAGS, "--allow-read", "--allow-run", "--allow-env", f"--import-map={import_map}",
                   str(RUNNER), "check", str(pipeline_file), "--import-map", str(import_map)]
        try:
            result = _run(command, workspace, deno_dir, CHECK_TIMEOUT, pipeline_path, executor, (Path(scratch),),
                          max_memory_bytes, stop)
        except PipelineError as error:
            return error.problems
    return [] if result.returncode == 0 else _problems_from(result, pipeline_path)


def plan_and_check(workspace: Path, pipeline_path: str, event: dict | None, deno_dir: Path, executor=None,
                   source_key: str | None = None, max_memory_bytes: int | None = None,
                   still_source: Callable[[], bool] | None = None) -> dict:
    """Plan and type-check the pipeline at once (two processes); raise PipelineError with every problem.

    Keep `deno_dir` between runs of a project: with a warm cache the type check takes
    tens of milliseconds instead of more than a second. `source_key` names the exact
    files of the workspace (a commit's tree id); a key whose check passed before with
    this SDK and Deno is not checked again, since the result could only be the same.
    A workspace that may change meanwhile (a local directory) gives `still_source`, which
    returns whether the workspace still contains those files. A passed check is recorded
    only then.
    """
    from concurrent.futures import ThreadPoolExecutor

    passed = _passed_check_marker(deno_dir, source_key, pipeline_path) if source_key else None
    if passed is not None and passed.exists():
        return plan(workspace, pipeline_path, event, deno_dir, executor, max_memory_bytes)
    stop_check = threading.Event()
    with ThreadPoolExecutor(max_workers=1) as pool:
        checking = pool.submit(type_check, workspace, pipeline_path, deno_dir, executor, max_memory_bytes, stop_check)
        try:
            document = plan(workspace, pipeline_path, event, deno_dir, executor, max_memory_bytes)
        except PipelineError as error:
            try:
                checking.result(timeout=CHECK_AFTER_FAILED_PLAN)
            except TimeoutError:
                log.info("type check of %s stopped: its plan failed %g s ago", pipeline_path, CHECK_AFTER_FAILED_PLAN)
                stop_check.set()
            # The type check reports an import that failed to load again, at the same place.
            places = {(problem.file, problem.line, problem.column) for problem in error.problems}
            problems = error.problems + [problem for problem in checking.result()
                                         if (problem.file, problem.line, problem.column) not in places]
            raise PipelineError(problems) from None
        problems = checking.result()
    if problems:
        raise PipelineError(problems)
    if passed is not None and (still_source is None or still_source()):
        try:
            passed.parent.mkdir(parents=True, exist_ok=True)
            passed.touch()
        except OSError as error:
            # Then the next plan of the same files is only type-checked again.
            log.warning("cannot record the passed type check of %s in %s: %s", pipeline_path, passed.parent, error)
    return document


def _passed_check_marker(deno_dir: Path, source_key: str, pipeline_path: str) -> Path:
    # Beside the DENO_DIR, not in it: sandboxed processes may write there. The path counts
    # because a project may switch to another pipeline file of the same tree.
    path_id = hashlib.sha256(pipeline_path.encode()).hexdigest()[:12]
    return deno_dir.parent / f"{deno_dir.name}.checked" / f"{source_key}-{path_id}-{toolchain_id()}"


def toolchain_id() -> str:
    """Return a digest of the Deno binary and every SDK file, on which a type check and a plan depend.

    The binary counts by its path, size and modification time, read at every call, so an
    upgrade of Deno in place (`pip install -U deno`) changes the id of running workers too.
    """
    binary = DENO.stat()
    identity = f"{_sdk_digest()} {DENO} {binary.st_size} {binary.st_mtime_ns} {binary.st_ino}"
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


@functools.cache
def _sdk_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(SDK_DIR.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(SDK_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def exec_command(pipeline_file: Path, stage: dict, import_map: Path) -> list[str]:
    """Return the command that runs one stage of the plan; its working directory must be the workspace."""
    return [
        str(DENO), *BASE_FLAGS, "--no-check", *stage["denoFlags"], f"--import-map={import_map}",
        str(RUNNER), "exec", str(pipeline_file), "--stage", stage["name"],
    ]
