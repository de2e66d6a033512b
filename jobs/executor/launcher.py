"""bwrap processes started ahead of their stage, already inside the stage's cgroups.

Moving a process into a cgroup (a write to `cgroup.procs`) waits for an RCU grace
period unless another move happened just before. That took 5 to 20 ms on the
machines measured here (Linux 6.18, cgroup v1), and the stage cannot start
meanwhile. So each process keeps a few launchers ready: bwrap started with `--args`,
which makes it read its options from a pipe before it does anything else, in stage
cgroups of its own that have no limits yet. A stage takes one, sets the limits and
writes its options. Only then does bwrap build the sandbox, so every process in it
is born inside the cgroups.

A launcher whose options never come ends when its pipe closes (this process
exited), because bwrap then finds no options and exits with an error.
"""

from __future__ import annotations

import atexit
import logging
import os
import select
import signal
import threading
from dataclasses import dataclass

from ._process import close_quietly, spawn
from .cgroups import StageCgroup

log = logging.getLogger(__name__)

# Launchers kept ready per bwrap program: `deno-ci run` starts up to three sandboxes
# within a few tens of milliseconds, and a new launcher is ready about 15 ms after the
# last one was taken.
READY_LAUNCHERS = 2
# How long closing waits for a launcher being made (about 15 ms) to be discarded.
CLOSE_WAIT_SECONDS = 1.0


@dataclass
class Launcher:
    """A bwrap process waiting for its options, and the parent's ends of its pipes.

    `ends` maps each child descriptor number to the parent's end of the same pipe:
    the read end for what the sandbox writes, the write end for what it reads.
    """

    pid: int
    # The write end of the options pipe, None once the options were sent.
    args: int | None
    ends: dict[int, int]
    cgroup: StageCgroup

    def alive(self) -> bool:
        """Return whether bwrap still waits for its options."""
        try:
            pidfd = os.pidfd_open(self.pid)
        except ProcessLookupError:
            return False
        try:
            return not select.select([pidfd], [], [], 0)[0]
        finally:
            os.close(pidfd)

    def send(self, arguments: list[str]) -> None:
        """Write bwrap's options and let it start."""
        # As posix_spawn would pass them: text that came from bytes that are not UTF-8 goes back to those bytes.
        data = b"".join(os.fsencode(argument) + b"\0" for argument in arguments)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.args, view):]
        finally:
            close_quietly(self.args)
            self.args = None

    def discard(self) -> None:
        """Kill and reap bwrap, close the pipes and remove the cgroups."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass
        close_quietly(self.args, *self.ends.values())
        self.cgroup.remove()


def start_launcher(argv: list[str], args_fd: int, child_fds: list[int], readable_by_child: set[int]) -> Launcher:
    """Start bwrap (`argv`) waiting for its options on `args_fd`, in new stage cgroups without limits.

    `child_fds` are the other descriptor numbers bwrap gets. Each is one end of a new
    pipe: the read end for those in `readable_by_child`, else the write end. Raise
    OSError when bwrap cannot be started.
    """
    ends: dict[int, int] = {}
    child_ends: dict[int, int] = {}
    args_write = None
    try:
        for number in child_fds:
            read, write = os.pipe()
            child_end, own_end = (read, write) if number in readable_by_child else (write, read)
            child_ends[number], ends[number] = child_end, own_end
        args_read, args_write = os.pipe()
        child_ends[args_fd] = args_read
        child_ends[0] = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        # bwrap's own environment is empty: the stage's variables come with its options.
        pid = spawn(argv[0], argv, {}, child_ends)
    except OSError:
        close_quietly(*child_ends.values(), *ends.values(), args_write)
        raise
    close_quietly(*child_ends.values())
    cgroup = StageCgroup.without_limits()
    # A cgroup that rejects bwrap is left out, and the stage then reports the limit it lacks.
    cgroup.enter(pid)
    return Launcher(pid, args_write, ends, cgroup)


class LauncherPool:
    """Launchers made ahead, READY_LAUNCHERS at a time, for one bwrap command line.

    One thread makes them and stays until the process exits: bwrap's `--die-with-parent`
    watches the thread that started it, not the process, so a launcher made by a thread
    that ended would kill its sandbox when its next parent thread ends.
    """

    def __init__(self, argv: list[str], args_fd: int, child_fds: list[int], readable_by_child: set[int]) -> None:
        self._make = lambda: start_launcher(argv, args_fd, child_fds, readable_by_child)
        self._changed = threading.Condition()
        self._ready: list[Launcher] = []
        self._refill_requested = False
        self._closed = False
        self._making = False
        self._maker: threading.Thread | None = None
        atexit.register(self.close)

    def take(self) -> Launcher:
        """Return a waiting launcher, made now when none is ready, and have its replacement made in the background."""
        launcher = None
        with self._changed:
            while self._ready and launcher is None:
                candidate = self._ready.pop(0)
                if candidate.alive():
                    launcher = candidate
                else:
                    candidate.discard()
        self.fill()
        return launcher or self._make()

    def fill(self) -> None:
        """Have launchers made in the background until READY_LAUNCHERS wait."""
        with self._changed:
            self._closed = False
            self._refill_requested = True
            if self._maker is None:
                self._maker = threading.Thread(target=self._keep_filled, name="sandbox launchers", daemon=True)
                self._maker.start()
            self._changed.notify()

    def _keep_filled(self) -> None:
        while True:
            with self._changed:
                while not self._refill_requested or len(self._ready) >= READY_LAUNCHERS:
                    self._refill_requested = False
                    self._changed.wait()
                self._making = True
            try:
                self._make_one()
            finally:
                with self._changed:
                    self._making = False
                    self._changed.notify_all()

    def _make_one(self) -> None:
        """Make a launcher and add it to the ready ones, or discard it when the pool was closed meanwhile."""
        try:
            launcher = self._make()
        except OSError as error:
            log.info("cannot start a sandbox ahead of its stage: %s", error)
            with self._changed:
                self._refill_requested = False
            return
        with self._changed:
            if not self._closed:
                self._ready.append(launcher)
                return
        # Made while the pool was being closed, so no stage will take it.
        launcher.discard()

    def close(self) -> None:
        """End the waiting launchers (at exit), so that no cgroup or process of theirs is left."""
        with self._changed:
            ready, self._ready = self._ready, []
            self._refill_requested = False
            self._closed = True
            # A launcher being made now is discarded by its maker; at exit that must happen before the process ends.
            self._changed.wait_for(lambda: not self._making, timeout=CLOSE_WAIT_SECONDS)
        for launcher in ready:
            launcher.discard()
