"""The pipeline editor's work: read a branch's pipeline file, validate edited text, run it, commit it.

Validation runs the same `plan_and_check` as a run's preparation, on a copy of the
repository at the branch head with the edited text in place of the pipeline file,
so relative imports and templates resolve as they will in a run.
"""

import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from app.extensions import db
from app.forges import FORGES
from app.models import Project, Run, User
from app.pipelines import runner
from app.projects import local_clone_path
from app.pipelines.editor_errors import EditorError, SaveForbiddenError  # noqa: F401  (the views catch EditorError as editor.EditorError)
from app.pipelines.forge_save import author_email, commit_through_forge
from app.runs import service
from app.runs.events import make_event
from jobs import workspace as git_workspace
from jobs.executor import get_executor

log = logging.getLogger(__name__)

MAX_PIPELINE_BYTES = 512 * 1024
# Checkouts kept for validation, per project; older ones are removed.
CHECKOUTS_KEPT = 3


@dataclass(frozen=True)
class Validation:
    """The outcome of validating edited pipeline text."""

    commit: str
    problems: list[dict]
    stages: list[dict]


def _data_dir() -> Path:
    return Path(current_app.config["DATA_DIR"])


def check_text(text: str) -> None:
    """Raise EditorError for text too large to be a pipeline file."""
    if len(text.encode()) > MAX_PIPELINE_BYTES:
        raise EditorError(f"The pipeline file is larger than {MAX_PIPELINE_BYTES // 1024} KiB.")


def branch_head(project: Project, branch: str) -> tuple[Path, str]:
    """Fetch the project's mirror and return it with the commit at the head of `branch`."""
    try:
        mirror = git_workspace.update_mirror(_data_dir(), project.id, project.clone_url)
        return mirror, git_workspace.resolve_commit(mirror, branch)
    except git_workspace.GitError as error:
        raise EditorError(f"Cannot read branch {branch!r} of {project.name!r}: {error}") from error


def list_branches(project: Project) -> list[str]:
    """List the branches of the project's mirror, the default branch first."""
    mirror = _data_dir() / "mirrors" / f"{project.id}.git"
    try:
        output = git_workspace.git("for-each-ref", "--format=%(refname:short)", "refs/heads", cwd=mirror)
    except (git_workspace.GitError, FileNotFoundError, NotADirectoryError):
        return [project.default_branch]
    names = sorted(set(output.split()) - {project.default_branch})
    return [project.default_branch, *names]


def read_pipeline(project: Project, branch: str) -> tuple[str, str]:
    """Return (pipeline file text, commit) at the head of `branch`; an empty text if the file is missing."""
    mirror, sha = branch_head(project, branch)
    try:
        return git_workspace.git("show", f"{sha}:{project.pipeline_path}", cwd=mirror), sha
    except git_workspace.GitError:
        return "", sha


def _checkout(project: Project, mirror: Path, sha: str) -> Path:
    folder = _data_dir() / "editor-checkouts" / str(project.id)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / sha
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_dir():
            git_workspace.checkout(mirror, sha, folder / f"{sha}.partial", project.clone_url)
            os.rename(folder / f"{sha}.partial", target)
            _remove_old_checkouts(folder)
    return target


def _remove_old_checkouts(folder: Path) -> None:
    checkouts = sorted((path for path in folder.iterdir() if path.is_dir()), key=lambda path: path.stat().st_mtime)
    for old in checkouts[:-CHECKOUTS_KEPT]:
        shutil.rmtree(old, ignore_errors=True)


def _problem_json(problem: runner.Problem, pipeline_file: Path, pipeline_path: str) -> dict:
    in_pipeline = problem.file in (str(pipeline_file), pipeline_file.as_uri(), pipeline_path)
    message = problem.message if in_pipeline else f"{Path(problem.file).name}: {problem.message}"
    return {"line": problem.line if in_pipeline else None, "column": problem.column if in_pipeline else None,
            "message": message}


def validate(project: Project, branch: str, text: str) -> Validation:
    """Plan and type-check `text` as the project's pipeline file at the head of `branch`."""
    check_text(text)
    mirror, sha = branch_head(project, branch)
    source = _checkout(project, mirror, sha)
    event = make_event("push", branch=branch, commit=sha)
    deno_dir = _data_dir() / "plan-caches" / str(project.id)
    pipeline_path = project.pipeline_path
    # Planning may take up to a minute; the request must not hold a database connection meanwhile.
    db.session.close()
    with tempfile.TemporaryDirectory(prefix="deno-ci-editor-") as scratch:
        workspace = Path(scratch) / "workspace"
        shutil.copytree(source, workspace, ignore=shutil.ignore_patterns(".git"), symlinks=True)
        pipeline_file = workspace / pipeline_path
        git_workspace.write_pipeline_override(workspace, pipeline_path, text)
        # The edited text is the user's code: it is planned in the stages' sandbox, like a run's pipeline.
        executor = get_executor(current_app.config["EXECUTOR"])
        try:
            plan = runner.plan_and_check(workspace, pipeline_path, event, deno_dir, executor)
        except runner.PipelineError as error:
            problems = [_problem_json(problem, pipeline_file, pipeline_path) for problem in error.problems]
            return Validation(sha, problems, [])
    return Validation(sha, [], plan["stages"])


