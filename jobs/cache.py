"""Dependency caches: a project's `DENO_DIR` saved as an archive and restored before a stage.

An archive is addressed by a key made from the path and content of the files that
decide dependencies (`deno.lock`, `deno.json`, `deno.jsonc`, `package.json` and any
files a stage adds), so two lock files never share a key. A key's archive is written
once, like GitHub Actions' caches: the first stage that succeeds with it saves it.
When no archive has the exact key, the project's newest archive is restored instead,
so a changed lock file only downloads what changed.

An archive is unpacked once, into a folder beside it. Each restore copies that
folder, so a stage does not pay for decompressing the archive again.

A stage's `cache.paths` (folders or files of its workspace) are archived with it,
under `.deno-ci-workspace/`, and count in the key. A restore puts them back into the
workspace, replacing what the checkout has there, like GitHub Actions' cache action.
A path below a symbolic link of the workspace is neither saved nor restored: on the
host, the link could lead out of the workspace.
"""

import hashlib
import logging
import os
import posixpath
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

KEY_FILES = ("deno.lock", "deno.json", "deno.jsonc", "package.json")
# The folder of an archive with the stage's `cache.paths` in it, beside the DENO_DIR's own files.
WORKSPACE_FOLDER = ".deno-ci-workspace"
ARCHIVE_SUFFIX = ".tar.gz"
# Beside each archive, the same files unpacked, which later restores copy.
TREE_SUFFIX = ".tree"


def cache_key(workspace: Path, extra_files: list[str] = (), paths: list[str] = ()) -> str:
    """Return the cache key of a workspace: a hash over each key file's path and content, and the cached `paths`."""
    digest = hashlib.sha256()
    for name in sorted({*KEY_FILES, *extra_files}):
        path = workspace / name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        digest.update(b"\0")
    if paths:
        # Stages that cache other paths must not share an archive: each would miss its own.
        digest.update(b"paths\0" + "\0".join(sorted(set(paths))).encode())
    return "deno-" + digest.hexdigest()[:40]


def stage_key_files(options: dict) -> list[str]:
    """Return the files a stage's `cache` option adds to its cache key."""
    return (options.get("cache") or {}).get("key") or []


def stage_cache_paths(options: dict) -> list[str]:
    """Return the workspace paths a stage's `cache` option keeps between runs."""
    return (options.get("cache") or {}).get("paths") or []


def stage_cache_key(workspace: Path, options: dict) -> str:
    """Return the cache key of a stage with `options` in `workspace`."""
    return cache_key(workspace, stage_key_files(options), stage_cache_paths(options))


def has_own_cache_key(options: dict) -> bool:
    """Return whether a stage's `cache` option makes its key differ from the project's default one."""
    return bool(stage_key_files(options) or stage_cache_paths(options))


def _inside_without_links(workspace: Path, relative: str) -> Path | None:
    """Return `workspace / relative` when it is inside and no folder on the way there is a symbolic link, else None."""
    target = workspace
    parts = Path(relative).parts
    if not parts or parts[0] in ("/", ".."):
        return None
    for part in parts[:-1]:
        target = target / part
        if target.is_symlink():
            return None
    return workspace.joinpath(*parts)


def restore_paths(deno_dir: Path, workspace: Path, paths: list[str]) -> list[str]:
    """Move the cached `paths` that a restore put into `deno_dir` into `workspace`; return those moved.

    A path already in the workspace is replaced. Whatever else the archive held for
    other paths is removed, so it never shows in the stage's DENO_DIR.
    """
    cached = deno_dir / WORKSPACE_FOLDER
    moved = []
    for relative in paths if cached.is_dir() else []:
        source, target = _inside_without_links(cached, relative), _inside_without_links(workspace, relative)
        if source is None or not source.exists() and not source.is_symlink():
            continue
        if target is None:
            log.warning("cache path %s not restored: it is not inside the workspace, or a folder on its way "
                        "is a symbolic link", relative)
            continue
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        source.rename(target)
        moved.append(relative)
    shutil.rmtree(cached, ignore_errors=True)
    return moved


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

    def newest_key(self) -> str | None:
        """Return the key of the newest archive, which `restore` falls back to, or None when there is none."""
        archives = self._newest_first()
        return archives[0].name.removesuffix(ARCHIVE_SUFFIX) if archives else None

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

    def save(self, key: str, source: Path, workspace: Path | None = None, paths: list[str] = ()) -> bool:
        """Archive `source` (a DENO_DIR) and the `paths` of `workspace` under `key`, unless that key is saved already.

        Return whether it wrote one. The archive is written to a temporary file and
        renamed into place, so a reader sees either no archive or a whole one.
        """
        target = self.archive_path(key)
        if target.exists() or not source.is_dir():
            return False
        # A folder left from an archive that was deleted by hand would not match the new one.
        shutil.rmtree(target.with_name(key + TREE_SUFFIX), ignore_errors=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".save-", suffix=".partial", dir=self.folder)
        leave_out = _own_transpiled_files(workspace)
        try:
            with os.fdopen(handle, "wb") as raw:
                with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=1) as tar:
                    for entry in sorted(source.iterdir()):
                        if entry.name != WORKSPACE_FOLDER:
                            tar.add(entry, arcname=entry.name, filter=leave_out)
                    for relative in paths if workspace is not None else []:
                        self._add_path(tar, workspace, relative)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        log.info("saved cache %s (%d bytes)", target, target.stat().st_size)
        return True

    @staticmethod
    def _add_path(tar: tarfile.TarFile, workspace: Path, relative: str) -> None:
        path = _inside_without_links(workspace, relative)
        if path is None:
            log.warning("cache path %s not saved: it is not inside the workspace, or a folder on its way "
                        "is a symbolic link", relative)
        elif path.exists() or path.is_symlink():
            tar.add(path, arcname=f"{WORKSPACE_FOLDER}/{Path(relative).as_posix()}", filter=_link_inside)


def _own_transpiled_files(workspace: Path | None):
    """Return a tar filter that leaves out Deno's transpiled copies of the run's own files.

    Deno keeps them under `gen/file/<absolute path>`. A run's folder, two levels above its
    workspaces, has a path that no later run shares, so a restore would copy them for nothing.
    """
    if workspace is None:
        return None
    run_folder = "gen/file" + workspace.absolute().parent.parent.as_posix()

    def leave_out(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if member.name == run_folder or member.name.startswith(run_folder + "/") else member

    return leave_out


def _link_inside(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Leave out a link that leads out of the cached path: the restore would take the whole archive for corrupt."""
    if not (member.issym() or member.islnk()):
        return member
    # A hard link names its target from the archive's root, a symbolic one from its own folder.
    base = "" if member.islnk() else posixpath.dirname(member.name)
    target = posixpath.normpath(posixpath.join(base, member.linkname))
    if member.linkname.startswith("/") or not target.startswith(WORKSPACE_FOLDER + "/"):
        log.warning("cache path entry %s not saved: its link leads out of the cached paths (%s)",
                    member.name.removeprefix(WORKSPACE_FOLDER + "/"), member.linkname)
        return None
    return member
