"""A stage's cgroups: killing its processes while another thread removes them."""

import errno
import threading
from pathlib import Path

import pytest

from jobs.executor.cgroups import StageCgroup, stage_cgroup_parent


@pytest.fixture
def cgroup():
    if stage_cgroup_parent("pids") is None:
        pytest.skip("no writable pids cgroup on this machine")
    created = StageCgroup.create(max_tasks=16, max_memory_bytes=64 * 1024 * 1024)
    yield created
    created.remove()


def test_cgroup_being_removed_has_no_processes(cgroup, monkeypatch):
    # The kernel returns ENODEV for a read of cgroup.procs that began before the folder was removed.
    original = Path.read_text

    def removed_meanwhile(path, *args, **kwargs):
        if path.name == "cgroup.procs":
            raise OSError(errno.ENODEV, "No such device")
        return original(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", removed_meanwhile)
    assert cgroup.pids() == []
    cgroup.kill()


def test_kill_beside_remove_raises_nothing(cgroup):
    failures = []

    def kill_repeatedly():
        try:
            for _ in range(200):
                cgroup.kill()
        except OSError as error:
            failures.append(error)

    killer = threading.Thread(target=kill_repeatedly)
    killer.start()
    cgroup.remove()
    killer.join()
    assert failures == []
