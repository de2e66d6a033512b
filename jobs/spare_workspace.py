"""A stage workspace made while the run is planned, for the first stage that starts on this machine.

Planning takes tens of milliseconds in the sandbox, and the run's first stage then
spends about as long checking the commit out and unpacking the dependency cache.
`prepare_run` therefore makes one workspace of the commit beside the plan, and the
first stage of the run that starts on the same machine takes it instead of making its
own. Taking it is a rename, so only one stage gets it. Every other stage, and every
stage on another machine, makes its own workspace as before.

A workspace is `<run folder>/spare` with `workspace/` (the checkout), `deno-dir/`
(the newest dependency cache, unpacked) and `cache-key` (that cache's key, empty
when there was none). It appears only when complete, by renaming it into place.
"""

import logging
import shutil
import threading
from pathlib import Path

from jobs import workspace as git_workspace
from jobs.cache import CacheStore

log = logging.getLogger(__name__)

SPARE = "spare"


class SpareMaker:
    """A thread that makes the spare workspace while the run is planned."""

    def __init__(self, run_folder: Path, mirror: Path, sha: str, clone_url: str, pipeline_path: str,
                 pipeline_override: str | None, caches: CacheStore) -> None:
        self.run_folder = run_folder
        self._arguments = (mirror, sha, clone_url, pipeline_path, pipeline_override, caches)
        self._thread = threading.Thread(target=self._make, name="spare-workspace", daemon=True)

    def start(self) -> "SpareMaker":
        self._thread.start()
        return self

    def finish(self, keep: bool) -> None:
        """Wait for the spare; remove it unless `keep` (the run has stages to start)."""
        self._thread.join()
        if not keep:
            shutil.rmtree(self.run_folder / SPARE, ignore_errors=True)

    def _make(self) -> None:
        mirror, sha, clone_url, pipeline_path, pipeline_override, caches = self._arguments
        building = self.run_folder / f"{SPARE}.building"
        try:
            git_workspace.checkout(mirror, sha, building / "workspace", clone_url)
            git_workspace.write_pipeline_override(building / "workspace", pipeline_path, pipeline_override)
            key = caches.restore_newest(building / "deno-dir") or ""
            (building / "cache-key").write_text(key)
            building.rename(self.run_folder / SPARE)
        except (OSError, git_workspace.GitError) as error:
            # Without a spare, the first stage checks the commit out itself, as the others do.
            log.warning("run folder %s: no spare workspace: %s", self.run_folder, error)
            shutil.rmtree(building, ignore_errors=True)


def take(run_folder: Path, workspace: Path, deno_dir: Path) -> tuple[bool, str | None]:
    """Move the run's spare workspace to `workspace` and `deno_dir` if it is still there.

    Returns (taken, key of the unpacked cache or None).
    """
    claimed = workspace.parent / "claimed-spare"
    workspace.parent.mkdir(parents=True, exist_ok=True)
    try:
        (run_folder / SPARE).rename(claimed)
    except FileNotFoundError:
        return False, None
    (claimed / "workspace").rename(workspace)
    shutil.rmtree(deno_dir, ignore_errors=True)
    if (claimed / "deno-dir").exists():
        (claimed / "deno-dir").rename(deno_dir)
    else:
        deno_dir.mkdir(parents=True)
    key = (claimed / "cache-key").read_text() or None
    shutil.rmtree(claimed, ignore_errors=True)
    return True, key
