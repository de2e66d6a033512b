"""The workspaces folder, marked so that ext4 spreads the run folders over the disk."""

import errno
from pathlib import Path

import pytest

from jobs import workspaces_root
from tests.conftest import wait_for


def _supports_flags(folder: Path) -> bool:
    try:
        workspaces_root.is_top_directory(folder)
    except OSError as error:
        if error.errno in (errno.ENOTTY, errno.EOPNOTSUPP):
            return False
        raise
    return True


def test_prepare_marks_top_directory(tmp_path):
    folder = tmp_path / "data" / "workspaces"
    workspaces_root.prepare(folder)
    assert folder.is_dir()
    if not _supports_flags(folder):
        pytest.skip("the file system under the test's folder has no inode flags (tmpfs)")
    assert workspaces_root.is_top_directory(folder)
    # Again on a marked folder: nothing changes and nothing fails.
    workspaces_root.prepare(folder)
    assert workspaces_root.is_top_directory(folder)


def test_worker_marks_its_workspaces(workers, app):
    folder = Path(app.config["WORKSPACES_DIR"])
    # The workers are still starting when the fixture returns.
    wait_for(folder.is_dir)
    if not _supports_flags(folder):
        pytest.skip("the file system of the workspaces has no inode flags (tmpfs)")
    wait_for(lambda: workspaces_root.is_top_directory(folder))
