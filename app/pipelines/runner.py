"""Calls into the Deno runner (`sdk/runner.ts`): plan a pipeline, type-check it, build a stage's command.

The protocol (command lines, JSON shapes, control events on file descriptor 3)
is written down in `sdk/README.md`.
"""

import json
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import deno

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
SDK_DIR = ROOT / "sdk"
RUNNER = SDK_DIR / "runner.ts"
IMPORT_MAP = SDK_DIR / "import_map.json"
DENO = Path(deno.find_deno_bin()).resolve()
PLAN_TIMEOUT = 60.0
CHECK_TIMEOUT = 300.0


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


def _problems_from(output: str, fallback_file: str) -> list[Problem]:
    try:
        document = json.loads(output)
        errors = document["errors"]
    except (ValueError, KeyError, TypeError):
        return [Problem(fallback_file, None, None, output.strip() or "the runner printed nothing")]
    return [
        Problem(error.get("file") or fallback_file, error.get("line"), error.get("column"), error.get("message", ""))
        for error in errors
    ]


def _run_runner(args: list[str], workspace: Path, deno_dir: Path | None, timeout: float) -> subprocess.CompletedProcess:
    command = [str(DENO), "run", "--no-prompt", f"--import-map={IMPORT_MAP}", *args]
    try:
        return subprocess.run(command, cwd=workspace, env=deno_env(deno_dir), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise PipelineError([Problem(args[-1], None, None, f"the runner did not finish within {timeout:.0f} s")]) from error


def plan(workspace: Path, pipeline_path: str, event: dict | None = None, deno_dir: Path | None = None) -> dict:
    """Return the runner's plan of the pipeline, with each stage selected or not for `event`.

    The pipeline is imported with no Deno permissions. Raises PipelineError.
    """
    if not (workspace / pipeline_path).is_file():
        raise PipelineError([Problem(pipeline_path, None, None, f"pipeline file {pipeline_path!r} not found in the repository")])
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="event-") as event_file:
        args = [str(RUNNER), "plan", pipeline_path]
        if event is not None:
            json.dump(event, event_file)
            event_file.flush()
            args += ["--event", event_file.name]
        result = _run_runner(args, workspace, deno_dir, PLAN_TIMEOUT)
    if result.returncode != 0:
        raise PipelineError(_problems_from(result.stdout or result.stderr, pipeline_path))
    return json.loads(result.stdout)


def type_check(workspace: Path, pipeline_path: str, deno_dir: Path | None = None) -> list[Problem]:
    """Type-check the pipeline file against the SDK's types; return the problems found."""
    command = [str(DENO), "run", "--no-prompt", "--allow-read", "--allow-run", "--allow-env",
               f"--import-map={IMPORT_MAP}", str(RUNNER), "check", pipeline_path]
    try:
        result = subprocess.run(command, cwd=workspace, env=deno_env(deno_dir), capture_output=True, text=True, timeout=CHECK_TIMEOUT)
    except subprocess.TimeoutExpired:
        return [Problem(pipeline_path, None, None, f"type check did not finish within {CHECK_TIMEOUT:.0f} s")]
    if result.returncode == 0:
        return []
    return _problems_from(result.stdout or result.stderr, pipeline_path)


def exec_command(pipeline_path: str, stage: dict) -> list[str]:
    """Return the command that runs one stage of the plan inside the sandbox."""
    return [
        str(DENO), "run", "--no-prompt", "--no-check", *stage["denoFlags"],
        f"--import-map={IMPORT_MAP}", str(RUNNER), "exec", pipeline_path, "--stage", stage["name"],
    ]
