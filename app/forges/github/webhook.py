"""GitHub webhooks: `X-Hub-Signature-256` verification and dispatch on `X-GitHub-Event`."""

from app.forges.base import HookOutcome, MalformedPayloadError, hmac_signature_problem
from app.forges.github import convert

SIGNATURE_HEADER = "x-hub-signature-256"


def signature_problem(headers: dict[str, str], body: bytes, secret: str) -> str | None:
    """Return None if the HMAC-SHA256 of the body matches the header, else why not."""
    return hmac_signature_problem("X-Hub-Signature-256", headers.get(SIGNATURE_HEADER), body, secret)


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
            raise MalformedPayloadError("The X-GitHub-Event header is missing; GitHub sends it with every delivery, "
                                        "so check that no proxy between it and Deno CI drops it.")
        return HookOutcome.ignored(f"GitHub event {event!r} starts no run", repository)
