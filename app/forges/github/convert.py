"""GitHub payloads to normalised events. Pure functions: no I/O, no Flask."""

from app.forges.base import HookOutcome, MalformedPayloadError, ZERO_SHA, is_skip_ci
from app.forges.fields import commit_field, field, item_number, ref_field, ref_name
from app.runs.events import make_event

# Pull request actions that bring new code to test.
RUN_ACTIONS = {"opened", "synchronize", "reopened", "ready_for_review"}


def repository_name(payload: dict) -> str | None:
    repository = payload.get("repository")
    name = repository.get("full_name") if isinstance(repository, dict) else None
    return name if isinstance(name, str) else None


def push(payload: dict) -> HookOutcome:
    """Convert a `push` payload: branch push, tag push, or deletion of either."""
    ref, after = field(payload, "ref"), field(payload, "after")
    repository = field(payload, "repository", "full_name")
    kind, _, name = ref.removeprefix("refs/").partition("/")
    if kind not in ("heads", "tags") or not name:
        return HookOutcome.ignored(f"push to {ref!r} is neither a branch nor a tag", repository)
    label = "branch" if kind == "heads" else "tag"
    ref_name(name, "ref", label)
    if payload.get("deleted") or after == ZERO_SHA:
        return HookOutcome.nothing(f"{label} {name!r} was deleted", repository)
    message = field(payload, "head_commit", "message", optional=True)
    if is_skip_ci(message):
        return HookOutcome.nothing(f"the head commit message of {label} {name!r} asks to skip CI", repository)
    author = (field(payload, "head_commit", "author", "username", optional=True)
              or field(payload, "pusher", "name", optional=True))
    # An annotated tag's `after` is the tag object; head_commit.id is the commit it points at.
    commit = commit_field(payload, "head_commit", "id", optional=True)
    commit = commit or commit_field(payload, "after")
    if kind == "heads":
        before = commit_field(payload, "before", optional=True)
        event = make_event("push", branch=name, commit=commit, before=before, author=author, message=message)
    else:
        event = make_event("tag", tag=name, commit=commit, author=author, message=message)
    event.update(forge="github", repository=repository)
    return HookOutcome.run(event, repository, f"{label} {name!r} pushed at {commit[:12]}")


def pull_request(payload: dict) -> HookOutcome:
    """Convert a `pull_request` payload: opened, updated, reopened, merged or closed."""
    action, number = field(payload, "action"), item_number(payload, "number")
    field(payload, "pull_request", kind=dict)
    repository = field(payload, "repository", "full_name")
    base_branch = ref_field(payload, "pull_request", "base", "ref")
    if action == "closed" and payload["pull_request"].get("merged"):
        return _merged(payload, number, repository, base_branch)
    if action == "closed":
        return HookOutcome.nothing(f"pull request #{number} was closed without merging", repository)
    if action not in RUN_ACTIONS:
        return HookOutcome.ignored(f"pull request action {action!r} starts no run", repository)
    fork = _from_fork(payload)
    source = _source(payload, number, base_branch, fork)
    event = make_event("pull_request", branch=source["sourceBranch"],
                       commit=commit_field(payload, "pull_request", "head", "sha"),
                       before=commit_field(payload, "before", optional=True),
                       pull_request=source, author=field(payload, "pull_request", "user", "login", optional=True),
                       message=source["title"])
    event.update(forge="github", repository=repository)
    if fork:
        event["fetchRef"] = {"ref": f"refs/pull/{number}/head"}
    return HookOutcome.run(event, repository, f"pull request #{number} {action}")


def _source(payload: dict, number: int, base_branch: str, fork: bool) -> dict:
    return {"number": number, "sourceBranch": ref_field(payload, "pull_request", "head", "ref"), "targetBranch": base_branch,
            "fork": fork, "title": field(payload, "pull_request", "title", optional=True),
            "url": field(payload, "pull_request", "html_url", optional=True)}


def _from_fork(payload: dict) -> bool:
    # A fork that was deleted leaves head.repo null; its commits live only under the pull request's ref.
    head_repo = field(payload, "pull_request", "head", "repo", "full_name", optional=True)
    return not head_repo or head_repo != field(payload, "pull_request", "base", "repo", "full_name")


def _merged(payload: dict, number: int, repository: str, base_branch: str) -> HookOutcome:
    commit = commit_field(payload, "pull_request", "merge_commit_sha", optional=True)
    if not commit:
        raise MalformedPayloadError(f"Merged pull request #{number} has no 'pull_request.merge_commit_sha' field, "
                                    "so the merge commit to run is unknown. Redeliver the event once GitHub has "
                                    "finished the merge.")
    source = _source(payload, number, base_branch, _from_fork(payload))
    author = (field(payload, "pull_request", "merged_by", "login", optional=True)
              or field(payload, "pull_request", "user", "login", optional=True))
    event = make_event("merge", branch=base_branch, commit=commit, pull_request=source, author=author,
                       message=source["title"])
    event.update(forge="github", repository=repository)
    return HookOutcome.run(event, repository, f"pull request #{number} merged into {base_branch!r}")
