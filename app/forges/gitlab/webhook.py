"""GitLab webhooks: the `X-Gitlab-Token` secret and dispatch on `X-Gitlab-Event`."""

import hmac

from app.forges.base import HookOutcome, MalformedPayloadError, header_bytes
from app.forges.gitlab import convert

TOKEN_HEADER = "x-gitlab-token"


def token_problem(headers: dict[str, str], secret: str) -> str | None:
    """Return None if the header carries the project's secret, else why not.

    GitLab sends the secret itself rather than a signature of the body.
    """
    provided = headers.get(TOKEN_HEADER)
    if not provided:
        return "The X-Gitlab-Token header is missing; set the webhook's secret token to the project's webhook secret."
    # Bytes, because hmac.compare_digest raises TypeError for strings with non-ASCII characters.
    if not hmac.compare_digest(header_bytes(provided), secret.encode()):
        return ("The X-Gitlab-Token header does not match the project's webhook secret; "
                "set the same secret token on GitLab and in the project.")
    return None


# The X-Gitlab-Event headers that can start a run, with the object_kind their payloads carry.
RUN_EVENTS = {"Push Hook": "push", "Tag Push Hook": "tag_push", "Merge Request Hook": "merge_request"}


class Webhooks:
    """The webhook half of the GitLab forge."""

    def verify(self, headers: dict[str, str], body: bytes, secret: str) -> str | None:
        return token_problem(headers, secret)

    def delivery_id(self, headers: dict[str, str]) -> str | None:
        # Idempotency-Key (GitLab 17.4 and later) stays the same when GitLab retries a delivery.
        return headers.get("idempotency-key") or headers.get("x-gitlab-event-uuid")

    def parse(self, headers: dict[str, str], payload: dict) -> HookOutcome:
        event = headers.get("x-gitlab-event", "")
        kind = payload.get("object_kind")
        repository = convert.repository_name(payload)
        if not event:
            raise MalformedPayloadError("The X-Gitlab-Event header is missing; GitLab sends it with every delivery, "
                                        "so check that no proxy between it and Deno CI drops it.")
        expected = RUN_EVENTS.get(event)
        if expected is None:
            return HookOutcome.ignored(f"GitLab event {event!r} starts no run", repository)
        if kind != expected:
            found = "missing" if kind is None else f"{kind!r}"
            raise MalformedPayloadError(f"The X-Gitlab-Event header is {event!r} but the payload's object_kind is "
                                        f"{found}, not {expected!r}; redeliver the event from GitLab unchanged.")
        if event == "Merge Request Hook":
            return convert.merge_request(payload)
        return convert.push(payload)
