"""A stage workspace made ahead of time, for the next stage of the run that starts on this machine.

Planning takes tens of milliseconds in the sandbox, and the run's first stage then
spends about as long checking the commit out and unpacking the dependency cache.
`prepare_run` therefore makes one workspace of the commit beside the plan, and a
running stage makes one while it runs when other stages of its run still wait. The
next stage of the run that starts on the same machine takes it instead of making its
own. Taking it is a rename, so only one stage gets it. Every other stage, and every
stage on another machine, makes its own workspace as before.

A workspace is `<run folder>/spare` with `workspace/` (the checkout), `deno-dir/`
(the newest dependency cache, unpacked), `cache-key` (that cache's key, empty when
there was none) and `source` (the commit and edited pipeline it was made of). It appears only when complete, by renaming it into place.
"""

import errno
import functools
import hashlib
import logging
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from jobs import workspace as git_workspace
from jobs.cache import CacheStore

log = logging.getLogger(__name__)

SPARE = "spare"


class SpareMaker:
    """A thread that makes a spare workspace while the run is planned or a stage of it runs."""

    def __init__(self, run_folder: Path, mirror: Path, sha: str, clone_url: str, pipeline_path: str,
                 pipeline_override: str | None, caches: CacheStore) -> None:
        self.run_folder = run_folder
        self._make_into = functools.partial(make_workspace, mirror, sha, clone_url, pipeline_path, pipeline_override, caches)
        self._source = source_id(sha, pipeline_override)
        self._thread = threading.Thread(target=self._make, name="spare-workspace", daemon=True)

    def start(self) -> "SpareMaker":
        self._thread.start()
        return self

    def finish(self, keep: bool) -> None:
        """Wait for the spare, if it was started; remove it unless `keep` (the run has stages to start)."""
        if self._thread.ident is not None:
            self._thread.join()
        if not keep:
            shutil.rmtree(self.run_folder / SPARE, ignore_errors=True)

    def _make(self) -> None:
        try:
            # A name of its own: stages running side by side may each make a spare, and only one is kept.
            self.run_folder.mkdir(parents=True, exist_ok=True)
            building = Path(tempfile.mkdtemp(prefix=f"{SPARE}.building-", dir=self.run_folder))
        except OSError as error:
            log.warning("run folder %s: no spare workspace: %s", self.run_folder, error)
            return
        try:
            key = self._make_into(building / "workspace", building / "deno-dir")
            (building / "cache-key").write_text(key or "")
            (building / "source").write_text(self._source)
            building.rename(self.run_folder / SPARE)
        except (OSError, git_workspace.GitError) as error:
            shutil.rmtree(building, ignore_errors=True)
            if getattr(error, "errno", None) in (errno.ENOTEMPTY, errno.EEXIST) and (self.run_folder / SPARE).exists():
                # A stage running beside this one made its spare first; one is enough.
                log.debug("run folder %s: a spare workspace is there already", self.run_folder)
                return
            # Without a spare, the next stage checks the commit out itself.
            log.warning("run folder %s: no spare workspace: %s", self.run_folder, error)


def make_workspace(mirror: Path, sha: str, clone_url: str, pipeline_path: str, pipeline_override: str | None,
                   caches: CacheStore, workspace: Path, deno_dir: Path) -> str | None:
    """Check `sha` out into `workspace` and unpack the newest dependency cache into `deno_dir`; return its key.

    The cache key depends on the checkout, but the newest archive is nearly always the
    right one, so it is unpacked while git checks out; the caller replaces it if it is not.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        guessed = pool.submit(caches.restore_newest, deno_dir)
        git_workspace.checkout(mirror, sha, workspace, clone_url)
        git_workspace.write_pipeline_override(workspace, pipeline_path, pipeline_override)
        return guessed.result()


def exists(run_folder: Path) -> bool:
    """Return whether the run has a spare workspace ready or being made on this machine."""
    return (run_folder / SPARE).exists() or any(run_folder.glob(f"{SPARE}.building-*"))


def source_id(sha: str, pipeline_override: str | None) -> str:
    """Return what a workspace's files are made of: the commit and the edited pipeline, if any."""
    override = hashlib.sha256(pipeline_override.encode()).hexdigest() if pipeline_override is not None else "-"
    return f"{sha} {override}"


def take(run_folder: Path, workspace: Path, deno_dir: Path, sha: str, pipeline_override: str | None) -> tuple[bool, str | None]:
    """Move the run's spare workspace to `workspace` and `deno_dir` if it is there and made of the same source.

    Returns (taken, key of the unpacked cache or None). A spare of other files (left by an
    earlier run of the same id, as when a test database starts its ids again) is removed.
    """
    claimed = workspace.parent / "claimed-spare"
    workspace.parent.mkdir(parents=True, exist_ok=True)
    try:
        (run_folder / SPARE).rename(claimed)
    except FileNotFoundError:
        return False, None
    try:
        made_of = (claimed / "source").read_text()
    except OSError:
        made_of = ""
    if made_of != source_id(sha, pipeline_override):
        log.warning("run folder %s: discarded a spare workspace of other files (%s)", run_folder, made_of or "unknown")
        shutil.rmtree(claimed, ignore_errors=True)
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
