"""Checks of a `StageSpec` that every executor runs before starting anything."""

from __future__ import annotations

from pathlib import Path

from .base import ExecutorError, StageSpec

FORBIDDEN_WRITABLE = tuple(Path(path) for path in ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/root", "/sbin", "/sys", "/usr", "/var"))
"""Host folders that must never become a stage's workspace or writable mount."""


def _check_path(kind: str, path: Path, writable: bool) -> None:
    if not path.is_absolute():
        raise ExecutorError(f"Cannot start the stage: the {kind} {str(path)!r} is not an absolute path")
    if not path.exists():
        raise ExecutorError(f"Cannot start the stage: the {kind} {str(path)!r} does not exist")
    if writable and path.resolve() in FORBIDDEN_WRITABLE:
        raise ExecutorError(f"Cannot start the stage: the {kind} {str(path)!r} is a system folder and cannot be writable")


def check_spec(spec: StageSpec) -> None:
    """Raise `ExecutorError` naming the first field of `spec` that no executor can run."""
    if not spec.argv:
        raise ExecutorError("Cannot start the stage: argv is empty, expected the command to run")
    _check_path("workspace", spec.workspace, writable=True)
    if not spec.workspace.is_dir():
        raise ExecutorError(f"Cannot start the stage: the workspace {str(spec.workspace)!r} is not a folder")
    for mount in spec.mounts:
        _check_path("mount", mount.path, mount.writable)
    if spec.timeout <= 0:
        raise ExecutorError(f"Cannot start the stage: timeout is {spec.timeout}, expected a positive number of seconds")
    if spec.max_processes < 1:
        raise ExecutorError(f"Cannot start the stage: max_processes is {spec.max_processes}, expected at least 1")
    if spec.max_memory_bytes < 1024 * 1024:
        raise ExecutorError(f"Cannot start the stage: max_memory_bytes is {spec.max_memory_bytes}, expected at least 1 MiB")
    if spec.max_output_bytes < 0:
        raise ExecutorError(f"Cannot start the stage: max_output_bytes is {spec.max_output_bytes}, expected 0 or more")
    bad_keys = [key for key in spec.env if not key or "=" in key or "\0" in key]
    if bad_keys or any("\0" in value for value in spec.env.values()):
        raise ExecutorError(f"Cannot start the stage: invalid environment variable names {bad_keys!r} or a NUL byte in a value")
