"""The state of a local directory that `deno-ci run` reads before it plans: git facts, caches and the last plan.

Kept apart from `app.local_run`, whose imports take longer than git and planning:
the command starts git first and imports the rest while git and then Deno work.
"""

import hashlib
import json
import logging
import os
import subprocess
import tempfile
from pathlib import Path

from app.runs.events import COMMIT_CHANGES, make_event

log = logging.getLogger(__name__)


def start_reading(directory: Path, branch: str | None) -> dict[str, subprocess.Popen]:
    """Start the read-only git commands that `read_directory` needs, side by side, and return them.

    A caller starts them before its slower imports, and passes them to `read_directory`.
    """
    commands = {
        "head": ["log", "-1", "--format=%H%x00%T%x00%an <%ae>%x00%B"],
        "committed": [*COMMIT_CHANGES, "HEAD"],
        "working": ["diff", "--name-only", "-z", "HEAD"],
        "status": ["status", "--porcelain", "--untracked-files=normal"],
        # git status does not report changes to files marked skip-worktree or assume-unchanged.
        "flags": ["ls-files", "-v", "-z"],
    }
    if branch is None:
        commands["branch"] = ["symbolic-ref", "--short", "-q", "HEAD"]
    return {name: subprocess.Popen(["git", *args], cwd=directory, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                   text=True, errors="replace") for name, args in commands.items()}


def _outputs(processes: dict[str, subprocess.Popen]) -> dict[str, str]:
    """Return each git command's output, or "" where git failed (not a repository)."""
    outputs = {}
    for name, process in processes.items():
        output, _ = process.communicate()
        # Only the final newline goes: with -z, a name may start or end with a space.
        outputs[name] = output.rstrip("\n") if process.returncode == 0 else ""
    return outputs


def read_directory(directory: Path, kind: str, branch: str | None, tag: str | None, pipeline_path: str,
                   started: dict[str, subprocess.Popen] | None = None) -> tuple[dict, str | None]:
    """Describe the directory's current state as an event of `kind`; also return its clean tree id.

    The tree id is HEAD's when the directory contains exactly that tree (nothing changed
    or untracked, no file marked to be left out of git status, the pipeline file
    tracked), else None. Ignored files are not looked at: a pipeline that imports
    one is checked against the version that was there when its tree first passed.
    `started` are the commands from `start_reading(directory, branch)`.
    """
    facts = _outputs(started if started is not None else start_reading(directory, branch))
    commit, tree, author, message = (facts["head"].split("\0", 3) + ["", "", "", ""])[:4]
    branch = branch if branch is not None else (facts["branch"] or None)
    event = make_event(
        kind,
        branch=None if tag else branch,
        tag=tag,
        commit=commit or None,
        author=author or None,
        message=message.strip() or None,
        changed_files=sorted({name for output in (facts["committed"], facts["working"]) for name in output.split("\0") if name}),
    )
    entries = [entry for entry in facts["flags"].split("\0") if entry]
    hidden = any(entry[:1] == "S" or entry[:1].islower() for entry in entries)
    # In a folder that its repository ignores, git status reports nothing and lists no file.
    tracked = any(entry[2:] == pipeline_path for entry in entries)
    return event, (tree or None) if facts["status"] == "" and not hidden and tracked else None


def keep_out_of_git(data_dir: Path) -> None:
    """Create the data folder with a `.gitignore` that ignores all of it, as Python's venv does.

    Run in a repository, `deno-ci run` keeps its caches in `./var` by default. Without
    the file, `git status` would list them and the next run would copy them into every stage.
    """
    ignore_file = data_dir / ".gitignore"
    if ignore_file.exists():
        return
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        ignore_file.write_text("# Made by deno-ci: this data folder belongs to no repository.\n*\n")
    except OSError:
        # A data folder the user cannot write fails later, where a cache or a plan is written.
        pass


def local_scope(directory: Path) -> str:
    """Return the name under which the caches of runs of `directory` are kept in the data folder."""
    return "local-" + hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]


def plan_deno_dir(data_dir: Path, directory: Path) -> Path:
    """Return the DENO_DIR for planning `directory`, kept between runs so the next type check is fast."""
    return data_dir / "plan-caches" / local_scope(directory)


def _last_plan_file(data_dir: Path, directory: Path) -> Path:
    return data_dir / "plan-caches" / f"{local_scope(directory)}.last-plan.json"


def last_plan(data_dir: Path, directory: Path, toolchain: str) -> tuple[dict | None, str | None]:
    """Return the plan of the previous run of `directory` and its reuse key, or None for either.

    The next run prepares the plan's first stage while it plans, or takes the plan as it
    is when its reuse key is the same (`app.pipelines.plan_reuse`). A plan of another SDK
    or Deno (`toolchain`) may lack fields that this one reads, and a plan edited by hand
    no longer matches its digest, so neither is returned.
    """
    try:
        document = json.loads(_last_plan_file(data_dir, directory).read_text())
    except (OSError, ValueError):
        return None, None
    if not isinstance(document, dict) or document.get("toolchain") != toolchain:
        return None, None
    plan, key = document.get("plan"), document.get("key")
    if not isinstance(plan, dict) or document.get("digest") != _digest(plan):
        return None, None
    return plan, key if isinstance(key, str) else None


def _digest(plan: dict) -> str:
    return hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()


def remember_plan(data_dir: Path, directory: Path, plan: dict, key: str | None, toolchain: str) -> None:
    """Keep the plan and its reuse key (None when it is not to be reused) for the next run of `directory`."""
    target = _last_plan_file(data_dir, directory)
    temporary = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=".last-plan-", dir=target.parent)
        with os.fdopen(handle, "w") as file:
            json.dump({"plan": plan, "key": key, "toolchain": toolchain, "digest": _digest(plan)}, file)
        os.replace(temporary, target)
    except OSError as error:
        # Only the next run's head start is lost: it plans and guesses its first stage anew.
        log.warning("cannot keep the plan of %s in %s: %s. Check that the data folder is writable.",
                    directory, target, error)
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
