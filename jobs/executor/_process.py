"""The machinery shared by executors that run a local child process on pipes.

A `PipeExecution` owns one pump thread. The thread launches the process, reads
stdout, stderr and the control pipe with a selector and puts events on a bounded
queue that `events()` drains. It kills the process when it stops for any reason.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import selectors
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ._streams import ControlDecoder, OutputDecoder
from .base import Event, Exit, ExitReason, LogChunk, StageSpec

log = logging.getLogger(__name__)

CONTROL_FD = 3
"""File descriptor on which the stage process writes control events as JSON lines."""

QUEUE_EVENTS = 256
"""Events buffered for a slow consumer before the pump stops reading the pipes."""

LEFTOVER_GRACE_SECONDS = 2.0
"""How long the pipes may stay open after the main process exited before the processes left are killed.

Background processes (a server started with `&`) inherit stdout and stderr, so the
pipes can stay open long after the stage ended. The grace period lets a process that
is exiting anyway flush its output, and keeps the wait for the stage's end short.
"""

DRAIN_SECONDS = 2.0
"""How long the pipes may stay open after the leftover processes were killed before they are closed unread."""

_READ_BYTES = 64 * 1024


def spawn(path: str, argv: list[str], env: dict[str, str], fds: dict[int, int], new_session: bool = True) -> int:
    """Start `argv` with `fds` (child descriptor -> parent descriptor) and return its pid.

    Every other descriptor is closed in the child: Python opens its own with
    close-on-exec, and those this process inherited are marked so first.
    """
    _close_inherited_on_exec()
    # Moving each source above every target first means no dup2 can overwrite a
    # source that a later dup2 still needs.
    high = {target: fcntl.fcntl(source, fcntl.F_DUPFD_CLOEXEC, 32) for target, source in fds.items()}
    actions = [(os.POSIX_SPAWN_DUP2, source, target) for target, source in high.items()]
    try:
        return os.posix_spawn(
            path,
            argv,
            env,
            file_actions=actions,
            setsid=new_session,
            setsigmask=(),
            # Python ignores SIGPIPE and SIGXFSZ, but a child expects the default actions.
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
    finally:
        for descriptor in high.values():
            os.close(descriptor)


def _close_inherited_on_exec() -> None:
    """Mark the descriptors this process inherited close-on-exec, so that no stage gets them.

    A shell, a terminal tool or a service manager may start `deno-ci` with descriptors
    beyond 0-2 open, a pipe back to it among them. posix_spawn closes only descriptors
    marked close-on-exec. Descriptors that became inheritable after the last call are
    marked at the next one, so this runs before every start.
    """
    for name in os.listdir("/proc/self/fd"):
        descriptor = int(name)
        try:
            if descriptor > 2 and os.get_inheritable(descriptor):
                os.set_inheritable(descriptor, False)
        except OSError:
            # The descriptor of the listing itself, closed by now.
            continue


def close_quietly(*descriptors: int | None) -> None:
    """Close every descriptor that is not None, ignoring ones already closed."""
    for descriptor in descriptors:
        if descriptor is not None:
            try:
                os.close(descriptor)
            except OSError:
                pass


def _send_start(write: int) -> None:
    try:
        os.write(write, b"1")
    except OSError:  # the stage already ended, and its Exit event gives the reason
        pass
    finally:
        os.close(write)


def exit_code_from_status(status: int) -> int:
    """Convert a wait status to a shell-style exit code (128 + signal for a killed process)."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def stage_label(spec: StageSpec) -> str:
    """Describe a stage for log lines by the run and stage ids found in its environment."""
    run = spec.env.get("DENO_CI_RUN", "-")
    stage = spec.env.get("DENO_CI_STAGE", "-")
    return f"run {run} stage {stage}"


@dataclass
class LaunchedProcess:
    """A started process, with the handles the pump reads and calls.

    `pid` is our own child, reaped by the pump. `kill` kills the whole process tree
    and must be safe to call at any time from any thread. `release` frees helpers
    (network, cgroup, temporary folders) once the process is reaped. `stop_leftovers`
    kills the processes still running after `pid` exited and returns how many there
    were. `oom_kills` returns how many processes the OOM killer killed at the memory
    limit, and `failed_forks` how many forks failed at the process limit; both are
    called before `release`. `setup_error` is set when the process was
    started but the sandbox around it failed.
    """

    pid: int
    stdout: int
    stderr: int
    control: int
    kill: Callable[[], None]
    release: Callable[[], None] = lambda: None
    stop_leftovers: Callable[[], int] = lambda: 0
    oom_kills: Callable[[], int] = lambda: 0
    failed_forks: Callable[[], int] = lambda: 0
    setup_error: str = ""
    notices: list[str] = field(default_factory=list)
    # The write end of a held stage's start pipe; the execution owns and closes it.
    start: int | None = None


