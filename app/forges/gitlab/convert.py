"""GitLab payloads to normalised events. Pure functions: no I/O, no Flask."""

from app.forges.base import HookOutcome, ZERO_SHA, is_skip_ci, payload_field
from app.runs.events import make_event

RUN_ACTIONS = {"open", "reopen", "update"}


def repository_name(payload: dict) -> str | None:
    project = payload.get("project")
    return project.get("path_with_namespace") if isinstance(project, dict) else None


def _head_commit(payload: dict, after: str) -> dict:
    commits = payload.get("commits") or []
    matching = [commit for commit in commits if isinstance(commit, dict) and commit.get("id") == after]
    if matching:
        return matching[0]
    if commits and isinstance(commits[-1], dict):
        return commits[-1]
    return {}


def push(payload: dict) -> HookOutcome:
    """Convert a push or tag push payload, including deletions."""
    ref, after = payload_field(payload, "ref"), payload_field(payload, "after")
    repository = payload_field(payload, "project", "path_with_namespace")
    kind, _, name = ref.removeprefix("refs/").partition("/")
    if kind not in ("heads", "tags") or not name:
        return HookOutcome.ignored(f"push to {ref!r} is neither a branch nor a tag", repository)
    label = "branch" if kind == "heads" else "tag"
    if after == ZERO_SHA:
        return HookOutcome.nothing(f"{label} {name!r} was deleted", repository)
    head = _head_commit(payload, after)
    message = head.get("message") or payload.get("message")
    if is_skip_ci(message):
        return HookOutcome.nothing(f"the head commit message of {label} {name!r} asks to skip CI", repository)
    commit = payload.get("checkout_sha") or after
    author = payload.get("user_username") or payload.get("user_name")
    if kind == "heads":
        event = make_event("push", branch=name, commit=commit, before=payload.get("before"), author=author, message=message)
    else:
        event = make_event("tag", tag=name, commit=commit, author=author, message=message)
    event.update(forge="gitlab", repository=repository)
    return HookOutcome.run(event, repository, f"{label} {name!r} pushed at {commit[:12]}")


def merge_request(payload: dict) -> HookOutcome:
    """Convert a merge request payload: opened, updated with commits, reopened, merged or closed."""
    attributes = payload_field(payload, "object_attributes")
    action, number = attributes.get("action"), payload_field(attributes, "iid")
    repository = payload_field(payload, "project", "path_with_namespace")
    target = payload_field(attributes, "target_branch")
    source = {
        "number": number, "sourceBranch": payload_field(attributes, "source_branch"), "targetBranch": target,
        "fork": attributes.get("source_project_id") != attributes.get("target_project_id"),
        "title": attributes.get("title"), "url": attributes.get("url"),
    }
    author = (payload.get("user") or {}).get("username")
    if action == "merge":
        commit = attributes.get("merge_commit_sha") or payload_field(attributes, "last_commit", "id")
        event = make_event("merge", branch=target, commit=commit, pull_request=source, author=author,
                           message=attributes.get("title"))
        event.update(forge="gitlab", repository=repository)
        return HookOutcome.run(event, repository, f"merge request !{number} merged into {target!r}")
    if action == "close":
        return HookOutcome.nothing(f"merge request !{number} was closed without merging", repository)
    # "update" also fires for a new title or label; only `oldrev` says that commits were pushed.
    if action not in RUN_ACTIONS or (action == "update" and not attributes.get("oldrev")):
        return HookOutcome.ignored(f"merge request action {action!r} brings no new commit", repository)
    last_commit = payload_field(attributes, "last_commit")
    message = last_commit.get("message")
    if is_skip_ci(message):
        return HookOutcome.nothing(f"the head commit message of merge request !{number} asks to skip CI", repository)
    event = make_event("pull_request", branch=source["sourceBranch"], commit=payload_field(last_commit, "id"),
                       before=attributes.get("oldrev"), pull_request=source, author=author, message=message)
    event.update(forge="gitlab", repository=repository)
    if source["fork"]:
        event["fetchRef"] = {"ref": f"refs/merge-requests/{number}/head"}
    return HookOutcome.run(event, repository, f"merge request !{number} {action}")
