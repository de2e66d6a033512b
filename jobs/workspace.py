"""Git checkouts: a bare mirror per project, and a fresh copy of one commit per stage.

Git is the real `git` command. Workspaces are full copies, not hard links into the
mirror, because a stage may write anywhere in its workspace, `.git` included.
"""

import fcntl
import logging
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

from app.runs.events import COMMIT_CHANGES

log = logging.getLogger(__name__)

ZERO_SHA = "0" * 40
GIT_TIMEOUT = 600
# For the platform's own git commands only. A stage's git inside its checkout keeps reflogs.
NO_REFLOGS = ("-c", "core.logAllRefUpdates=false")
# The transports a clone URL may use (see VALID_CLONE_URL in app/projects.py).
ALLOWED_PROTOCOLS = "http:https:ssh:git:file"


class GitError(RuntimeError):
    """A git command failed; the message says which and why."""


def git(*args: str, cwd: Path | None = None, timeout: float = GIT_TIMEOUT, errors: str = "strict") -> str:
    """Run git with no prompts and return its stdout; raise GitError with git's own message."""
    # GIT_ALLOW_PROTOCOL also stops remote helpers ("fd::", "ext::") in a project's stored clone
    # URL, in a fork's URL from a webhook, and in submodules.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C",
           "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS}
    try:
        result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, errors=errors, env=env,
                                timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise GitError(f"git {args[0]} timed out after {timeout:.0f} s") from error
    if result.returncode != 0:
        raise GitError(result.stderr.strip() or f"git {args[0]} exited with {result.returncode}")
    return result.stdout


@contextmanager
def locked(path: Path):
    """Hold an exclusive lock on `path` (a lock file) for the block, across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def update_mirror(data_dir: Path, project_id: int, clone_url: str, *, fetch_url: str | None = None,
                  extra_ref: dict | None = None) -> Path:
    """Clone or fetch the project's bare mirror under the data folder and return its path.

    `fetch_url` is the address to fetch from when it differs from `clone_url` (one with
    credentials); it is used on the command line only, so the mirror's stored `origin`
    stays `clone_url`. `extra_ref` ({"ref": ..., "url": optional}) is fetched as well: a
    pull request's head from a fork lives only under such a ref or in the fork.
    """
    mirror = data_dir / "mirrors" / f"{project_id}.git"
    source = fetch_url or clone_url
    with locked(mirror.with_suffix(".lock")):
        if not (mirror / "HEAD").exists():
            log.info("cloning mirror of project %s", project_id)
            try:
                git("clone", "--mirror", "--quiet", source, str(mirror))
                if fetch_url:
                    git("remote", "set-url", "origin", clone_url, cwd=mirror)
            except GitError as error:
                raise GitError(f"Cannot clone repository {clone_url!r}: {_redact(error, fetch_url).rstrip('.')}. "
                               "Check the URL and the access rights.") from None
        else:
            try:
                git("fetch", "--prune", "--quiet", source, "+refs/*:refs/*", cwd=mirror)
            except GitError as error:
                raise GitError(f"Cannot fetch repository {clone_url!r}: {_redact(error, fetch_url)}") from None
        if extra_ref:
            _fetch_extra_ref(mirror, extra_ref, source, fetch_url)
    return mirror


def _fetch_extra_ref(mirror: Path, extra_ref: dict, source: str, fetch_url: str | None) -> None:
    ref, url = str(extra_ref.get("ref") or ""), extra_ref.get("url") or source
    # The ref comes from a webhook payload: it must not pass for a git option.
    if not ref.startswith("refs/") or any(character.isspace() for character in ref):
        raise GitError(f"Cannot fetch {ref!r}: a ref to fetch must start with 'refs/' and contain no spaces")
    try:
        # Objects fetched into FETCH_HEAD stay in the mirror for stages to check out.
        git("fetch", "--quiet", url, ref, cwd=mirror)
    except GitError as error:
        raise GitError(f"Cannot fetch {ref!r}: {_redact(error, fetch_url)}") from None


def _redact(error: GitError, fetch_url: str | None) -> str:
    message = str(error)
    return message.replace(fetch_url, "<address with credentials>") if fetch_url else message


def has_commit(data_dir: Path, project_id: int, sha: str | None) -> bool:
    """Return whether the project's mirror already holds commit `sha`, so no fetch is needed."""
    mirror = data_dir / "mirrors" / f"{project_id}.git"
    if not sha or not (mirror / "HEAD").exists():
        return False
    try:
        git("cat-file", "-e", f"{sha}^{{commit}}", cwd=mirror)
    except GitError:
        return False
    return True


