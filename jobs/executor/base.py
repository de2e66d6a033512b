"""The executor contract: what a stage is given, what it streams back, and how it ends.

An executor starts one stage process from a `StageSpec` and returns an `Execution`.
The execution streams the process's output line by line as `LogChunk`s, turns each
JSON line the process writes on file descriptor 3 into a `ControlEvent`, and ends
with exactly one `Exit`. The control channel is a separate pipe, so nothing a
pipeline prints on stdout or stderr can pass for a control event.

Three executors implement the contract: "bubblewrap" (the default, a sandbox made
of Linux namespaces), "docker" (a container on a Docker engine) and "unsandboxed"
(a plain child process, for local development only).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

START_FD = 8
"""File descriptor on which a held stage's process waits for one byte (see `StageSpec.held`)."""

MAX_LINE_BYTES = 64 * 1024
"""Maximum length in bytes of a `LogChunk` line. A longer line is split into several chunks."""


class ExecutorError(RuntimeError):
    """A stage could not be started; the message names the problem and the fix."""


class ExecutorUnavailableError(ExecutorError):
    """An executor's tools or engine are missing on this machine."""


class ExitReason(StrEnum):
    """Reason a stage process ended."""

    EXITED = "exited"  # the process ended by itself; `Exit.code` is its status
    TIMEOUT = "timeout"  # the wall-clock timeout passed and the platform killed the process tree
    CANCELLED = "cancelled"  # `Execution.cancel()` killed the process tree
    ERROR = "error"  # the sandbox could not be set up or the platform failed while running it
    OUT_OF_MEMORY = "out_of_memory"  # the kernel's OOM killer stopped a process of the stage at `max_memory_bytes`


@dataclass(frozen=True)
class Mount:
    """A host path made visible at the same path inside the sandbox."""

    path: Path
    writable: bool = False


@dataclass(frozen=True)
class StageSpec:
    """Everything an executor needs to run one stage process.

    `env` is the whole environment of the process. Executors add only `PATH` and
    `HOME` when `env` does not set them (see each executor's module). Output past
    `max_output_bytes` (stdout and stderr together) is discarded after one "system"
    notice, and the process keeps running. Processes that are still running when the
    main process has exited are killed (see `_process.LEFTOVER_GRACE_SECONDS`).
    """

    argv: list[str]
    workspace: Path
    env: dict[str, str]
    network: bool = True
    timeout: float = 3600.0
    max_output_bytes: int = 50 * 1024 * 1024
    max_processes: int = 512
    mounts: tuple[Mount, ...] = ()
    # Size of the sandbox's own /tmp, which lives in memory (bubblewrap's tmpfs).
    tmp_bytes: int = 1024 * 1024 * 1024
    # Longer output lines are split; planning raises it, since the plan is one line of JSON.
    max_line_bytes: int = MAX_LINE_BYTES
    # Memory of all the stage's processes together, including its in-memory /tmp; swap is not allowed.
    max_memory_bytes: int = 4 * 1024 * 1024 * 1024
    # Held: the sandbox is made and the command started with the read end of a pipe as START_FD,
    # but the timeout counts only from `Execution.release()`, which writes one byte to that pipe.
    # Only executors whose `can_hold` is true accept it.
    held: bool = False
    # Gated: the sandbox is made at once, but the command starts only at `Execution.open_gate()`,
    # so the workspace and the mounted folders (which must exist) may be filled meanwhile. Only
    # executors whose `can_gate` is true honour it; others start the command at once.
    gated: bool = False


@dataclass(frozen=True)
class LogChunk:
    """One line of output, decoded as UTF-8 with replacement characters and without its newline.

    `stream` is "stdout", "stderr" or "system" (a notice from the platform itself).
    """

    stream: str
    text: str


@dataclass(frozen=True)
class ControlEvent:
    """One JSON object that the process wrote as a line on file descriptor 3."""

    data: dict


@dataclass(frozen=True)
class Exit:
    """The end of an execution; always the last event.

    `code` is the exit status that the executor reports, or None when the platform
    killed the process (timeout, cancel) or never started it. A command killed by a
    signal inside the bubblewrap sandbox reports 128 plus the signal number.
    """

    code: int | None
    reason: str
    message: str = ""


Event = LogChunk | ControlEvent | Exit


class Execution(Protocol):
    """A running stage process.

    `events()` yields every event in arrival order, `Exit` last, and then stops. It
    has one consumer; a slow consumer slows the process down (the pipes fill up)
    instead of growing memory. `cancel()` may be called from any thread, any number
    of times, and kills the whole process tree within 2 seconds. `release()` lets a
    held stage go on (see `StageSpec.held`) and does nothing for one that is not held.
    `open_gate()` lets a gated stage's command start (see `StageSpec.gated`) and does
    nothing for one that is not gated.
    """

    def events(self) -> Iterator[Event]: ...

    def cancel(self) -> None: ...

    def release(self) -> None: ...

    def open_gate(self) -> None: ...


class Executor(Protocol):
    """Something that starts stage processes.

    `start()` raises `ExecutorError` when the spec is invalid or the process cannot
    be started at all. Failures after the start arrive as an `Exit` with reason
    "error" and a message.
    """

    name: str
    can_hold: bool

    def start(self, spec: StageSpec) -> Execution: ...


EXECUTOR_NAMES = ("bubblewrap", "docker", "unsandboxed")


def get_executor(name: str = "bubblewrap") -> Executor:
    """Create the executor called `name`.

    Raises `ExecutorUnavailableError` when its tools or engine are missing, and
    `ValueError` for an unknown name.
    """
    if name == "bubblewrap":
        from .bubblewrap import BubblewrapExecutor

        return BubblewrapExecutor()
    if name == "docker":
        from .docker import DockerExecutor

        return DockerExecutor()
    if name == "unsandboxed":
        from .unsandboxed import UnsandboxedExecutor

        return UnsandboxedExecutor()
    raise ValueError(f"Unknown executor {name!r}: expected one of {', '.join(EXECUTOR_NAMES)}")
