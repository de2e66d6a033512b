"""Bitbucket Cloud payloads to normalised events. Pure functions: no I/O, no Flask."""

from app.forges.base import HookOutcome, MalformedPayloadError, is_skip_ci, payload_field
from app.runs.events import make_event

RUN_ACTIONS = {"created", "updated"}
# Bitbucket names a branch "branch" in Git repositories; the other two are left from Mercurial.
BRANCH_TYPES = {"branch", "named_branch", "bookmark"}


def repository_name(payload: dict) -> str | None:
    repository = payload.get("repository")
    return repository.get("full_name") if isinstance(repository, dict) else None


def _author(commit: dict) -> str | None:
    author = commit.get("author") or {}
    return (author.get("user") or {}).get("nickname") or author.get("raw")


def push(payload: dict) -> HookOutcome:
    """Convert a `repo:push` payload: branch push, tag push, or deletion of either.

    NOTE: a push of several refs at once (`git push --all`) lists several changes; only
    the first starts a run.
    """
    repository = payload_field(payload, "repository", "full_name")
    changes = payload_field(payload, "push", "changes")
    if not isinstance(changes, list) or not changes:
        return HookOutcome.nothing("the push lists no change", repository)
    change = changes[0]
    new, old = change.get("new"), change.get("old")
    if not new:
        ref_type, name = (old or {}).get("type"), (old or {}).get("name")
        label = "tag" if ref_type == "tag" else "branch"
        return HookOutcome.nothing(f"{label} {name!r} was deleted", repository)
    ref_type, name, target = payload_field(new, "type"), payload_field(new, "name"), payload_field(new, "target")
    if ref_type not in BRANCH_TYPES | {"tag"}:
        return HookOutcome.ignored(f"push of a {ref_type!r} starts no run", repository)
    label = "tag" if ref_type == "tag" else "branch"
    message = target.get("message")
    if is_skip_ci(message):
        return HookOutcome.nothing(f"the head commit message of {label} {name!r} asks to skip CI", repository)
    commit = payload_field(target, "hash")
    author = _author(target) or (payload.get("actor") or {}).get("nickname")
    if label == "branch":
        before = ((old or {}).get("target") or {}).get("hash")
        event = make_event("push", branch=name, commit=commit, before=before, author=author, message=message)
    else:
        event = make_event("tag", tag=name, commit=commit, author=author, message=message)
    event.update(forge="bitbucket", repository=repository)
    return HookOutcome.run(event, repository, f"{label} {name!r} pushed at {commit[:12]}")


def pull_request(action: str, payload: dict) -> HookOutcome:
    """Convert a `pullrequest:*` payload: created, updated, fulfilled (merged) or rejected (declined)."""
    pull = payload_field(payload, "pullrequest")
    number = payload_field(pull, "id")
    repository = payload_field(payload, "repository", "full_name")
    source_repository = (payload_field(pull, "source").get("repository") or {}).get("full_name")
    target = payload_field(pull, "destination", "branch", "name")
    source = {
        "number": number, "sourceBranch": payload_field(pull, "source", "branch", "name"), "targetBranch": target,
        "fork": source_repository != payload_field(pull, "destination", "repository", "full_name"),
        "title": pull.get("title"), "url": ((pull.get("links") or {}).get("html") or {}).get("href"),
    }
    author = (pull.get("author") or {}).get("nickname") or (payload.get("actor") or {}).get("nickname")
    if action == "fulfilled":
        commit = (pull.get("merge_commit") or {}).get("hash")
        if not commit:
            raise MalformedPayloadError(f"merged pull request #{number} has no merge_commit.hash")
        event = make_event("merge", branch=target, commit=commit, pull_request=source, author=author, message=pull.get("title"))
        event.update(forge="bitbucket", repository=repository)
        return HookOutcome.run(event, repository, f"pull request #{number} merged into {target!r}")
    if action == "rejected":
        return HookOutcome.nothing(f"pull request #{number} was declined", repository)
    if action not in RUN_ACTIONS:
        return HookOutcome.ignored(f"pull request action {action!r} starts no run", repository)
    event = make_event("pull_request", branch=source["sourceBranch"], commit=payload_field(pull, "source", "commit", "hash"),
                       pull_request=source, author=author, message=pull.get("title"))
    event.update(forge="bitbucket", repository=repository)
    if source["fork"]:
        # Bitbucket has no pull request ref: the commit is fetched from the fork's branch.
        event["fetchRef"] = {"repository": source_repository, "ref": f"refs/heads/{source['sourceBranch']}"}
    return HookOutcome.run(event, repository, f"pull request #{number} {action}")
