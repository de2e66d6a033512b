"""Artifacts: files a stage publishes, kept as one archive per name and run.

Before a stage starts, every artifact its run published so far is unpacked under
`.deno-ci/artifacts/<name>/` in its workspace, where the SDK's `artifactPath(name)`
finds it, the way GitLab passes artifacts of earlier stages to later ones.
"""

import logging
import os
import posixpath
import re
import tarfile
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

ARTIFACTS_IN_WORKSPACE = Path(".deno-ci") / "artifacts"
VALID_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ArtifactError(ValueError):
    """An artifact's name or paths are invalid, or it matched no file."""


def _matching_files(workspace: Path, patterns: list[str]) -> tuple[list[Path], list[str]]:
    """Return the files and symbolic links to archive, and a note for each link left out."""
    files: dict[Path, None] = {}
    left_out: dict[str, None] = {}
    root = workspace.resolve()
    for pattern in patterns:
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise ArtifactError(f"artifact path {pattern!r} must be relative to the workspace and stay inside it")
        named = workspace / pattern
        matches = [named] if named.exists() or named.is_symlink() else list(workspace.glob(pattern))
        for match in matches:
            # A symbolic link is never followed: a stage could point one at / and make
            # the worker walk the whole host after the stage ended.
            if not match.is_symlink() and not match.resolve().is_relative_to(root):
                continue
            for path in _files_below(match) if match.is_dir() and not match.is_symlink() else [match]:
                if path.is_symlink():
                    problem = _link_problem(path, workspace)
                    if problem:
                        left_out[f"{path.relative_to(workspace)} -> {os.readlink(path)}: {problem}"] = None
                        continue
                    files[path] = None
                elif path.is_file():
                    files[path] = None
    return sorted(files), sorted(left_out)


def _link_problem(link: Path, workspace: Path) -> str:
    """Return why the symbolic link cannot be kept in an artifact, or "" when it can.

    A link is kept when it is relative and does not lead above the workspace. Unpacked,
    it then stays inside the artifact's folder, where the unpacking's filter accepts it.
    """
    target = os.readlink(link)
    if posixpath.isabs(target):
        return "an absolute link would lead out of the workspace where the artifact is unpacked"
    relative = posixpath.normpath(posixpath.join(posixpath.dirname(link.relative_to(workspace).as_posix()), target))
    if relative == ".." or relative.startswith("../"):
        return "it leads out of the workspace"
    return ""


def _files_below(folder: Path) -> list[Path]:
    found = []
    for directory, folders, names in os.walk(folder, followlinks=False):
        found.extend(Path(directory) / name for name in names)
        # os.walk lists a link to a folder among the folders, and does not enter it.
        found.extend(Path(directory) / name for name in folders if (Path(directory) / name).is_symlink())
    return found


def left_out_link_note(artifact: str, note: str) -> str:
    """Return the log line for a link that `ArtifactStore.save` left out of `artifact`."""
    return f"Artifact {artifact!r} leaves out the link {note}"


class ArtifactStore:
    """Archives of one run's artifacts in a folder of their own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def save(self, name: str, workspace: Path, patterns: list[str]) -> tuple[Path, list[str]]:
        """Archive the workspace files matching `patterns` as artifact `name`.

        Return the archive and a note on each symbolic link that was left out. Links are
        kept as links when they lead to a place inside the workspace, and empty folders are not kept.
        """
        if not VALID_NAME.match(name):
            raise ArtifactError(f"artifact name {name!r} is invalid: use letters, digits, '.', '_' and '-'")
        files, left_out = _matching_files(workspace, patterns)
        if not files:
            raise ArtifactError(f"artifact {name!r} matched no file in the workspace for {patterns}")
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / f"{name}.tar.gz"
        handle, temporary = tempfile.mkstemp(prefix=".artifact-", dir=self.folder)
        with os.fdopen(handle, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as tar:
                for path in files:
                    tar.add(path, arcname=str(path.relative_to(workspace)), recursive=False)
        os.replace(temporary, target)
        log.info("saved artifact %s with %d files", target, len(files))
        return target, left_out

    def restore_all(self, workspace: Path) -> list[str]:
        """Unpack every saved artifact into the workspace; return their names."""
        if not self.folder.is_dir():
            return []
        names = []
        for archive in sorted(self.folder.glob("*.tar.gz")):
            name = archive.name.removesuffix(".tar.gz")
            destination = workspace / ARTIFACTS_IN_WORKSPACE / name
            destination.mkdir(parents=True, exist_ok=True)
            with tarfile.open(archive, "r:gz") as tar:
                tar.extractall(destination, filter="data")
            names.append(name)
        return names
