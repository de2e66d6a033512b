"""Run one stage of a plan in the sandbox and turn what it reports into an outcome.

Both `deno-ci run` on a laptop and the RQ workers call `execute_stage`, so a
pipeline behaves the same in both places.
"""

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.status import StageStatus
from app.pipelines.runner import DENO, SDK_DIR, exec_command, write_import_map
from jobs.executor import START_FD, ControlEvent, Execution, Executor, ExecutorError, Exit, LogChunk, Mount, StageSpec

log = logging.getLogger(__name__)

SANDBOX_PATH = f"{DENO.parent}:/usr/local/bin:/usr/bin:/bin"
# The "system" line of a stage whose sandbox (or process, unsandboxed) was made while the run was planned,
# or while a taken plan was recorded.
PREPARED_DURING_PLANNING = "Stage prepared ahead, while the run was set up"
# A stage may publish at most this many artifacts; further events are ignored.
MAX_ARTIFACTS = 100


@dataclass
class StageContext:
    """What every stage of one run shares."""

    run_id: str
    pipeline_path: str
    event: dict
    executor: Executor
    default_timeout: float = 3600.0
    max_output_bytes: int = 50 * 1024 * 1024
    secrets: dict[str, str] = field(default_factory=dict)
    tmp_bytes: int = 1024 * 1024 * 1024
    max_memory_bytes: int = 4 * 1024 * 1024 * 1024
    max_processes: int = 512


@dataclass
class StageOutcome:
    status: StageStatus
    exit_code: int | None = None
    error: str | None = None
    # Artifacts the stage published, as {"name": ..., "paths": [...]}, to collect when it passed.
    artifacts: list[dict] = field(default_factory=list)
    # Whether `error` is the runner's own report, which the runner also printed to the stage's stderr.
    printed: bool = False


def named_secrets(stage: dict) -> list[str]:
    """Return the names of the secrets a stage of the plan lists in its options."""
    return [name for name in (stage.get("options") or {}).get("secrets") or [] if isinstance(name, str)]


def secrets_subject(names: list[str]) -> str:
    """Return "Secret A is" or "Secrets A, B are", to start a sentence about `names`."""
    return f"Secret {names[0]} is" if len(names) == 1 else f"Secrets {', '.join(names)} are"


def stage_environment(stage: dict, context: StageContext, workspace: Path, deno_dir: Path) -> dict[str, str]:
    """Return the whole environment of a stage's process: nothing of the host's leaks in."""
    env = {
        "PATH": SANDBOX_PATH,
        "HOME": "/tmp",
        "CI": "true",
        "DENO_CI": "true",
        "DENO_DIR": str(deno_dir),
        "DENO_NO_UPDATE_CHECK": "1",
        # Registries may present certificates only the system store trusts (a proxy, a private CA).
        "DENO_TLS_CA_STORE": "mozilla,system",
        "DENO_CI_RUN_ID": str(context.run_id),
        "DENO_CI_STAGE": stage["name"],
        "DENO_CI_WORKSPACE": str(workspace),
        # Unescaped, so the limits in app/runs/events.py keep it under Linux's 128 KiB per variable.
        "DENO_CI_EVENT": json.dumps(context.event, ensure_ascii=False),
        "DENO_CI_CONTROL_FD": "3",
    }
    # The variables the runner and the cache depend on are set last: a plan that names them
    # (the SDK rejects that) cannot change them. PATH, HOME and the rest a stage may change.
    own = {key: value for key, value in env.items() if key.startswith("DENO_CI_") or key in ("CI", "DENO_DIR")}
    env.update({key: str(value) for key, value in (stage["options"].get("env") or {}).items()})
    for name in stage["options"].get("secrets") or []:
        if name in context.secrets:
            env[name] = context.secrets[name]
    env.update(own)
    return env


def stage_spec(stage: dict, context: StageContext, workspace: Path, deno_dir: Path, held: bool = False,
               gated: bool = False) -> StageSpec:
    """Build the sandbox specification of one stage; a held one waits for `Execution.release()`, a gated one for `open_gate()`.

    The import map lives beside the stage's DENO_DIR, outside the workspace, and is
    mounted read-only, so the stage cannot point "deno-ci" somewhere else.
    """
    options = stage["options"]
    permissions = options.get("permissions") or {}
    import_map = write_import_map(workspace / context.pipeline_path, import_map_path(deno_dir))
    env = stage_environment(stage, context, workspace, deno_dir)
    if held:
        env["DENO_CI_START_FD"] = str(START_FD)
    return StageSpec(
        argv=exec_command(workspace / context.pipeline_path, stage, import_map),
        workspace=workspace,
        env=env,
        held=held,
        gated=gated,
        network=permissions.get("net", True) is not False,
        timeout=float(options.get("timeout") or context.default_timeout),
        max_output_bytes=context.max_output_bytes,
        tmp_bytes=context.tmp_bytes,
        max_memory_bytes=context.max_memory_bytes,
        max_processes=context.max_processes,
        mounts=(Mount(DENO), Mount(SDK_DIR), Mount(import_map), Mount(deno_dir, writable=True)),
    )


