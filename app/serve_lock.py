"""The lock that makes one `deno-ci serve` the owner of a data folder.

The lock is an flock on `<data>/serve.lock`, so the kernel releases it when the
serving process ends in any way, a SIGKILL included. The file names that process.
"""

import fcntl
import os
from pathlib import Path
from typing import IO

LOCK_FILE = "serve.lock"


class DataFolderServed(RuntimeError):
    """Another process serves the data folder."""


def hold(folder: Path) -> IO:
    """Take the folder's lock for this process and return the open lock file; keep it open while serving.

    Raises DataFolderServed, naming the serving process, when another process has the lock.
    """
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_FILE, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise DataFolderServed(f"Another `deno-ci serve` (process {owner}) serves the data folder {folder}. "
                               "Stop it first, or give this one a data folder of its own with --data.") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def is_served(folder: Path) -> bool:
    """Return whether a `deno-ci serve` holds the data folder's lock now."""
    try:
        handle = open(folder / LOCK_FILE)
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
