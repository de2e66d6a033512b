"""Per-stage cgroups that cap the number of tasks and the memory, and kill every task on request.

The `memory` controller caps the stage's memory (`memory.max` under cgroup v2,
`memory.limit_in_bytes` under v1), with swap off where the kernel allows it, so
the kernel's OOM killer stops a stage that uses more. The `pids` controller
counts processes and threads alike. It works for root,
whereas `RLIMIT_NPROC` does not limit processes whose user is host root, even
inside a user namespace. Both cgroup v2 (a `cgroup2` mount whose
`cgroup.controllers` lists the controller) and the v1 hierarchy of each
controller are supported. When neither is writable for a controller,
`StageCgroup.create` leaves it out and the caller decides how to degrade.
"""

from __future__ import annotations

import errno
import functools
import itertools
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

PARENT_NAME = "deno-ci"
"""Cgroup under the worker's own cgroup that contains one child cgroup per running stage."""

_KILL_SECONDS = 2.0
_counter = itertools.count()


def _own_cgroup_paths() -> dict[str, str]:
    """Map each controller list of /proc/self/cgroup ("" for v2) to this process's cgroup path."""
    paths = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        paths[controllers] = path
    return paths


def _cgroup_mounts() -> list[tuple[str, str, str]]:
    """Return (mount point, filesystem type, super options) for every cgroup mount."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        before, after = line.split(" - ", 1)
        fstype, _, options = after.split(" ", 2)
        if fstype in ("cgroup", "cgroup2"):
            mounts.append((before.split(" ")[4], fstype, options))
    return mounts


def _enable_controller(folder: Path, controller: str) -> None:
    if controller not in (folder / "cgroup.subtree_control").read_text().split():
        (folder / "cgroup.subtree_control").write_text(f"+{controller}")


def _prepare_v2(mount: str, own: str, controller: str) -> Path | None:
    base = Path(mount) / own.lstrip("/")
    if controller not in (base / "cgroup.controllers").read_text().split():
        return None
    # Enabling a controller for children fails with EBUSY when `base` contains
    # processes and is not the root, because of cgroup v2's no-internal-processes rule.
    _enable_controller(base, controller)
    parent = base / PARENT_NAME
    parent.mkdir(exist_ok=True)
    _enable_controller(parent, controller)
    return parent


def _prepare_v1(mount: str, own: str) -> Path:
    parent = Path(mount) / own.lstrip("/") / PARENT_NAME
    parent.mkdir(exist_ok=True)
    return parent


@functools.cache
def stage_cgroup_parent(controller: str = "pids") -> Path | None:
    """Find or make the folder where stage cgroups of `controller` are created; None when none is writable.

    `controller` is "pids" or "memory". With cgroup v2 both share one folder; with v1
    each has its own hierarchy. The warning for a missing controller is logged once per process.
    """
    own = _own_cgroup_paths()
    for mount, fstype, options in _cgroup_mounts():
        try:
            if fstype == "cgroup2" and "" in own:
                parent = _prepare_v2(mount, own[""], controller)
            elif fstype == "cgroup" and controller in options.split(","):
                parent = _prepare_v1(mount, next(path for names, path in own.items() if controller in names.split(",")))
            else:
                continue
        except (OSError, StopIteration) as error:
            log.debug("cannot use the cgroup mount %s for the %s limit of stages: %s", mount, controller, error)
            continue
        if parent is not None:
            log.info("stage %s limits use the cgroup folder %s", controller, parent)
            remove_stale_cgroups(parent)
            return parent
    log.warning("no writable cgroup with the %s controller: %s", controller, _MISSING_EFFECT[controller])
    return None


_MISSING_EFFECT = {
    "pids": "stage process limits rely on RLIMIT_NPROC, which does not apply to host root",
    "memory": "the memory limit of stages and planning is not enforced",
}


def remove_stale_cgroups(parent: Path) -> None:
    """Kill and remove the stage cgroups of workers that no longer run (killed with SIGKILL, say).

    A cgroup is named after its worker's pid. While a process with that pid exists, the
    cgroup is left alone, even if the pid now belongs to another program.
    """
    for path in parent.glob("stage-*-*"):
        try:
            worker_pid = int(path.name.split("-")[1])
        except ValueError:
            continue
        if Path(f"/proc/{worker_pid}").exists():
            continue
        stale = StageCgroup({"stale": path})
        try:
            stale.kill()
            path.rmdir()
            log.info("removed the stage cgroup %s of worker %s, which no longer runs", path, worker_pid)
        except FileNotFoundError:
            # Another process removed it meanwhile, such as the worker itself as it exited.
            continue
        except OSError as error:
            log.warning("cannot remove the stale stage cgroup %s: %s", path, error)


def memory_limit_notice(max_memory_bytes: int) -> str:
    """Return the "system" line telling a stage that its memory limit is not enforced."""
    memory_mib = max_memory_bytes // (1024 * 1024)
    return f"No writable cgroup with the memory controller: the limit of {memory_mib} MiB of memory is not enforced"


class StageCgroup:
    """One stage's cgroups: caps on its tasks and memory, and a way to kill all its processes.

    `folders` maps each controller ("pids", "memory") to the stage's folder in that
    controller's hierarchy; under cgroup v2 every controller has the same folder.
    `limited` holds the controllers whose limit was set.
    """

    def __init__(self, folders: dict[str, Path], limited: set[str] | None = None) -> None:
        self.folders = folders
        self.limited = set(folders) if limited is None else limited

    @classmethod
    def create(cls, max_tasks: int, max_memory_bytes: int) -> StageCgroup:
        """Make the stage's cgroups and set their limits; a controller that cannot be used is left out."""
        cgroup = cls.without_limits()
        cgroup.set_limits(max_tasks, max_memory_bytes)
        for controller in set(cgroup.folders) - cgroup.limited:
            # Nothing is in the folder yet, so it can go.
            folder = cgroup.folders.pop(controller)
            if folder not in cgroup.folders.values():
                _remove_folder(folder)
        return cgroup

    @classmethod
    def without_limits(cls) -> StageCgroup:
        """Make the stage's cgroups with no limits yet; a controller that cannot be used is left out."""
        name = f"stage-{os.getpid()}-{next(_counter)}"
        folders = {}
        for controller in ("pids", "memory"):
            parent = stage_cgroup_parent(controller)
            if parent is None:
                continue
            path = parent / name
            try:
                path.mkdir(exist_ok=True)
            except OSError as error:
                log.warning("cannot make the stage cgroup %s: %s", path, error)
                continue
            folders[controller] = path
        return cls(folders, limited=set())

    def set_limits(self, max_tasks: int, max_memory_bytes: int) -> None:
        """Cap the tasks and memory of the cgroups; a limit that cannot be written is logged and left out."""
        for controller, limit in (("pids", max_tasks), ("memory", max_memory_bytes)):
            path = self.folders.get(controller)
            if path is None:
                continue
            try:
                _LIMIT_WRITERS[controller](path, limit)
            except OSError as error:
                log.warning("cannot set the %s limit in the stage cgroup %s: %s", controller, path, error)
                continue
            self.limited.add(controller)

    def limits(self, controller: str) -> bool:
        """Return whether the limit of `controller` ("pids" or "memory") is enforced."""
        return controller in self.limited

    def _distinct_folders(self) -> list[Path]:
        return list(dict.fromkeys(self.folders.values()))

    def add(self, pid: int) -> None:
        """Move process `pid` (one task group) into the stage's cgroups; its future children follow."""
        for folder in self._distinct_folders():
            (folder / "cgroup.procs").write_text(str(pid))

    def enter(self, pid: int) -> None:
        """Move process `pid` into the stage's cgroups, leaving out (and removing) each one that rejects it."""
        for controller, folder in list(self.folders.items()):
            if controller not in self.folders:
                continue
            try:
                (folder / "cgroup.procs").write_text(str(pid))
            except OSError as error:
                log.warning("cannot move process %s into the stage cgroup %s: %s", pid, folder, error)
                for name in [name for name, path in self.folders.items() if path == folder]:
                    del self.folders[name]
                _remove_folder(folder)

    def pids(self) -> list[int]:
        """Return the processes currently in the stage's cgroups."""
        found: set[int] = set()
        for folder in self._distinct_folders():
            try:
                found.update(int(line) for line in (folder / "cgroup.procs").read_text().split())
            except OSError as error:
                # ENODEV: the cgroup is being removed (its processes ended and another thread
                # cleans up), so it has no processes left.
                if error.errno not in (errno.ENOENT, errno.ENODEV):
                    raise
        return sorted(found)

    def kill(self) -> None:
        """Send SIGKILL to every process in the cgroups until none is left (at most about 2 s)."""
        folders = self._distinct_folders()
        kill_files = [folder / "cgroup.kill" for folder in folders if (folder / "cgroup.kill").exists()]
        if kill_files:
            kill_files[0].write_text("1")
            return
        # cgroup v1 has no cgroup.kill: a process may fork between reading the list
        # and the kill, so repeat until the list stays empty.
        deadline = time.monotonic() + _KILL_SECONDS
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.005)

    def oom_kills(self) -> int:
        """Return how many processes the kernel's OOM killer killed because of the memory limit."""
        # cgroup v2 counts kills in memory.events, v1 (Linux 4.13 and later) in memory.oom_control.
        return self._event_count("memory", ("memory.events", "memory.oom_control"), "oom_kill")

    def failed_forks(self) -> int:
        """Return how many times a process of the stage could not fork because of the process limit."""
        return self._event_count("pids", ("pids.events",), "max")

    def _event_count(self, controller: str, file_names: tuple[str, ...], key: str) -> int:
        """Return the count of `key` in the first of the controller's event files that exists, or 0."""
        folder = self.folders.get(controller)
        if folder is None:
            return 0
        for file_name in file_names:
            try:
                lines = (folder / file_name).read_text().splitlines()
            except OSError as error:
                if error.errno not in (errno.ENOENT, errno.ENODEV):
                    raise
                continue
            for line in lines:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        return 0

    def remove(self) -> None:
        """Delete the cgroups once their processes are gone, retrying briefly while they are reaped."""
        for folder in self._distinct_folders():
            _remove_folder(folder)


def _limit_tasks(folder: Path, max_tasks: int) -> None:
    (folder / "pids.max").write_text(str(max_tasks))


def _limit_memory(folder: Path, max_bytes: int) -> None:
    """Cap the folder's memory at `max_bytes` with swap off, so the limit cannot be dodged by swapping."""
    if (folder / "memory.max").exists():
        (folder / "memory.max").write_text(str(max_bytes))
        if (folder / "memory.swap.max").exists():
            (folder / "memory.swap.max").write_text("0")
        return
    (folder / "memory.limit_in_bytes").write_text(str(max_bytes))
    # memory.memsw.limit_in_bytes counts memory plus swap; it exists when swap accounting is on.
    if (folder / "memory.memsw.limit_in_bytes").exists():
        (folder / "memory.memsw.limit_in_bytes").write_text(str(max_bytes))


_LIMIT_WRITERS = {"pids": _limit_tasks, "memory": _limit_memory}


def _remove_folder(path: Path) -> None:
    deadline = time.monotonic() + _KILL_SECONDS
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as error:
            if time.monotonic() > deadline:
                log.warning("cannot remove the stage cgroup %s: %s", path, error)
                return
            time.sleep(0.01)