def resolve_commit(mirror: Path, revision: str) -> str:
    """Return the full commit id of a branch, tag or commit id in the mirror."""
    for candidate in (f"refs/heads/{revision}", f"refs/tags/{revision}", revision):
        try:
            return git("rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}", cwd=mirror).strip()
        except GitError:
            continue
    raise GitError(f"No branch, tag or commit named {revision!r} in the repository")


def commit_details(mirror: Path, sha: str) -> dict:
    """Return the author, message and tree id of a commit."""
    output = git("log", "-1", "--format=%T%x00%an <%ae>%x00%B", sha, cwd=mirror)
    tree, _, rest = output.partition("\x00")
    author, _, message = rest.partition("\x00")
    return {"author": author, "message": message.strip(), "tree": tree}


def changed_files(mirror: Path, before: str | None, after: str) -> list[str]:
    """List the paths changed by a push; without a usable `before`, those of the head commit against its first parent.

    Paths are read NUL-separated and unquoted, so a name with spaces or non-ASCII letters
    stays whole; bytes that are not UTF-8 become U+FFFD.
    """
    if before and before != ZERO_SHA:
        try:
            return split_paths(git("diff", "--name-only", "-z", f"{before}..{after}", cwd=mirror, errors="replace"))
        except GitError:
            log.debug("before commit %s is not in the mirror; using the head commit only", before)
    return split_paths(git(*COMMIT_CHANGES, after, cwd=mirror, errors="replace"))


def split_paths(output: str) -> list[str]:
    """Return the paths of git's NUL-separated `-z` output."""
    return [name for name in output.split("\0") if name]


def refresh_checkout(mirror: Path, sha: str, destination: Path, clone_url: str) -> Path:
    """Bring a checkout the platform keeps (the planning folder) to commit `sha`, cloning only the first time.

    Fetching one commit and resetting is several times faster than a new clone.
    """
    if not (destination / ".git").is_dir():
        return checkout(mirror, sha, destination, clone_url)
    try:
        git("fetch", "--quiet", "--no-tags", str(mirror), sha, cwd=destination)
        git("checkout", "--quiet", "--force", "--detach", sha, cwd=destination)
        git("clean", "--quiet", "-ffdx", cwd=destination)
    except GitError:
        return checkout(mirror, sha, destination, clone_url)
    return destination


def checkout(mirror: Path, sha: str, destination: Path, clone_url: str) -> Path:
    """Make a fresh working copy of one commit at `destination`, replacing whatever a killed worker left there."""
    shutil.rmtree(destination, ignore_errors=True)
    destination.parent.mkdir(parents=True, exist_ok=True)
    return checkout_into(mirror, sha, destination, clone_url)


def checkout_into(mirror: Path, sha: str, destination: Path, clone_url: str) -> Path:
    """Make a working copy of one commit in `destination`, which must be missing or an empty folder.

    The folder stays the same one, so a sandbox that already mounts it gets the files.
    """
    # Without the template (sample hooks, description) and reflogs, a checkout has half the
    # files of a plain clone. Stages make and delete checkouts many times a second.
    git(*NO_REFLOGS, "clone", "--template=", "--no-hardlinks", "--no-checkout", "--quiet", str(mirror), str(destination))
    git(*NO_REFLOGS, "checkout", "--quiet", "--detach", sha, cwd=destination)
    # The mirror's path means nothing inside the sandbox; the project's URL does.
    git("remote", "set-url", "origin", clone_url, cwd=destination)
    return destination


def write_pipeline_override(workspace: Path, pipeline_path: str, text: str | None) -> None:
    """Replace the checked-out pipeline file with the edited text a run from the editor carries, if any."""
    if text is None:
        return
    path = workspace / pipeline_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
