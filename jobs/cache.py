"""Dependency caches: a project's `DENO_DIR` saved as an archive and restored before a stage.

An archive is addressed by a key made from the path and content of the files that
decide dependencies (`deno.lock`, `deno.json`, `deno.jsonc`, `package.json` and any
files a stage adds), so two lock files never share a key. A key's archive is written
once, like GitHub Actions' caches: the first stage that succeeds with it saves it.
When no archive has the exact key, the project's newest archive is restored instead,
so a changed lock file only downloads what changed.

An archive is unpacked once, into a folder beside it. Each restore copies that
folder, so a stage does not pay for decompressing the archive again.
"""

import hashlib
import logging
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

KEY_FILES = ("deno.lock", "deno.json", "deno.jsonc", "package.json")
ARCHIVE_SUFFIX = ".tar.gz"
# Beside each archive, the same files unpacked, which later restores copy.
TREE_SUFFIX = ".tree"


def cache_key(workspace: Path, extra_files: list[str] = ()) -> str:
    """Return the cache key of a workspace: a hash over each key file's path and content."""
    digest = hashlib.sha256()
    for name in sorted({*KEY_FILES, *extra_files}):
        path = workspace / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        digest.update(b"\0")
    return "deno-" + digest.hexdigest()[:40]


def stage_key_files(options: dict) -> list[str]:
    """Return the files a stage's `cache` option adds to its cache key."""
    return (options.get("cache") or {}).get("key") or []


class CacheStore:
    """Cache archives of one project in `<data>/caches/<project>/`."""

    def __init__(self, data_dir: Path, project: str | int) -> None:
        self.folder = data_dir / "caches" / str(project)

    def archive_path(self, key: str) -> Path:
        return self.folder / f"{key}{ARCHIVE_SUFFIX}"

    def restore(self, key: str, destination: Path) -> str | None:
        """Unpack the archive for `key`, or else the newest one, into `destination`.

        Return the key that was restored, or None. A corrupt or partial archive is
        deleted with a warning and never used.
        """
        candidates = [self.archive_path(key)] + self._newest_first()
        for archive in dict.fromkeys(candidates):
            if not archive.is_file():
                continue
            if self._unpack(archive, destination):
                return archive.name.removesuffix(ARCHIVE_SUFFIX)
        return None

    def restore_newest(self, destination: Path) -> str | None:
        """Unpack the project's newest archive into `destination`; return its key, or None."""
        for archive in self._newest_first():
            if self._unpack(archive, destination):
                return archive.name.removesuffix(ARCHIVE_SUFFIX)
        return None

    def _newest_first(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        # Names starting with a dot are archives still being written by `save`.
        archives = [path for path in self.folder.iterdir()
                    if path.name.endswith(ARCHIVE_SUFFIX) and not path.name.startswith(".")]
        return sorted(archives, key=lambda path: path.stat().st_mtime, reverse=True)

    def _unpack(self, archive: Path, destination: Path) -> bool:
        """Copy the unpacked tree of `archive` into `destination`; False when the archive is corrupt."""
        tree = self._unpacked(archive)
        if tree is None:
            return False
        destination.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=destination.parent))
        try:
            # cp copies a tree in C, many times faster than unpacking the archive again in Python.
            subprocess.run(["cp", "-a", "--reflink=auto", f"{tree}/.", str(staging)], check=True, capture_output=True)
        except subprocess.CalledProcessError as error:
            log.warning("cache restore failed for %s: %s", archive, error.stderr.decode(errors="replace").strip()[:500])
            shutil.rmtree(staging, ignore_errors=True)
            return False
        for entry in staging.iterdir():
            target = destination / entry.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            entry.rename(target)
        staging.rmdir()
        os.utime(archive)
        return True

    def _unpacked(self, archive: Path) -> Path | None:
        """Return the folder holding `archive` unpacked, unpacking it the first time; None when it is corrupt.

        Keys are written once, so the folder stays valid as long as its archive. Several
        workers may unpack at once: each into its own staging folder, and the first rename wins.
        """
        tree = archive.with_name(archive.name.removesuffix(ARCHIVE_SUFFIX) + TREE_SUFFIX)
        if tree.is_dir():
            return tree
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=archive.parent))
        try:
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(staging, filter="data")
        except (tarfile.TarError, OSError, EOFError) as error:
            log.warning("discarding corrupt cache archive %s: %s", archive, error)
            archive.unlink(missing_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
            return None
        try:
            staging.rename(tree)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
        return tree

    def save(self, key: str, source: Path) -> bool:
        """Archive `source` under `key` unless that key is saved already; return whether it wrote one.

        The archive is written to a temporary file and renamed into place, so a
        reader sees either no archive or a whole one.
        """
        target = self.archive_path(key)
        if target.exists() or not source.is_dir():
            return False
        # A folder left from an archive that was deleted by hand would not match the new one.
        shutil.rmtree(target.with_name(key + TREE_SUFFIX), ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".save-", suffix=".partial", dir=self.folder)
        try:
            with os.fdopen(handle, "wb") as raw:
                with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=1) as tar:
                    for entry in sorted(source.iterdir()):
                        tar.add(entry, arcname=entry.name)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        log.info("saved cache %s (%d bytes)", target, target.stat().st_size)
        return True
