"""The default executor: each stage in a bubblewrap sandbox.

What a stage gets:

- New user, PID, mount, IPC, UTS, network and (where possible) cgroup
  namespaces. Inside, the stage runs as uid and gid 1000 ("deno-ci") with every
  capability dropped and no way to create further user namespaces. That uid maps
  to the worker's own uid on the host, so the stage can write the workspace the
  worker checked out. bwrap's `--new-session` keeps it off the worker's terminal,
  and `--die-with-parent` kills it if the worker dies.
- A root made of read-only binds: /usr with the /bin, /sbin and /lib* links or
  folders, and only the /etc files that programs need to resolve names, check
  TLS certificates and load libraries. /etc/passwd, /etc/group, /etc/hosts and
  /etc/resolv.conf are generated, so no host account or address leaks in. The
  workspace and each writable `Mount` are the only writable binds; /tmp is a
  private tmpfs, /proc belongs to the stage's PID namespace, and /dev holds only
  null, zero, full, random, urandom, tty and the pty devices.
- Exactly `spec.env`, plus PATH (DEFAULT_PATH) and HOME (/tmp) when it does not
  set them, and PWD, which bwrap sets to the workspace.
- With `network=True`, a tap device served by slirp4netns (see network.py) that
  is configured before the command starts; with `network=False`, only `lo`.
- bwrap started ahead and moved into the stage's cgroups before the stage is known
  (launcher.py); it reads its options, the environment among them, from a pipe.
- A task cap and a memory cap from per-stage cgroups (cgroups.py), `RLIMIT_NPROC`,
  a wall-clock timeout and an output cap. The PID namespace ends every process
  of the stage when the command exits, is cancelled or times out. bubblewrap 0.8
  with `--die-with-parent` ends it at once when the command exits, so processes
  left in the background get no grace period. A shell around the command counts
  them first, for the "system" line about them.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import resource
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ._process import CONTROL_FD, LaunchedProcess, PipeExecution, close_quietly, spawn
from .base import START_FD, ExecutorError, ExecutorUnavailableError, StageSpec
from .cgroups import StageCgroup, memory_limit_notice, stage_cgroup_parent
from .launcher import LauncherPool
from .network import (LOOPBACK_TIMEOUT, METADATA_NETWORKS, SANDBOX_DNS, UserModeNetwork, find_slirp4netns,
                      host_addresses, reject_routes, wait_for_loopback)
from .validation import check_spec

log = logging.getLogger(__name__)

SANDBOX_UID = 1000
SANDBOX_GID = 1000
SANDBOX_USER = "deno-ci"
SANDBOX_HOSTNAME = "deno-ci-stage"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
"""Top-level paths that are symbolic links into /usr on merged-/usr systems and folders elsewhere."""

ETC_PATHS = (
    "/etc/alternatives",  # Debian's /usr/bin/awk, /usr/bin/editor and the like point here
    "/etc/ca-certificates",
    "/etc/crypto-policies",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/mime.types",
    "/etc/nsswitch.conf",
    "/etc/pki",
    "/etc/protocols",
    "/etc/services",
    "/etc/ssl",
)
"""Host files and folders under /etc that a stage can read (never write), when they exist."""

SETUP_TIMEOUT = 10.0
"""Seconds bwrap may take to create the namespaces before the stage fails."""

# bwrap's own descriptors in the spawned process, next to 0-2 and CONTROL_FD.
_INFO_FD = 4
_BLOCK_FD = 5
# A shell inside the sandbox writes one byte here just before it starts the stage's command,
# so the executor can tell bwrap failing its own setup from the command failing.
_STARTED_FD = 6
# After the command exits, the same shell writes here how many other processes are left in
# the sandbox: bwrap ends the PID namespace as soon as the shell exits, so only a process
# inside can still count them. `/proc/[0-9]*` is a shell glob, so counting starts no process,
# and the count leaves out the shell and bwrap's init. /usr/bin/env runs the command as a
# program even when its name is also a shell builtin (echo, test), as `exec` did before.
_LEFTOVER_FD = 7
# bwrap reads its options from this descriptor (`--args`), so that it can be started before
# they are known (launcher.py). Only the command cannot come that way, so the shell gets the
# stage's command line from these variables, numbered from 0, and removes them before it runs it.
ARGS_FD = 9
_RESERVED_PREFIX = "DENO_CI_SANDBOX_"
_ARGUMENT_COUNT = f"{_RESERVED_PREFIX}ARGC"
_ARGUMENT = f"{_RESERVED_PREFIX}ARG"
_INDEX = f"{_RESERVED_PREFIX}INDEX"
_STARTED_SHIM = [
    "/bin/sh",
    "-c",
    # The loop's own variables have the reserved prefix too, so a stage's `n` or `i` stays as it was.
    f'{_INDEX}=0; set --; while [ "${_INDEX}" -lt "${_ARGUMENT_COUNT}" ]; do '
    f'eval "set -- \\"\\$@\\" \\"\\${_ARGUMENT}${_INDEX}\\"; unset {_ARGUMENT}${_INDEX}"; {_INDEX}=$(({_INDEX} + 1)); done; '
    f'unset {_INDEX} {_ARGUMENT_COUNT}; '
    f'printf 1 >&{_STARTED_FD} || exit 126; exec {_STARTED_FD}>&-; /usr/bin/env -- "$@" {_LEFTOVER_FD}>&-; status=$?; '
    f'count=-2; for entry in /proc/[0-9]*; do count=$((count + 1)); done; echo "$count" >&{_LEFTOVER_FD}; exit "$status"',
    "sh",
]


def generated_etc_files() -> dict[str, str]:
    """Return the content of the /etc files that the sandbox gets instead of the host's."""
    return {
        "passwd": (
            "root:x:0:0:root:/root:/usr/sbin/nologin\n"
            f"{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_GID}:Deno CI stage:/tmp:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        ),
        "group": f"root:x:0:\n{SANDBOX_USER}:x:{SANDBOX_GID}:\nnogroup:x:65534:\n",
        "hosts": f"127.0.0.1\tlocalhost {SANDBOX_HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n",
        "hostname": f"{SANDBOX_HOSTNAME}\n",
        "resolv.conf": f"nameserver {SANDBOX_DNS}\n",
    }


@functools.cache
def write_etc_folder() -> Path:
    """Write the generated /etc files to a folder, once per worker process, and return it.

    The folder is deleted when the worker process exits normally.
    """
    folder = Path(tempfile.mkdtemp(prefix="deno-ci-sandbox-etc-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    folder.chmod(0o755)
    for name, content in generated_etc_files().items():
        path = folder / name
        path.write_text(content)
        path.chmod(0o644)
    return folder


def stage_environment(spec: StageSpec) -> dict[str, str]:
    """Return the stage's whole environment: `spec.env` plus PATH and HOME when it lacks them."""
    return {"PATH": DEFAULT_PATH, "HOME": "/tmp", **spec.env}


def _root_arguments() -> list[str]:
    arguments = ["--ro-bind", "/usr", "/usr"]
    for path in ROOT_LINKS:
        if os.path.islink(path):
            arguments += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            arguments += ["--ro-bind", path, path]
    for path in ETC_PATHS:
        arguments += ["--ro-bind-try", path, path]
    return arguments


# bwrap rejects a command line of more options than this (MAX_ARGS in bubblewrap 0.8).
MAX_BWRAP_OPTIONS = 9000
# Linux rejects a program's argument or environment string of this many bytes or more, its NUL
# included (MAX_ARG_STRLEN, 32 pages). NOTE: this assumes 4 KiB pages, so it is stricter than needed on larger ones.
MAX_VARIABLE_BYTES = 32 * 4096


def launcher_argv(bwrap: str) -> list[str]:
    """Return bwrap's command line, the same for every stage: the rest comes from `build_bwrap_options`."""
    return [bwrap, "--args", str(ARGS_FD), "--", *_STARTED_SHIM]


def build_bwrap_options(spec: StageSpec, etc_folder: Path) -> list[str]:
    """Translate `spec` into the options bwrap reads from ARGS_FD (a pure function, apart from reading / for links).

    They hold the stage's environment and command line, so neither shows in bwrap's
    own command line, which any process of the host may read.
    """
    arguments = [
        "--unshare-user",
        "--uid", str(SANDBOX_UID),
        "--gid", str(SANDBOX_GID),
        "--disable-userns",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-net",
        "--unshare-cgroup-try",
        "--hostname", SANDBOX_HOSTNAME,
        "--cap-drop", "ALL",
        "--die-with-parent",
        "--new-session",
        *_root_arguments(),
    ]
    etc_files = ["passwd", "group", "hosts", "hostname"] + (["resolv.conf"] if spec.network else [])
    for name in etc_files:
        arguments += ["--ro-bind", str(etc_folder / name), f"/etc/{name}"]
    arguments += ["--proc", "/proc", "--dev", "/dev", "--size", str(spec.tmp_bytes), "--tmpfs", "/tmp"]
    for mount in spec.mounts:
        arguments += ["--bind" if mount.writable else "--ro-bind", str(mount.path), str(mount.path)]
    arguments += [
        "--bind", str(spec.workspace), str(spec.workspace),
        "--chdir", str(spec.workspace),
        # The root itself is a tmpfs that bwrap made; without this the stage could create files in it.
        "--remount-ro", "/",
        "--info-fd", str(_INFO_FD),
        "--block-fd", str(_BLOCK_FD),
    ]
    # bwrap itself starts with no environment: this is the whole environment of the shell.
    environment = {name: value for name, value in stage_environment(spec).items()
                   if not name.startswith(_RESERVED_PREFIX)}
    environment[_ARGUMENT_COUNT] = str(len(spec.argv))
    environment.update({f"{_ARGUMENT}{index}": part for index, part in enumerate(spec.argv)})
    for name, value in environment.items():
        if len(os.fsencode(f"{name}={value}")) >= MAX_VARIABLE_BYTES:
            kind = "argument" if name.startswith(_RESERVED_PREFIX) else f"environment variable {name}"
            raise ExecutorError(f"Cannot start the stage: its {kind} is longer than Linux's limit of "
                                f"{MAX_VARIABLE_BYTES} bytes. Pass the value in a file of the workspace.")
        arguments += ["--setenv", name, value]
    if len(arguments) > MAX_BWRAP_OPTIONS:
        raise ExecutorError(f"Cannot start the stage: its {len(spec.env)} environment variables and {len(spec.argv)} "
                            f"arguments make {len(arguments)} bwrap options, more than bwrap's {MAX_BWRAP_OPTIONS}. "
                            "Pass fewer variables, or pass the values in a file of the workspace.")
    return arguments


def _read_sandbox_pid(info_read: int, timeout: float) -> int | None:
    """Read bwrap's --info-fd JSON and return the host pid of the sandbox's init, or None if bwrap failed."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select([info_read], [], [], max(deadline - time.monotonic(), 0))
        if not readable:
            break
        chunk = os.read(info_read, 4096)
        if not chunk:
            break
        data += chunk
        try:
            return int(json.loads(data)["child-pid"])
        except ValueError:
            continue
    return None


class BubblewrapExecutor:
    """Runs each stage in its own bubblewrap sandbox (see the module docstring)."""

    name = "bubblewrap"
    can_hold = True
    can_gate = True

    def __init__(self) -> None:
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise ExecutorUnavailableError(
                "Cannot use the bubblewrap executor: bwrap is not installed. "
                "Install it (Debian: apt-get install bubblewrap) or choose the 'docker' executor"
            )
        self.bwrap = bwrap
        self._slirp4netns: str | None = None
        self._etc_folder = write_etc_folder()

    def warm_up(self) -> None:
        """Read the host facts that each sandbox's start needs once per process, ahead of the first start.

        `deno-ci run` calls this while it plans, so its first stage does not wait for
        them. An error here is raised again, with its message, by the start that needs them.
        """
        for controller in ("pids", "memory"):
            stage_cgroup_parent(controller)
        _launchers(self.bwrap).fill()
        try:
            host_addresses()
        except (OSError, ExecutorError, ValueError, subprocess.SubprocessError) as error:
            log.debug("reading the host's addresses ahead failed: %s", error)

    def start(self, spec: StageSpec) -> PipeExecution:
        """Start `spec` in a new sandbox; raise `ExecutorError` for an invalid spec or a missing tool."""
        check_spec(spec)
        if spec.network and self._slirp4netns is None:
            self._slirp4netns = find_slirp4netns()
        options = build_bwrap_options(spec, self._etc_folder)
        execution = PipeExecution(spec, lambda: self._launch(spec, options, execution.wait_for_gate), self.name)
        return execution.begin()

    def _launch(self, spec: StageSpec, options: list[str], wait_for_gate: Callable[[], bool]) -> LaunchedProcess:
        """Start bwrap, trying again when bwrap itself died while setting the sandbox up.

        bwrap can exit before the command starts, for one when its setup of the loopback
        device fails ("Failed RTM_NEWADDR: No child processes", seen with bubblewrap 0.8
        on Linux 6.18). slirp4netns racing it for `lo` was the usual cause, and
        `wait_for_loopback` now avoids that. Nothing of the stage ran yet, so a new try is safe.
        """
        for attempt in range(1, LAUNCH_ATTEMPTS + 1):
            process, bwrap_failed = self._launch_once(spec, options, wait_for_gate)
            if not bwrap_failed or attempt == LAUNCH_ATTEMPTS or not _exits(process.pid, EXIT_WAIT):
                return process
            log.info("bwrap exited during sandbox setup (try %d of %d): %s", attempt, LAUNCH_ATTEMPTS, process.setup_error)
            _discard(process)
            time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    def _launch_once(self, spec: StageSpec, options: list[str],
                     wait_for_gate: Callable[[], bool]) -> tuple[LaunchedProcess, bool]:
        """Start bwrap once; return the process and whether bwrap itself failed during the setup.

        A failure of the platform's own setup steps (the network helper, the limits) is
        not bwrap's: trying again would fail the same way, only later. bwrap waits on
        --block-fd with the sandbox made until `wait_for_gate()` returns (see `StageSpec.gated`).
        """
        launcher = _launchers(self.bwrap).take()
        ends = launcher.ends
        stdout_read, stderr_read, control_read = ends[1], ends[2], ends[CONTROL_FD]
        info_read, block_write, started_read, leftover_read = (ends[_INFO_FD], ends[_BLOCK_FD], ends[_STARTED_FD],
                                                               ends[_LEFTOVER_FD])
        start_write = ends[START_FD]
        if not spec.held:
            # The stage reads end of file there, and the runner does not look without DENO_CI_START_FD.
            close_quietly(start_write)
            start_write = None
        pid = launcher.pid
        try:
            launcher.send(options)
        except OSError as error:
            # bwrap exited before it read its options, and the setup below reports it as failed.
            log.info("bwrap %s exited before it read its options: %s", pid, error)
        except BaseException:
            launcher.discard()
            raise
        sandbox = _Sandbox(pid, leftover_read, launcher.cgroup)
        process = LaunchedProcess(pid, stdout_read, stderr_read, control_read, sandbox.kill, sandbox.release,
                                  stop_leftovers=sandbox.stop_leftovers, oom_kills=sandbox.oom_kills,
                                  failed_forks=sandbox.failed_forks, start=start_write)
        bwrap_failed = False
        try:
            self._prepare(spec, sandbox, info_read, process)
            bwrap_failed = bool(process.setup_error)
        except (OSError, ExecutorError) as error:
            process.setup_error = f"Cannot set up the sandbox: {error}"
            # The sandbox's processes vanishing under the setup (ESRCH) means bwrap gave up by itself.
            bwrap_failed = isinstance(error, ProcessLookupError) or _exits(pid, 0.2)
        except BaseException:
            sandbox.kill()
            raise
        finally:
            close_quietly(info_read)
        # bwrap also goes on when --block-fd reaches end of file, so a failed setup kills it first.
        if process.setup_error:
            sandbox.kill()
        elif not wait_for_gate():
            # Stopped before its gate opened: the command never starts, and the stop gives the reason.
            sandbox.kill()
        else:
            try:
                os.write(block_write, b"1")
                bwrap_failed = not _command_started(started_read, SETUP_TIMEOUT)
            except BrokenPipeError:
                bwrap_failed = True
            if bwrap_failed:
                process.setup_error = "bubblewrap exited before the stage command started"
                sandbox.kill()
        close_quietly(block_write, started_read)
        return process, bwrap_failed

    def _prepare(self, spec: StageSpec, sandbox: _Sandbox, info_read: int, process: LaunchedProcess) -> None:
        """Attach the network and the limits to the sandbox while bwrap waits on --block-fd."""
        init_pid = _read_sandbox_pid(info_read, SETUP_TIMEOUT)
        if init_pid is None:
            process.setup_error = "bubblewrap could not create the sandbox; its error is in the stderr lines above"
            return
        sandbox.attach_init(init_pid)
        if spec.network:
            if not wait_for_loopback(init_pid):
                log.info("sandbox %s: no loopback address after %g s; slirp4netns starts anyway", init_pid, LOOPBACK_TIMEOUT)
            # slirp4netns starts while the limits are set, to shorten the stage's start.
            sandbox.network = UserModeNetwork(self._slirp4netns, init_pid)
        sandbox.limit_resources(spec, process)
        if sandbox.network is not None:
            sandbox.network.wait_ready()
            blocked = (*METADATA_NETWORKS, *(f"{address}/32" for address in host_addresses()))
            reject_routes(init_pid, blocked)


LAUNCH_ATTEMPTS = 10

_pools: dict[str, LauncherPool] = {}
_pools_lock = threading.Lock()


def _launchers(bwrap: str) -> LauncherPool:
    """Return this process's launchers of the bwrap program `bwrap`."""
    with _pools_lock:
        if bwrap not in _pools:
            child_fds = [1, 2, CONTROL_FD, _INFO_FD, _BLOCK_FD, _STARTED_FD, _LEFTOVER_FD, START_FD]
            _pools[bwrap] = LauncherPool(launcher_argv(bwrap), ARGS_FD, child_fds, readable_by_child={_BLOCK_FD, START_FD})
        return _pools[bwrap]


def make_launchers_ahead() -> None:
    """Have this process's bwrap launchers made in the background now, ahead of its first sandbox.

    A launcher takes 5-20 ms to make (its cgroup's RCU wait), which a first start made
    soon after would otherwise wait for. Does nothing when bwrap is not installed.
    """
    bwrap = shutil.which("bwrap")
    if bwrap is not None:
        _launchers(bwrap).fill()


def close_launchers() -> None:
    """End every launcher waiting in this process (the tests' sandboxes of stand-in bwrap programs)."""
    with _pools_lock:
        pools = list(_pools.values())
    for pool in pools:
        pool.close()


def _command_started(started_read: int, timeout: float) -> bool:
    """Wait for the shim's byte on the started pipe; False when bwrap closed the pipe without it.

    bwrap can still fail after reading --block-fd (setting up the sandbox's loopback device,
    for one), so a successful write there does not prove that the command started.
    """
    readable, _, _ = select.select([started_read], [], [], timeout)
    return bool(readable) and os.read(started_read, 1) == b"1"


# bwrap that failed its setup may still be exiting when the failure is seen (the block pipe
# is closed before the process ends), so it gets this many seconds to end before it counts as alive.
EXIT_WAIT = 2.0


def _exits(pid: int, timeout: float) -> bool:
    """Return whether our child `pid` ends within `timeout` seconds, without reaping it."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        # A pidfd becomes readable when its process ends.
        return bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)


def _discard(process: LaunchedProcess) -> None:
    """Reap a failed launch and free everything it holds."""
    process.kill()
    try:
        os.waitpid(process.pid, 0)
    except ChildProcessError:
        pass
    process.release()
    close_quietly(process.stdout, process.stderr, process.control)


class _Sandbox:
    """The host-side handles of one running sandbox: its processes, network and cgroup."""

    def __init__(self, bwrap_pid: int, leftover_report: int, cgroup: StageCgroup) -> None:
        # kill() runs on any thread while release() closes the descriptors it uses.
        self._lock = threading.Lock()
        self.bwrap_pidfd = os.pidfd_open(bwrap_pid)
        self.init_pid: int | None = None
        self.init_pidfd: int | None = None
        self.network: UserModeNetwork | None = None
        # bwrap is in it already (see launcher.py), so every process of the sandbox is too.
        self.cgroup = cgroup
        self.leftover_report: int | None = leftover_report

    def attach_init(self, init_pid: int) -> None:
        """Remember the sandbox's init process; killing it ends the whole PID namespace."""
        with self._lock:
            self.init_pidfd = os.pidfd_open(init_pid)
        self.init_pid = init_pid

    def limit_resources(self, spec: StageSpec, process: LaunchedProcess) -> None:
        """Cap the sandbox's tasks (processes and threads) and memory before its command starts."""
        # Two more tasks than asked for bwrap's init and the shell that starts the command.
        max_tasks = spec.max_processes + 2
        # RLIMIT_NPROC is counted per user namespace and uid, so it caps this sandbox
        # alone, but the kernel does not apply it to host root (uid 0 outside).
        resource.prlimit(self.init_pid, resource.RLIMIT_NPROC, (max_tasks, max_tasks))
        # One more in the cgroup for bwrap itself, which waits outside the sandbox.
        self.cgroup.set_limits(max_tasks + 1, spec.max_memory_bytes)
        if not self.cgroup.limits("pids") and os.geteuid() == 0:
            process.notices.append(
                f"No writable cgroup with the pids controller: the limit of {spec.max_processes} processes is not enforced"
            )
        if not self.cgroup.limits("memory"):
            process.notices.append(memory_limit_notice(spec.max_memory_bytes))

    def stop_leftovers(self) -> int:
        """Return how many processes the command left behind, which bwrap ended with the PID namespace."""
        self.kill()
        report = b""
        # bwrap has exited, so every writer of the pipe is gone or going.
        while self.leftover_report is not None and select.select([self.leftover_report], [], [], 1.0)[0]:
            chunk = os.read(self.leftover_report, 64)
            if not chunk:
                break
            report += chunk
        try:
            return max(int(report.strip() or b"0"), 0)
        except ValueError:
            # The command's processes share the shell's uid, so they can tamper with it.
            log.info("ignored an invalid count of leftover processes from the sandbox: %r", report[:64])
            return 0

    def oom_kills(self) -> int:
        """Return how many processes the OOM killer killed at the sandbox's memory limit."""
        return self.cgroup.oom_kills() if self.cgroup is not None else 0

    def failed_forks(self) -> int:
        """Return how many forks in the sandbox failed at its process limit."""
        return self.cgroup.failed_forks() if self.cgroup is not None else 0

    def kill(self) -> None:
        """Kill the sandbox's init (and so every process in it) and bwrap itself."""
        with self._lock:
            for pidfd in (self.init_pidfd, self.bwrap_pidfd):
                if pidfd is not None:
                    try:
                        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                    except OSError:  # the process has already exited
                        pass
        self.cgroup.kill()

    def release(self) -> None:
        """Stop the network, remove the cgroup and close the process handles, after bwrap was reaped."""
        if self.network is not None:
            self.network.stop()
        self.cgroup.kill()
        self.cgroup.remove()
        with self._lock:
            close_quietly(self.init_pidfd, self.bwrap_pidfd, self.leftover_report)
            self.init_pidfd = self.bwrap_pidfd = self.leftover_report = None
