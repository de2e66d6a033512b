"""The normalised event a run starts from, in the shape the SDK reads from `DENO_CI_EVENT`."""

import json

EVENT_KINDS = ("push", "pull_request", "merge", "tag", "manual", "schedule")
# The event travels to every stage in an environment variable, where Linux limits a single
# string to 128 KiB. JSON may write a character as six bytes, so a commit message or pull
# request title longer than this is cut, and an author too.
MAX_MESSAGE_CHARACTERS = 8_192
MAX_AUTHOR_CHARACTERS = 512
# A list of changed files longer than this as JSON is replaced by null ("unknown"), so
# `paths` filters select the stage, as they do when the forge did not say what changed.
MAX_CHANGED_FILES_BYTES = 32 * 1024
# Git arguments, before the commit, that list the files a commit changed against its first
# parent, NUL-separated. diff-tree would list nothing for a merge commit.
COMMIT_CHANGES = ("log", "-1", "-m", "--first-parent", "--name-only", "--format=", "-z")


def make_event(
    kind: str,
    *,
    branch: str | None = None,
    tag: str | None = None,
    commit: str | None = None,
    before: str | None = None,
    pull_request: dict | None = None,
    author: str | None = None,
    message: str | None = None,
    changed_files: list[str] | None = None,
) -> dict:
    """Return an event document; `pull_request` holds number, sourceBranch, targetBranch and fork."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"event kind {kind!r} is invalid: expected one of {', '.join(EVENT_KINDS)}")
    if tag:
        ref = f"refs/tags/{tag}"
    elif branch:
        ref = f"refs/heads/{branch}"
    else:
        ref = None
    return {
        "kind": kind,
        "ref": ref,
        "branch": branch,
        "tag": tag,
        "commit": commit,
        "before": before,
        "pullRequest": pull_request,
        "author": cut_message(author, MAX_AUTHOR_CHARACTERS),
        "message": cut_message(message),
        "changedFiles": bounded_changed_files(list(changed_files or [])),
    }


def cut_message(message: str | None, limit: int = MAX_MESSAGE_CHARACTERS) -> str | None:
    """Return `message` cut to `limit` characters, saying how many more there were."""
    if message is None or len(message) <= limit:
        return message
    return f"{message[:limit]}... ({len(message) - limit} more characters)"


def bounded_changed_files(files: list[str] | None) -> list[str] | None:
    """Return `files`, or None when their list would not fit in the event's share of the environment."""
    if files is None:
        return None
    if len(json.dumps(files, ensure_ascii=False).encode()) > MAX_CHANGED_FILES_BYTES:
        return None
    return files