class QueuedExecution:
    """An `Execution` whose pump thread puts events on a bounded queue.

    A subclass implements `_run()`, which runs on the pump thread, calls
    `_set_killer()` as soon as there is something to kill, emits output events and
    returns the `Exit`.
    """

    def __init__(self, spec: StageSpec, executor_name: str) -> None:
        self.spec = spec
        self.label = stage_label(spec)
        self._executor_name = executor_name
        self._queue: queue.Queue[Event] = queue.Queue(QUEUE_EVENTS)
        self._lock = threading.Lock()
        self._killer: Callable[[], None] | None = None
        self._stop_reason: ExitReason | None = None
        self._abandoned = False
        self._finished = False
        self._started_at = time.monotonic()
        self._released = not spec.held
        self._start_write: int | None = None
        self._gate = threading.Event()
        if not spec.gated:
            self._gate.set()
        self._timer = threading.Timer(spec.timeout, self._stop, args=(ExitReason.TIMEOUT,))
        self._timer.daemon = True
        self._thread = threading.Thread(target=self._pump, name=f"stage-pump {self.label}", daemon=True)

    def begin(self, first_events: tuple[Event, ...] = ()) -> QueuedExecution:
        """Start the pump thread and the timeout, after queueing `first_events` ahead of any output."""
        for event in first_events:
            self._queue.put(event)
        if self._released:
            self._timer.start()
        self._thread.start()
        return self

    def release(self) -> None:
        """Let a held stage's command go on; its timeout counts from now. Does nothing if not held."""
        with self._lock:
            if self._released:
                return
            self._released = True
            write, self._start_write = self._start_write, None
        self._started_at = time.monotonic()
        self._timer.start()
        if write is not None:
            _send_start(write)

    def open_gate(self) -> None:
        """Let a gated stage's command start (see `StageSpec.gated`). Does nothing if not gated."""
        self._gate.set()

    def wait_for_gate(self) -> bool:
        """Wait until the gate is open or the stage is stopped; return whether the command may start."""
        self._gate.wait()
        return self._stop_reason_now() is None

    def _set_start_pipe(self, write: int | None) -> None:
        """Keep a held stage's start pipe until `release()`, or use it at once if that came first."""
        if write is None:
            return
        with self._lock:
            if not self._released:
                self._start_write = write
                return
        _send_start(write)

    def _drop_start_pipe(self) -> None:
        # Closing it unreleased makes the runner exit without importing the pipeline.
        with self._lock:
            write, self._start_write = self._start_write, None
        close_quietly(write)

    def events(self) -> Iterator[Event]:
        """Yield events in arrival order until `Exit`. Closing the generator early cancels the stage."""
        try:
            while True:
                event = self._queue.get()
                yield event
                if isinstance(event, Exit):
                    self._finished = True
                    return
        finally:
            if not self._finished:
                self._abandoned = True
                self.cancel()

    def cancel(self) -> None:
        """Kill the whole process tree, so the execution ends with reason "cancelled"."""
        self._stop(ExitReason.CANCELLED)

    def _stop(self, reason: ExitReason) -> None:
        with self._lock:
            if self._stop_reason is None:
                self._stop_reason = reason
            kill = self._killer
        # A launch waiting at the gate goes on, finds the stop and starts nothing.
        self._gate.set()
        log.info("killing %s (%s)", self.label, reason.value)
        if kill is not None:
            kill()

    def _set_killer(self, kill: Callable[[], None]) -> None:
        """Register how to kill the stage, and kill it at once if a cancel or timeout came first."""
        with self._lock:
            self._killer = kill
            stopped = self._stop_reason is not None
        if stopped:
            kill()

    def _stop_reason_now(self) -> ExitReason | None:
        with self._lock:
            return self._stop_reason

    def _stopped_exit(self) -> Exit | None:
        """Return the Exit for a cancel or timeout, or None if the platform did not stop the stage."""
        reason = self._stop_reason_now()
        if reason is ExitReason.TIMEOUT:
            return Exit(None, reason, f"The stage timed out after {self.spec.timeout:g} s, so all its processes were killed")
        if reason is ExitReason.CANCELLED:
            return Exit(None, reason, "The stage was cancelled, so all its processes were killed")
        return None

    def _emit(self, event: Event) -> None:
        while not self._abandoned:
            try:
                self._queue.put(event, timeout=0.2)
                return
            except queue.Full:
                continue

    def _pump(self) -> None:
        log.info("starting %s with the %s executor: %s", self.label, self._executor_name, self.spec.argv[:1])
        try:
            exit_event = self._run()
        except Exception as error:  # The thread must always deliver an Exit.
            log.exception("%s failed in the %s executor", self.label, self._executor_name)
            exit_event = Exit(None, ExitReason.ERROR, f"The {self._executor_name} executor failed: {error}")
        finally:
            self._timer.cancel()
        elapsed = time.monotonic() - self._started_at
        log.info("%s ended after %.3f s: %s, code %s", self.label, elapsed, exit_event.reason, exit_event.code)
        self._emit(exit_event)

    def _emit_all(self, events: list[Event]) -> None:
        for event in events:
            self._emit(event)

    def _run(self) -> Exit:
        raise NotImplementedError


