"""An executor without a sandbox, for local development only.

The stage is a plain child process in its own session, with the same pipes,
control channel, timeout and output cap as in a sandbox, but it can reach the host's
files, processes and network. Its environment is `spec.env` plus PATH, HOME and
TMPDIR when `env` lacks them, and PWD (the workspace); HOME and TMPDIR point to
a fresh folder that is deleted afterwards. When a writable pids cgroup exists (cgroups.py) it caps the
tasks and lets a kill reach processes that left the session; otherwise the
process limit is not enforced and only the session's process group is killed.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
from pathlib import Path

from ._process import CONTROL_FD, LaunchedProcess, PipeExecution, close_quietly, spawn
from .base import START_FD, LogChunk, StageSpec
from .cgroups import StageCgroup, memory_limit_notice
from .validation import check_spec

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
UNSANDBOXED_NOTICE = (
    "WARNING: this stage runs WITHOUT A SANDBOX (the 'unsandboxed' executor): it can read and change "
    "everything the worker can. Use this executor for local development only"
)

_HANDSHAKE_FD = 4
# The shell waits for one line on the handshake descriptor, so the parent can put
# it into the stage cgroup before the command can fork, then becomes the command.
_LAUNCHER = 'IFS= read -r _ <&4; exec 4<&-; cd -- "$0" || exit 126; unset OLDPWD; exec "$@"'


class UnsandboxedExecutor:
    """Runs each stage as a plain child process; see the module docstring for what is not isolated."""

    name = "unsandboxed"
    can_hold = True

    def start(self, spec: StageSpec) -> PipeExecution:
        """Start `spec` as a child process; raise `ExecutorError` for an invalid spec."""
        check_spec(spec)
        log.warning("starting a stage without a sandbox; use the unsandboxed executor for local development only")
        execution = PipeExecution(spec, lambda: self._launch(spec), self.name)
        return execution.begin(first_events=(LogChunk("system", UNSANDBOXED_NOTICE),))

    def _launch(self, spec: StageSpec) -> LaunchedProcess:
        home = tempfile.mkdtemp(prefix="deno-ci-stage-home-")
        env = {"PATH": DEFAULT_PATH, "HOME": home, "TMPDIR": home, **spec.env}
        stdout_read, stdout_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        control_read, control_write = os.pipe()
        handshake_read, handshake_write = os.pipe()
        start_read, start_write = os.pipe() if spec.held else (None, None)
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        fds = {0: devnull, 1: stdout_write, 2: stderr_write, CONTROL_FD: control_write, _HANDSHAKE_FD: handshake_read}
        if start_read is not None:
            fds[START_FD] = start_read
        argv = ["/bin/sh", "-c", _LAUNCHER, str(spec.workspace), *spec.argv]
        try:
            pid = spawn("/bin/sh", argv, env, fds)
        except OSError:
            close_quietly(stdout_read, stderr_read, control_read, handshake_write, start_write)
            shutil.rmtree(home, ignore_errors=True)
            raise
        finally:
            close_quietly(devnull, stdout_write, stderr_write, control_write, handshake_read, start_read)

        tree = _ProcessTree(pid, home)
        process = LaunchedProcess(pid, stdout_read, stderr_read, control_read, tree.kill, tree.release,
                                  stop_leftovers=tree.stop_leftovers, oom_kills=tree.oom_kills,
                                  failed_forks=tree.failed_forks, start=start_write)
        try:
            tree.cgroup = StageCgroup.create(spec.max_processes, spec.max_memory_bytes)
            tree.cgroup.add(pid)
            if not tree.cgroup.limits("pids"):
                process.notices.append(f"No writable cgroup with the pids controller: the limit of {spec.max_processes} processes is not enforced")
            if not tree.cgroup.limits("memory"):
                process.notices.append(memory_limit_notice(spec.max_memory_bytes))
            os.write(handshake_write, b"go\n")
        except BaseException:
            tree.kill()
            raise
        finally:
            close_quietly(handshake_write)
        return process


class _ProcessTree:
    """The stage's process group and, when available, its cgroup."""

    def __init__(self, pid: int, home: str) -> None:
        self.pid = pid
        self.home = home
        self.cgroup: StageCgroup | None = None
        # After the leader is reaped its pid may be reused, so a late kill must do nothing.
        self.released = False

    def kill(self) -> None:
        """Kill the session's process group, then every process left in the cgroup."""
        if self.released:
            return
        try:
            # The child called setsid, so its pid is also its process group id. The
            # group outlives the leader while members remain, so this reaches them.
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:  # the group has no process left
            pass
        if self.cgroup is not None:
            self.cgroup.kill()

    def stop_leftovers(self) -> int:
        """Kill the processes left after the main process exited, and return how many there were."""
        if self.released:
            return 0
        left = set(_process_group_members(self.pid))
        if self.cgroup is not None:
            left.update(self.cgroup.pids())
        left.discard(self.pid)
        left = {pid for pid in left if _is_running(pid)}
        self.kill()
        return len(left)

    def oom_kills(self) -> int:
        """Return how many processes the OOM killer killed at the stage's memory limit."""
        return self.cgroup.oom_kills() if self.cgroup is not None else 0

    def failed_forks(self) -> int:
        """Return how many forks of the stage failed at its process limit."""
        return self.cgroup.failed_forks() if self.cgroup is not None else 0

    def release(self) -> None:
        """Remove the cgroup and the temporary home folder after the process was reaped."""
        self.released = True
        if self.cgroup is not None:
            self.cgroup.kill()
            self.cgroup.remove()
        shutil.rmtree(self.home, ignore_errors=True)


def _stat_fields(pid: int) -> list[str] | None:
    """Return the fields of /proc/PID/stat after the command name, or None when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces and parentheses.
    return stat[stat.rindex(")") + 2:].split()


def _process_group_members(group: int) -> list[int]:
    """Return the pids of the processes in process group `group`."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            # Field 5 of /proc/PID/stat, the process group, is the third after the command name.
            if fields is not None and fields[2] == str(group):
                members.append(int(entry.name))
    return members


def _is_running(pid: int) -> bool:
    """Return whether `pid` exists and is not a zombie waiting to be reaped."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")