def start_edited_run(project: Project, branch: str, text: str) -> Run:
    """Start a run of `text` in place of the pipeline file, on the head of `branch`, without committing it."""
    check_text(text)
    branch_head(project, branch)
    return service.create_run(project, trigger="editor", event=make_event("manual", branch=branch),
                              pipeline_override=text)


def local_repository(project: Project) -> Path | None:
    """Return the folder of a project connected by local path, or None for a remote repository."""
    if project.forge != "git":
        return None
    folder = local_clone_path(project.clone_url)
    return folder if folder is not None and folder.is_dir() else None


def save_pipeline(project: Project, branch: str, text: str, user: User, message: str,
                  base_commit: str | None = None) -> str:
    """Commit `text` as the pipeline file on `branch`; return the new commit.

    A project connected to a forge is committed to through the forge's API, and
    `base_commit` (the commit the text was edited from) lets the forge reject the commit
    when someone changed the file meanwhile. A local repository is committed to with git.
    Raises EditorError, or one of its subclasses, when the repository cannot take the commit.
    """
    check_text(text)
    message = message or f"Update {project.pipeline_path}"
    if project.forge in FORGES and project.forge_repo:
        return commit_through_forge(project, branch, text, user, message, base_commit)
    folder = local_repository(project)
    if folder is None:
        raise EditorError(f"Cannot save to {project.clone_url}: the project is neither connected to a forge nor a "
                          f"local repository. Commit {project.pipeline_path} from a clone, or connect the "
                          "repository through a forge sign-in.")
    if not user.is_admin:
        # Committing writes into a folder of the server, which only administrators may change.
        raise SaveForbiddenError(f"Only administrators may save to a repository on the server's file system "
                                       f"({folder}). Commit {project.pipeline_path} from a clone instead.")
    # NOTE: `base_commit` is not checked here: the local commit replaces the file at the branch head.
    return _commit_file(folder, branch, project.pipeline_path, text, user, message)


def _git(folder: Path, *args: str, env: dict | None = None, stdin: str | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, input=stdin,
                            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", **(env or {})},
                            timeout=60)
    if result.returncode != 0:
        raise EditorError(f"Cannot commit to {folder}: git {args[0]} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def _commit_file(folder: Path, branch: str, path: str, text: str, user: User, message: str) -> str:
    """Commit one file on `branch` with git plumbing, so a bare repository works as well as a clone.

    When the branch is checked out in a clone, its working tree must be clean and is moved to the
    new commit afterwards; the branch is updated only if nobody moved it meanwhile.
    """
    ref = f"refs/heads/{branch}"
    old = _git(folder, "rev-parse", "--verify", f"{ref}^{{commit}}")
    bare = _git(folder, "rev-parse", "--is-bare-repository") == "true"
    checked_out = not bare and _git(folder, "symbolic-ref", "--quiet", "HEAD") == ref
    if checked_out and _git(folder, "status", "--porcelain", "--untracked-files=no"):
        raise EditorError(f"Cannot commit to branch {branch!r}: it is checked out in {folder} with uncommitted "
                          "changes. Commit or stash them first.")
    identity = {"GIT_AUTHOR_NAME": user.username, "GIT_AUTHOR_EMAIL": author_email(user)}
    identity |= {"GIT_COMMITTER_NAME": identity["GIT_AUTHOR_NAME"], "GIT_COMMITTER_EMAIL": identity["GIT_AUTHOR_EMAIL"]}
    with tempfile.TemporaryDirectory(prefix="deno-ci-save-") as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        blob = _git(folder, "hash-object", "-w", "--stdin", stdin=text)
        _git(folder, "read-tree", old, env=index)
        _git(folder, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=index)
        tree = _git(folder, "write-tree", env=index)
    new = _git(folder, "commit-tree", tree, "-p", old, "-m", message, env=identity)
    _git(folder, "update-ref", "-m", "deno-ci editor: save the pipeline", ref, new, old)
    if checked_out:
        _git(folder, "reset", "--hard", "--quiet", new)
    log.info("committed %s on %s in %s as %s", path, branch, folder, new)
    return new