class PipeExecution(QueuedExecution):
    """An `Execution` of a local process whose output arrives on pipes.

    `launch` runs on the pump thread and returns the `LaunchedProcess`, or raises
    `OSError` when nothing could be started.
    """

    def __init__(self, spec: StageSpec, launch: Callable[[], LaunchedProcess], executor_name: str) -> None:
        super().__init__(spec, executor_name)
        self._launch = launch

    def _run(self) -> Exit:
        try:
            process = self._launch()
        except OSError as error:
            return Exit(None, ExitReason.ERROR, f"Cannot start the stage process: {error}")
        self._set_killer(process.kill)
        self._set_start_pipe(process.start)
        for notice in process.notices:
            self._emit(LogChunk("system", notice))

        reaped = False
        try:
            leftovers = self._read_until_exit(process)
            _, status = os.waitpid(process.pid, 0)
            reaped = True
            if leftovers is None and self._stop_reason_now() is None:
                # The pipes closed before the main process exited, but processes that
                # redirected or closed them may still run.
                leftovers = process.stop_leftovers()
            oom_kills = process.oom_kills()
            failed_forks = process.failed_forks()
        finally:
            if not reaped:
                # An error while reading: the stage must not outlive its execution.
                process.kill()
                try:
                    os.waitpid(process.pid, 0)
                except ChildProcessError:
                    pass
            self._drop_start_pipe()
            process.release()
        if leftovers and self._stop_reason_now() is None:
            self._emit(LogChunk("system", _leftover_notice(leftovers)))
        if failed_forks:
            self._emit(LogChunk("system", (
                f"The stage reached its limit of {self.spec.max_processes} processes and threads, so {failed_forks} "
                f"{'attempt' if failed_forks == 1 else 'attempts'} to start one failed. Start fewer processes, or "
                "raise DENO_CI_STAGE_MAX_PROCESSES.")))
        return self._exit_event(process, status, oom_kills)

    def _read_until_exit(self, process: LaunchedProcess) -> int | None:
        """Emit the output until the pipes close.

        Return how many processes were left after the main process exited, or None when
        the pipes closed while the main process still ran.
        """
        output = OutputDecoder(self.spec.max_output_bytes, self.spec.max_line_bytes)
        control = ControlDecoder()
        streams = {process.stdout: "stdout", process.stderr: "stderr", process.control: "control"}
        pidfd = os.pidfd_open(process.pid)
        selector = selectors.DefaultSelector()
        for descriptor in (*streams, pidfd):
            selector.register(descriptor, selectors.EVENT_READ)
        grace_deadline = drain_deadline = None
        leftovers = None

        try:
            while streams and (drain_deadline is None or time.monotonic() < drain_deadline):
                if grace_deadline is not None and time.monotonic() >= grace_deadline:
                    leftovers = process.stop_leftovers()
                    grace_deadline = None
                    drain_deadline = time.monotonic() + DRAIN_SECONDS
                for key, _ in selector.select(timeout=0.2):
                    if key.fd == pidfd:
                        selector.unregister(pidfd)
                        grace_deadline = time.monotonic() + LEFTOVER_GRACE_SECONDS
                        continue
                    data = os.read(key.fd, _READ_BYTES)
                    name = streams[key.fd]
                    if not data:
                        selector.unregister(key.fd)
                        del streams[key.fd]
                    elif name == "control":
                        self._emit_all(control.feed(data))
                    else:
                        self._emit_all(output.feed(name, data))
            if grace_deadline is not None:
                # The pipes closed in time, but a process that closed or redirected them may still run.
                leftovers = process.stop_leftovers()
            self._emit_all(output.finish())
            self._emit_all(control.finish())
        finally:
            selector.close()
            close_quietly(pidfd, process.stdout, process.stderr, process.control)
        return leftovers

    def _exit_event(self, process: LaunchedProcess, status: int, oom_kills: int) -> Exit:
        stopped = self._stopped_exit()
        if stopped is not None:
            return stopped
        code = exit_code_from_status(status)
        if process.setup_error:
            return Exit(code, ExitReason.ERROR, process.setup_error)
        if oom_kills and code != 0:
            memory_mib = self.spec.max_memory_bytes // (1024 * 1024)
            return Exit(code, ExitReason.OUT_OF_MEMORY, (
                f"The stage used more than {memory_mib} MiB of memory and was stopped. "
                "Raise DENO_CI_STAGE_MEMORY_BYTES or use less memory"
            ))
        return Exit(code, ExitReason.EXITED)


def _leftover_notice(count: int) -> str:
    if count == 1:
        return "1 background process left by the stage was stopped when the stage's main process exited"
    return f"{count} background processes left by the stage were stopped when the stage's main process exited"
