"""Per-stage cgroups that cap the number of tasks and kill every task on request.

The `pids` controller counts processes and threads alike. It works for root,
whereas `RLIMIT_NPROC` does not limit processes whose user is host root, even
inside a user namespace. Both cgroup v2 (a `cgroup2` mount whose
`cgroup.controllers` lists `pids`) and the v1 `pids` hierarchy are supported.
When neither is writable, `StageCgroup.create` returns None and the caller
decides how to degrade.
"""

from __future__ import annotations

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


def _prepare_v2(mount: str, own: str) -> Path | None:
    base = Path(mount) / own.lstrip("/")
    if "pids" not in (base / "cgroup.controllers").read_text().split():
        return None
    # Enabling a controller for children fails with EBUSY when `base` contains
    # processes and is not the root, because of cgroup v2's no-internal-processes rule.
    if "pids" not in (base / "cgroup.subtree_control").read_text().split():
        (base / "cgroup.subtree_control").write_text("+pids")
    parent = base / PARENT_NAME
    parent.mkdir(exist_ok=True)
    if "pids" not in (parent / "cgroup.subtree_control").read_text().split():
        (parent / "cgroup.subtree_control").write_text("+pids")
    return parent


def _prepare_v1(mount: str, own: str) -> Path:
    parent = Path(mount) / own.lstrip("/") / PARENT_NAME
    parent.mkdir(exist_ok=True)
    return parent


@functools.cache
def stage_cgroup_parent() -> Path | None:
    """Find or make the folder where stage cgroups are created; None when no pids cgroup is writable."""
    own = _own_cgroup_paths()
    for mount, fstype, options in _cgroup_mounts():
        try:
            if fstype == "cgroup2" and "" in own:
                parent = _prepare_v2(mount, own[""])
            elif fstype == "cgroup" and "pids" in options.split(","):
                parent = _prepare_v1(mount, next(path for names, path in own.items() if "pids" in names.split(",")))
            else:
                continue
        except (OSError, StopIteration) as error:
            log.debug("cannot use the cgroup mount %s for stage limits: %s", mount, error)
            continue
        if parent is not None:
            log.info("stage process limits use the cgroup folder %s", parent)
            remove_stale_cgroups(parent)
            return parent
    log.warning("no writable cgroup with the pids controller: stage process limits rely on RLIMIT_NPROC, which does not apply to host root")
    return None


def remove_stale_cgroups(parent: Path) -> None:
    """Kill and remove the stage cgroups of workers that no longer run (killed with SIGKILL, say).

    A cgroup is named after its worker's pid; while a process with that pid exists the
    cgroup is left alone, even if the pid now belongs to another program.
    """
    for path in parent.glob("stage-*-*"):
        try:
            worker_pid = int(path.name.split("-")[1])
        except ValueError:
            continue
        if Path(f"/proc/{worker_pid}").exists():
            continue
        stale = StageCgroup(path)
        try:
            stale.kill()
            path.rmdir()
            log.info("removed the stage cgroup %s of worker %s, which no longer runs", path, worker_pid)
        except OSError as error:
            log.warning("cannot remove the stale stage cgroup %s: %s", path, error)


class StageCgroup:
    """One stage's cgroup: a cap on its tasks, and a way to kill all of them."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, max_tasks: int) -> StageCgroup | None:
        """Make a new stage cgroup allowing `max_tasks` tasks, or return None when cgroups are unusable."""
        parent = stage_cgroup_parent()
        if parent is None:
            return None
        path = parent / f"stage-{os.getpid()}-{next(_counter)}"
        try:
            path.mkdir()
            (path / "pids.max").write_text(str(max_tasks))
        except OSError as error:
            log.warning("cannot create the stage cgroup %s: %s", path, error)
            return None
        return cls(path)

    def add(self, pid: int) -> None:
        """Move process `pid` (one task group) into this cgroup; its future children follow."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        """Return the processes currently in the cgroup."""
        try:
            return [int(line) for line in (self.path / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            return []

    def kill(self) -> None:
        """Send SIGKILL to every process in the cgroup until none is left (at most about 2 s)."""
        kill_file = self.path / "cgroup.kill"
        if kill_file.exists():
            kill_file.write_text("1")
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

    def remove(self) -> None:
        """Delete the cgroup once its processes are gone, retrying briefly while they are reaped."""
        deadline = time.monotonic() + _KILL_SECONDS
        while True:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError as error:
                if time.monotonic() > deadline:
                    log.warning("cannot remove the stage cgroup %s: %s", self.path, error)
                    return
                time.sleep(0.01)
