"""The normalised event a run starts from, in the shape the SDK reads from `DENO_CI_EVENT`."""

EVENT_KINDS = ("push", "pull_request", "merge", "tag", "manual", "schedule")


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
        "author": author,
        "message": message,
        "changedFiles": list(changed_files or []),
    }
