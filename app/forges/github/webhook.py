"""GitHub webhooks: `X-Hub-Signature-256` verification and dispatch on `X-GitHub-Event`."""

import hashlib
import hmac

from app.forges.base import HookOutcome, MalformedPayloadError
from app.forges.github import convert

SIGNATURE_HEADER = "x-hub-signature-256"


def signature_problem(headers: dict[str, str], body: bytes, secret: str) -> str | None:
    """Return None if the HMAC-SHA256 of the body matches the header, else why not."""
    provided = headers.get(SIGNATURE_HEADER)
    if not provided:
        return "the X-Hub-Signature-256 header is missing"
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # The prefix and the hex digits are compared case-insensitively, as proxies may change either.
    if not hmac.compare_digest(expected, provided.strip().lower()):
        return "the X-Hub-Signature-256 signature does not match the project's webhook secret"
    return None


class Webhooks:
    """The webhook half of the GitHub forge."""

    def verify(self, headers: dict[str, str], body: bytes, secret: str) -> str | None:
        return signature_problem(headers, body, secret)

    def delivery_id(self, headers: dict[str, str]) -> str | None:
        return headers.get("x-github-delivery")

    def parse(self, headers: dict[str, str], payload: dict) -> HookOutcome:
        event = headers.get("x-github-event", "")
        repository = convert.repository_name(payload)
        if event == "ping":
            return HookOutcome.ping(repository)
        if event == "push":
            return convert.push(payload)
        if event == "pull_request":
            return convert.pull_request(payload)
        if not event:
            raise MalformedPayloadError("the X-GitHub-Event header is missing")
        return HookOutcome.ignored(f"GitHub event {event!r} starts no run", repository)
