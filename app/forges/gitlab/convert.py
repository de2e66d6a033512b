"""GitLab payloads to normalised events. Pure functions: no I/O, no Flask."""

from app.forges.base import HookOutcome, ZERO_SHA, is_skip_ci
from app.forges.fields import commit_field, field, item_number, ref_field, ref_name
from app.runs.events import make_event

RUN_ACTIONS = {"open", "reopen", "update"}


def repository_name(payload: dict) -> str | None:
    project = payload.get("project")
    name = project.get("path_with_namespace") if isinstance(project, dict) else None
    return name if isinstance(name, str) else None


def _head_commit(payload: dict, after: str) -> dict:
    commits = field(payload, "commits", kind=list, optional=True) or []
    matching = [commit for commit in commits if isinstance(commit, dict) and commit.get("id") == after]
    if matching:
        return matching[0]
    if commits and isinstance(commits[-1], dict):
        return commits[-1]
    return {}


def push(payload: dict) -> HookOutcome:
    """Convert a push or tag push payload, including deletions."""
    ref, after = field(payload, "ref"), field(payload, "after")
    repository = field(payload, "project", "path_with_namespace")
    kind, _, name = ref.removeprefix("refs/").partition("/")
    if kind not in ("heads", "tags") or not name:
        return HookOutcome.ignored(f"push to {ref!r} is neither a branch nor a tag", repository)
    label = "branch" if kind == "heads" else "tag"
    ref_name(name, "ref", label)
    if after == ZERO_SHA:
        return HookOutcome.nothing(f"{label} {name!r} was deleted", repository)
    message = field(_head_commit(payload, after), "message", optional=True) or field(payload, "message", optional=True)
    if is_skip_ci(message):
        return HookOutcome.nothing(f"the head commit message of {label} {name!r} asks to skip CI", repository)
    commit = commit_field(payload, "checkout_sha", optional=True)
    commit = commit or commit_field(payload, "after")
    author = field(payload, "user_username", optional=True) or field(payload, "user_name", optional=True)
    if kind == "heads":
        before = commit_field(payload, "before", optional=True)
        event = make_event("push", branch=name, commit=commit, before=before, author=author, message=message)
    else:
        event = make_event("tag", tag=name, commit=commit, author=author, message=message)
    event.update(forge="gitlab", repository=repository)
    return HookOutcome.run(event, repository, f"{label} {name!r} pushed at {commit[:12]}")


def merge_request(payload: dict) -> HookOutcome:
    """Convert a merge request payload: opened, updated with commits, reopened, merged or closed."""
    attributes = field(payload, "object_attributes", kind=dict)
    action = field(payload, "object_attributes", "action", optional=True)
    number = item_number(payload, "object_attributes", "iid")
    repository = field(payload, "project", "path_with_namespace")
    target = ref_field(payload, "object_attributes", "target_branch")
    source = {
        "number": number, "targetBranch": target,
        "sourceBranch": ref_field(payload, "object_attributes", "source_branch"),
        "fork": attributes.get("source_project_id") != attributes.get("target_project_id"),
        "title": field(payload, "object_attributes", "title", optional=True),
        "url": field(payload, "object_attributes", "url", optional=True),
    }
    author = field(payload, "user", "username", optional=True)
    if action == "merge":
        commit = (commit_field(payload, "object_attributes", "merge_commit_sha", optional=True)
                  or commit_field(payload, "object_attributes", "last_commit", "id"))
        event = make_event("merge", branch=target, commit=commit, pull_request=source, author=author,
                           message=source["title"])
        event.update(forge="gitlab", repository=repository)
        return HookOutcome.run(event, repository, f"merge request !{number} merged into {target!r}")
    if action == "close":
        return HookOutcome.nothing(f"merge request !{number} was closed without merging", repository)
    # "update" also fires for a new title or label; only `oldrev` says that commits were pushed.
    oldrev = commit_field(payload, "object_attributes", "oldrev", optional=True)
    if action not in RUN_ACTIONS or (action == "update" and not oldrev):
        return HookOutcome.ignored(f"merge request action {action!r} brings no new commit", repository)
    message = field(payload, "object_attributes", "last_commit", "message", optional=True)
    if is_skip_ci(message):
        return HookOutcome.nothing(f"the head commit message of merge request !{number} asks to skip CI", repository)
    event = make_event("pull_request", branch=source["sourceBranch"],
                       commit=commit_field(payload, "object_attributes", "last_commit", "id"),
                       before=oldrev, pull_request=source, author=author, message=message)
    event.update(forge="gitlab", repository=repository)
    if source["fork"]:
        event["fetchRef"] = {"ref": f"refs/merge-requests/{number}/head"}
    return HookOutcome.run(event, repository, f"merge request !{number} {action}")
