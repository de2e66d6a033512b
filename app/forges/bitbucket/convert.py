"""Bitbucket Cloud payloads to normalised events. Pure functions: no I/O, no Flask."""

from app.forges.base import HookOutcome, MalformedPayloadError, is_skip_ci
from app.forges.fields import commit_field, field, item_number, ref_field, ref_name
from app.runs.events import make_event

RUN_ACTIONS = {"created", "updated"}
# Bitbucket names a branch "branch" in Git repositories; the other two are left from Mercurial.
BRANCH_TYPES = {"branch", "named_branch", "bookmark"}


def repository_name(payload: dict) -> str | None:
    repository = payload.get("repository")
    name = repository.get("full_name") if isinstance(repository, dict) else None
    return name if isinstance(name, str) else None


def _author(payload: dict) -> str | None:
    target = ("push", "changes", 0, "new", "target")
    return (field(payload, *target, "author", "user", "nickname", optional=True)
            or field(payload, *target, "author", "raw", optional=True))


def push(payload: dict) -> HookOutcome:
    """Convert a `repo:push` payload: branch push, tag push, or deletion of either.

    NOTE: a push of several refs at once (`git push --all`) lists several changes; only the
    first that pushed a ref starts a run, and the reason names the refs left without one.
    """
    repository = field(payload, "repository", "full_name")
    changes = field(payload, "push", "changes", kind=list, optional=True)
    if not changes:
        return HookOutcome.nothing("the push lists no change", repository)
    pushed = [index for index in range(len(changes)) if field(payload, "push", "changes", index, "new", kind=dict,
                                                               optional=True)]
    change = ("push", "changes", pushed[0] if pushed else 0)
    new = field(payload, *change, "new", kind=dict, optional=True)
    if not new:
        ref_type = field(payload, *change, "old", "type", optional=True)
        name = field(payload, *change, "old", "name", optional=True)
        label = "tag" if ref_type == "tag" else "branch"
        return HookOutcome.nothing(f"{label} {name!r} was deleted", repository)
    outcome = _ref_push(payload, repository, change)
    others = [field(payload, "push", "changes", index, "new", "name", optional=True) for index in pushed[1:]]
    if others and outcome.event is not None:
        return HookOutcome.run(outcome.event, repository, f"{outcome.reason}; not run, as one delivery starts one "
                               f"run: {', '.join(repr(name) for name in others)} (push them one at a time)")
    return outcome


def _ref_push(payload: dict, repository: str, change: tuple) -> HookOutcome:
    """Convert the change at path `change` of a push, which pushed a branch or tag."""
    ref_type, name = field(payload, *change, "new", "type"), field(payload, *change, "new", "name")
    if ref_type not in BRANCH_TYPES | {"tag"}:
        return HookOutcome.ignored(f"push of a {ref_type!r} starts no run", repository)
    label = "tag" if ref_type == "tag" else "branch"
    ref_name(name, f"push.changes.{change[-1]}.new.name", label)
    message = field(payload, *change, "new", "target", "message", optional=True)
    if is_skip_ci(message):
        return HookOutcome.nothing(f"the head commit message of {label} {name!r} asks to skip CI", repository)
    commit = commit_field(payload, *change, "new", "target", "hash")
    author = _author(payload) or field(payload, "actor", "nickname", optional=True)
    if label == "branch":
        before = commit_field(payload, *change, "old", "target", "hash", optional=True)
        event = make_event("push", branch=name, commit=commit, before=before, author=author, message=message)
    else:
        event = make_event("tag", tag=name, commit=commit, author=author, message=message)
    event.update(forge="bitbucket", repository=repository)
    return HookOutcome.run(event, repository, f"{label} {name!r} pushed at {commit[:12]}")


def pull_request(action: str, payload: dict) -> HookOutcome:
    """Convert a `pullrequest:*` payload: created, updated, fulfilled (merged) or rejected (declined)."""
    field(payload, "pullrequest", kind=dict)
    number = item_number(payload, "pullrequest", "id")
    repository = field(payload, "repository", "full_name")
    source_repository = field(payload, "pullrequest", "source", "repository", "full_name", optional=True)
    target = ref_field(payload, "pullrequest", "destination", "branch", "name")
    source = {
        "number": number, "targetBranch": target,
        "sourceBranch": ref_field(payload, "pullrequest", "source", "branch", "name"),
        "fork": source_repository != field(payload, "pullrequest", "destination", "repository", "full_name"),
        "title": field(payload, "pullrequest", "title", optional=True), "url": field(payload, "pullrequest", "links", "html", "href", optional=True),
    }
    author = field(payload, "pullrequest", "author", "nickname", optional=True) or field(payload, "actor", "nickname", optional=True)
    if action == "fulfilled":
        return _merged(payload, number, repository, source, author)
    if action == "rejected":
        return HookOutcome.nothing(f"pull request #{number} was declined", repository)
    if action not in RUN_ACTIONS:
        return HookOutcome.ignored(f"pull request action {action!r} starts no run", repository)
    commit = commit_field(payload, "pullrequest", "source", "commit", "hash")
    event = make_event("pull_request", branch=source["sourceBranch"], commit=commit, pull_request=source, author=author,
                       message=source["title"])
    event.update(forge="bitbucket", repository=repository)
    if source["fork"]:
        # Bitbucket has no pull request ref: the commit is fetched from the fork's branch.
        event["fetchRef"] = {"repository": source_repository, "ref": f"refs/heads/{source['sourceBranch']}"}
    return HookOutcome.run(event, repository, f"pull request #{number} {action}")


def _merged(payload: dict, number: int, repository: str, source: dict, author: str | None) -> HookOutcome:
    commit = commit_field(payload, "pullrequest", "merge_commit", "hash", optional=True)
    if not commit:
        raise MalformedPayloadError(f"Merged pull request #{number} has no 'pullrequest.merge_commit.hash' field, "
                                    "so the merge commit to run is unknown. Redeliver the event from Bitbucket's "
                                    "webhook history.")
    target = source["targetBranch"]
    event = make_event("merge", branch=target, commit=commit, pull_request=source, author=author, message=source["title"])
    event.update(forge="bitbucket", repository=repository)
    return HookOutcome.run(event, repository, f"pull request #{number} merged into {target!r}")
