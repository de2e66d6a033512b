"""GitHub payloads to normalised events. Pure functions: no I/O, no Flask."""

from app.forges.base import HookOutcome, MalformedPayloadError, ZERO_SHA, is_skip_ci, payload_field
from app.runs.events import make_event

# Pull request actions that bring new code to test.
RUN_ACTIONS = {"opened", "synchronize", "reopened", "ready_for_review"}


def repository_name(payload: dict) -> str | None:
    repository = payload.get("repository")
    return repository.get("full_name") if isinstance(repository, dict) else None


def push(payload: dict) -> HookOutcome:
    """Convert a `push` payload: branch push, tag push, or deletion of either."""
    ref, after = payload_field(payload, "ref"), payload_field(payload, "after")
    repository = payload_field(payload, "repository", "full_name")
    kind, _, name = ref.removeprefix("refs/").partition("/")
    if kind not in ("heads", "tags") or not name:
        return HookOutcome.ignored(f"push to {ref!r} is neither a branch nor a tag", repository)
    label = "branch" if kind == "heads" else "tag"
    if payload.get("deleted") or after == ZERO_SHA:
        return HookOutcome.nothing(f"{label} {name!r} was deleted", repository)
    head = payload.get("head_commit") or {}
    message = head.get("message")
    if is_skip_ci(message):
        return HookOutcome.nothing(f"the head commit message of {label} {name!r} asks to skip CI", repository)
    author = (head.get("author") or {}).get("username") or (payload.get("pusher") or {}).get("name")
    # An annotated tag's `after` is the tag object; head_commit.id is the commit it points at.
    commit = head.get("id") or after
    if kind == "heads":
        event = make_event("push", branch=name, commit=commit, before=payload.get("before"), author=author, message=message)
    else:
        event = make_event("tag", tag=name, commit=commit, author=author, message=message)
    event.update(forge="github", repository=repository)
    return HookOutcome.run(event, repository, f"{label} {name!r} pushed at {commit[:12]}")


def pull_request(payload: dict) -> HookOutcome:
    """Convert a `pull_request` payload: opened, updated, reopened, merged or closed."""
    action, number = payload_field(payload, "action"), payload_field(payload, "number")
    pull = payload_field(payload, "pull_request")
    repository = payload_field(payload, "repository", "full_name")
    base_branch = payload_field(pull, "base", "ref")
    if action == "closed" and pull.get("merged"):
        return _merged(pull, number, repository, base_branch)
    if action == "closed":
        return HookOutcome.nothing(f"pull request #{number} was closed without merging", repository)
    if action not in RUN_ACTIONS:
        return HookOutcome.ignored(f"pull request action {action!r} starts no run", repository)
    fork = _from_fork(pull)
    source = {"number": number, "sourceBranch": payload_field(pull, "head", "ref"), "targetBranch": base_branch, "fork": fork,
              "title": pull.get("title"), "url": pull.get("html_url")}
    event = make_event("pull_request", branch=source["sourceBranch"], commit=payload_field(pull, "head", "sha"),
                       before=payload.get("before"), pull_request=source,
                       author=(pull.get("user") or {}).get("login"), message=pull.get("title"))
    event.update(forge="github", repository=repository)
    if fork:
        event["fetchRef"] = {"ref": f"refs/pull/{number}/head"}
    return HookOutcome.run(event, repository, f"pull request #{number} {action}")


def _from_fork(pull: dict) -> bool:
    head_repo = (pull.get("head") or {}).get("repo")
    # A fork that was deleted leaves head.repo null; its commits live only under the pull request's ref.
    return not head_repo or head_repo.get("full_name") != payload_field(pull, "base", "repo", "full_name")


def _merged(pull: dict, number: int, repository: str, base_branch: str) -> HookOutcome:
    commit = pull.get("merge_commit_sha")
    if not commit:
        raise MalformedPayloadError(f"merged pull request #{number} has no merge_commit_sha")
    source = {"number": number, "sourceBranch": payload_field(pull, "head", "ref"), "targetBranch": base_branch,
              "fork": _from_fork(pull), "title": pull.get("title"), "url": pull.get("html_url")}
    author = (pull.get("merged_by") or pull.get("user") or {}).get("login")
    event = make_event("merge", branch=base_branch, commit=commit, pull_request=source, author=author,
                       message=pull.get("title"))
    event.update(forge="github", repository=repository)
    return HookOutcome.run(event, repository, f"pull request #{number} merged into {base_branch!r}")