def import_map_path(deno_dir: Path) -> Path:
    """Return where a stage's import map is written: beside its DENO_DIR, outside the workspace."""
    return deno_dir.parent / f"{deno_dir.name}.import_map.json"


def can_hold(executor: Executor) -> bool:
    """Return whether `executor` can prepare a stage ahead and hold it until it may run."""
    return bool(getattr(executor, "can_hold", False))


def can_gate(executor: Executor) -> bool:
    """Return whether `executor` can make a sandbox before its folders are filled (see `StageSpec.gated`)."""
    return bool(getattr(executor, "can_gate", False))


def hold_stage(stage: dict, context: StageContext, workspace: Path, deno_dir: Path, gated: bool = False) -> Execution:
    """Make the stage's sandbox and load the runner now, to run the stage later with `execute_stage(held_execution=...)`.

    Nothing of the pipeline runs before the release, so a stage held and then dropped
    (the stage before it failed) has had no effect. Raise `ExecutorError` when the
    sandbox cannot be started. With `gated`, the workspace and `deno_dir` may still be
    empty: the runner starts once `open_gate()` says they are filled.
    """
    deno_dir.mkdir(parents=True, exist_ok=True)
    return context.executor.start(stage_spec(stage, context, workspace, deno_dir, held=True, gated=gated))


def drop_held(execution: Execution) -> None:
    """End a held stage that will not run."""
    execution.cancel()
    for _ in execution.events():
        pass


def execute_stage(
    stage: dict,
    context: StageContext,
    workspace: Path,
    deno_dir: Path,
    on_log: Callable[[str, str], None],
    on_start: Callable[[Execution], None] | None = None,
    held_execution: Execution | None = None,
    on_running: Callable[[], None] | None = None,
) -> StageOutcome:
    """Run the stage once in the sandbox, passing each output line to `on_log(stream, text)`.

    `on_start` gets the execution as soon as it exists; `on_running` is called once the
    runner reports that the stage's function began, so work that can wait does not slow
    the sandbox's start.

    `held_execution` is the stage's execution from `hold_stage`, made for this workspace;
    it is released here instead of starting a new sandbox.
    """
    if held_execution is not None:
        execution = held_execution
        execution.release()
    else:
        deno_dir.mkdir(parents=True, exist_ok=True)
        try:
            execution = context.executor.start(stage_spec(stage, context, workspace, deno_dir))
        except ExecutorError as error:
            return StageOutcome(StageStatus.ERROR, error=f"the sandbox could not start the stage: {error}")
    if on_start is not None:
        on_start(execution)
    finished: dict | None = None
    artifacts: list[dict] = []
    exit_event = Exit(code=None, reason="error", message="the sandbox ended without reporting an exit")
    for event in execution.events():
        if isinstance(event, LogChunk):
            on_log(event.stream, event.text)
        elif isinstance(event, ControlEvent):
            kind = event.data.get("type")
            if kind == "stage_started" and on_running is not None:
                on_running()
                on_running = None
            elif kind == "stage_finished":
                finished = event.data
            elif kind == "artifact" and len(artifacts) < MAX_ARTIFACTS:
                artifacts.append({"name": str(event.data.get("name")), "paths": [str(path) for path in event.data.get("paths") or []]})
        elif isinstance(event, Exit):
            exit_event = event
    outcome = _outcome(stage, finished, exit_event)
    outcome.artifacts = artifacts if outcome.status == StageStatus.SUCCESS else []
    return outcome


def _outcome(stage: dict, finished: dict | None, exit_event: Exit) -> StageOutcome:
    """Decide how the attempt ended.

    Control events are claims the stage's own code could forge, so the exit code
    decides success or failure, and a `stage_finished` event only adds its reason
    when it agrees with the exit code.
    """
    if exit_event.reason == "cancelled":
        return StageOutcome(StageStatus.CANCELLED, exit_event.code, "cancelled")
    if exit_event.reason == "error":
        return StageOutcome(StageStatus.ERROR, exit_event.code, exit_event.message or "the sandbox failed")
    if exit_event.reason == "timeout":
        return _failed(stage, exit_event.code, exit_event.message or "the stage timed out")
    if exit_event.reason == "out_of_memory":
        return _failed(stage, exit_event.code, exit_event.message)
    if exit_event.code == 0:
        return StageOutcome(StageStatus.SUCCESS, 0)
    if finished and finished.get("status") == "failed":
        exit_code = finished.get("exitCode") if isinstance(finished.get("exitCode"), int) else exit_event.code
        outcome = _failed(stage, exit_code, str(finished.get("error") or "the stage failed")[:2000])
        outcome.printed = bool(finished.get("error"))
        return outcome
    return _failed(stage, exit_event.code, f"the stage's process exited with code {exit_event.code} before reporting a result")


def _failed(stage: dict, exit_code: int | None, error: str) -> StageOutcome:
    status = StageStatus.ALLOWED_FAILURE if stage["options"].get("allowFailure") else StageStatus.FAILED
    return StageOutcome(status, exit_code, error)
