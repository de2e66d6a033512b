"""Deleting the folders of ended stages and runs in the background.

Removing a stage's folder (its checkout and its copy of the dependency cache) took 5
to 15 ms, and each stage of a run waited for it before its end was recorded and the
next stage queued. The folder is renamed at once, so that its name is free, and a
thread of the worker deletes it. What a worker leaves when it stops first is deleted by
the next worker that starts (`remove_leftovers`) and by the scheduler's sweep of ended
runs' folders.
"""

import logging
import queue
import shutil
import threading
import uuid
from pathlib import Path

log = logging.getLogger(__name__)

REMOVING_MARK = ".removing-"
"""Part of the name of a folder renamed for removal."""

_pending: "queue.SimpleQueue[Path]" = queue.SimpleQueue()
_remover: threading.Thread | None = None
# Guards `_remover` and `_unfinished`, the count of folders queued and not yet deleted.
_idle = threading.Condition()
_unfinished = 0


def remove_later(folder: Path) -> None:
    """Rename `folder` out of the way and delete it in the background; a missing folder is fine."""
    renamed = folder.with_name(f"{folder.name}{REMOVING_MARK}{uuid.uuid4().hex[:12]}")
    try:
        folder.rename(renamed)
    except FileNotFoundError:
        return
    except OSError as error:
        log.warning("folder %s: cannot rename it for removal (%s); removing it in place", folder, error)
        shutil.rmtree(folder, ignore_errors=True)
        return
    _queue(renamed)


def remove_leftovers(workspaces: Path) -> int:
    """Delete, in the background, the folders under `workspaces` that a stopped worker renamed and left; return how many.

    Called when a worker starts; another worker deleting the same folder meanwhile does no harm.
    """
    leftovers = [*workspaces.glob(f"*{REMOVING_MARK}*"), *workspaces.glob(f"run-*/*{REMOVING_MARK}*")]
    for folder in leftovers:
        _queue(folder)
    return len(leftovers)


def wait_for_removals(timeout: float | None = None) -> bool:
    """Wait until every folder handed to `remove_later` is deleted; return whether that happened in time."""
    with _idle:
        return _idle.wait_for(lambda: _unfinished == 0, timeout)


def _queue(folder: Path) -> None:
    global _remover, _unfinished
    with _idle:
        _unfinished += 1
        if _remover is None or not _remover.is_alive():
            _remover = threading.Thread(target=_remove_forever, name="folder remover", daemon=True)
            _remover.start()
    _pending.put(folder)


def _remove_forever() -> None:
    global _unfinished
    while True:
        folder = _pending.get()
        shutil.rmtree(folder, ignore_errors=True)
        with _idle:
            _unfinished -= 1
            _idle.notify_all()
