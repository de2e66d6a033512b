"""Bitbucket Cloud webhooks: `X-Hub-Signature` verification and dispatch on `X-Event-Key`."""

from app.forges.base import HookOutcome, MalformedPayloadError, hmac_signature_problem
from app.forges.bitbucket import convert

SIGNATURE_HEADER = "x-hub-signature"


def signature_problem(headers: dict[str, str], body: bytes, secret: str) -> str | None:
    """Return None if the HMAC-SHA256 of the body matches the header, else why not."""
    return hmac_signature_problem("X-Hub-Signature", headers.get(SIGNATURE_HEADER), body, secret)


class Webhooks:
    """The webhook half of the Bitbucket forge."""

    def verify(self, headers: dict[str, str], body: bytes, secret: str) -> str | None:
        return signature_problem(headers, body, secret)

    def delivery_id(self, headers: dict[str, str]) -> str | None:
        return headers.get("x-request-uuid")

    def parse(self, headers: dict[str, str], payload: dict) -> HookOutcome:
        event = headers.get("x-event-key", "")
        repository = convert.repository_name(payload)
        if event == "diagnostics:ping":
            return HookOutcome.ping(repository)
        if event == "repo:push":
            return convert.push(payload)
        if event.startswith("pullrequest:"):
            return convert.pull_request(event.partition(":")[2], payload)
        if not event:
            raise MalformedPayloadError("The X-Event-Key header is missing; Bitbucket sends it with every delivery, "
                                        "so check that no proxy between it and Deno CI drops it.")
        return HookOutcome.ignored(f"Bitbucket event {event!r} starts no run", repository)
