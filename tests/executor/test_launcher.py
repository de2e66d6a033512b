"""bwrap processes started ahead of their stage (jobs/executor/launcher.py)."""

import os
import threading
import time
from pathlib import Path

import pytest

from jobs.executor.bubblewrap import ARGS_FD, close_launchers, launcher_argv
from jobs.executor.cgroups import stage_cgroup_parent
from jobs.executor.launcher import LauncherPool


def _own_cgroups() -> set[Path]:
    parents = {stage_cgroup_parent(controller) for controller in ("pids", "memory")} - {None}
    return {path for parent in parents for path in parent.glob(f"stage-{os.getpid()}-*")}


def _own_bwrap_children() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            name = (entry / "comm").read_text().strip()
        except (OSError, IndexError):
            continue
        if name == "bwrap" and int(fields[1]) == os.getpid() and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def test_close_during_make_leaves_nothing(bubblewrap):
    if stage_cgroup_parent("pids") is None:
        pytest.skip("no writable pids cgroup on this machine")
    # Other tests' sandboxes may still be made ahead in this process: they are ended first, and only
    # what this pool adds counts.
    close_launchers()
    before, children_before = _own_cgroups(), set(_own_bwrap_children())
    pool = LauncherPool(launcher_argv(bubblewrap.bwrap), ARGS_FD, [1, 2], set())
    make_started, make_finished = threading.Event(), threading.Event()
    make = pool._make

    def slow_make():
        make_started.set()
        time.sleep(0.05)
        launcher = make()
        make_finished.set()
        return launcher

    pool._make = slow_make
    pool.fill()
    assert make_started.wait(5)

    pool.close()

    # At exit the process ends right after: closing waits for the launcher being made, and ends it.
    assert make_finished.is_set()
    assert _own_cgroups() - before == set()
    assert set(_own_bwrap_children()) - children_before == set()
