"""A temporary folder for everything one local command creates, and the removal of those that killed commands left.

`deno-ci run` and `validate` make temporary folders: the run's workspaces, the
planner's import map, the sandbox's /etc files. They delete them when they end, but
a command killed with SIGKILL cannot. So each such command first makes one folder
of its own, locks a file in it for as long as it lives and makes it the process's
temporary folder, where every later one goes. The kernel drops the lock with the
process, so a later command can tell a dead command's folder from a live one's.
"""

import atexit
import fcntl
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from config import under_device_tree

log = logging.getLogger(__name__)

PREFIX = "deno-ci-local-"
LOCK_FILE = ".owner.lock"
# A folder this young may belong to a command that has not taken its lock yet.
YOUNGEST_STALE_SECONDS = 10
FALLBACK_TEMP = Path("/tmp")

_parent: Path | None = None


def use_own_temp_folder() -> None:
    """Make a locked folder under the temporary folder and put this process's later temporary folders in it.

    The folder is deleted when the process exits normally.
    """
    global _parent
    _parent = _usable_temp_parent()
    folder = Path(tempfile.mkdtemp(prefix=PREFIX, dir=_parent))
    lock = os.open(folder / LOCK_FILE, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    tempfile.tempdir = str(folder)
    atexit.register(_remove, folder, lock)


def _usable_temp_parent() -> Path:
    """Return the temporary folder, or /tmp when Deno could not be given access to files in it."""
    parent = Path(tempfile.gettempdir())
    if under_device_tree(parent):
        reason = "is under /dev, where Deno reads no file without --allow-all"
    elif "," in str(parent):
        reason = "contains a comma, and Deno's --allow-read list has no way to escape one"
    else:
        return parent
    log.warning("the temporary folder %s %s; using %s instead (set TMPDIR to another folder to choose)",
                parent, reason, FALLBACK_TEMP)
    return FALLBACK_TEMP


def _remove(folder: Path, lock: int) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    os.close(lock)


def remove_stale_temp_folders() -> None:
    """Delete the folders of this user's local commands that ended without deleting them (killed ones)."""
    now = time.time()
    for folder in (_parent or Path(tempfile.gettempdir())).glob(PREFIX + "*"):
        try:
            if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
                continue
            if _stale(folder, now):
                log.info("removing %s, left by a deno-ci command that was killed", folder)
                shutil.rmtree(folder, ignore_errors=True)
        except OSError as error:
            log.debug("cannot check %s: %s", folder, error)


def _stale(folder: Path, now: float) -> bool:
    try:
        lock = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        if now - os.fstat(lock).st_mtime < YOUNGEST_STALE_SECONDS:
            return False
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    finally:
        os.close(lock)
