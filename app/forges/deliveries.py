"""Receiving webhook deliveries: verify, parse, deduplicate, start the run, and log each one.

Nothing here waits on a forge or a worker: a delivery costs a few queries and, for a
run, one insert and one enqueue (`create_run`). Every answer is written to the delivery
log with its status code and reason, including rejected ones.
"""

import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

import redis
from sqlalchemy import select

from app.extensions import db
from app.forges import FORGES, get_forge
from app.forges.base import Forge, HookOutcome, MalformedPayloadError, OutcomeKind
from app.forges.crypto import SecretDecryptionError, decrypt
from app.json_depth import MAX_JSON_DEPTH, nests_deeper_than
from app.models import Project, Run, WebhookDelivery
from app.models._columns import utcnow
from app.queue import redis_connection
from app.runs.service import RunError, create_run

log = logging.getLogger(__name__)

# Headers that carry the secret or its signature are never stored.
SECRET_HEADERS = {"x-hub-signature", "x-hub-signature-256", "x-gitlab-token", "authorization", "cookie"}
KEPT_HEADER_PREFIXES = ("x-github-", "x-gitlab-", "x-event-", "x-request-", "x-hook-", "x-attempt-")
KEPT_HEADERS = {"content-type", "user-agent", "idempotency-key", "x-event-key"}
# Delivery ids are stored in a column of this width.
MAX_DELIVERY_ID = 200


@dataclass
class DeliveryResult:
    """The answer to a delivery: HTTP status, reason, and the delivery and run it concerns."""

    status_code: int
    reason: str
    delivery_id: int | None = None
    run: Run | None = None

    def json(self) -> dict:
        document = {"reason": self.reason, "delivery": self.delivery_id}
        if self.run is not None:
            document.update(run_id=self.run.id, run_number=self.run.number, run_url=f"/runs/{self.run.id}")
        return document


def kept_headers(headers: dict[str, str]) -> dict[str, str]:
    """Return the headers worth storing: event names and delivery ids, never a secret."""
    return {
        name: value for name, value in headers.items()
        if name not in SECRET_HEADERS and (name in KEPT_HEADERS or name.startswith(KEPT_HEADER_PREFIXES))
    }


def receive(forge_name: str, project_name: str, headers: dict[str, str], body: bytes) -> DeliveryResult:
    """Handle one delivery to `/hooks/<forge_name>/<project_name>`; `headers` have lower-case names."""
    if forge_name not in FORGES:
        return DeliveryResult(404, f"Forge {forge_name!r} is unknown: expected one of {', '.join(FORGES)}")
    forge = get_forge(forge_name)
    project = _hook_target(forge, project_name, headers)
    if project is None:
        return _no_such_target(forge, project_name)
    problem = _target_problem(project, project_name)
    if problem:
        return _reject(forge, project, headers, *problem)
    try:
        secret = decrypt(project.webhook_secret_encrypted)
    except SecretDecryptionError as error:
        return _reject(forge, project, headers, 401, f"{error}; set the project's webhook secret again")
    invalid = forge.verify(headers, body, secret)
    if invalid:
        log.warning("project %s: rejected a %s delivery: %s", project.id, forge.name, invalid)
        return _reject(forge, project, headers, 401, invalid)
    return process(forge, project, headers, body)


def reject_oversized(forge_name: str, project_name: str, headers: dict[str, str], size: int | None, limit: int) -> DeliveryResult:
    """Log and answer a delivery whose body is larger than WEBHOOK_MAX_BYTES, without reading it."""
    project = _hook_target(get_forge(forge_name), project_name, headers) if forge_name in FORGES else None
    if size is not None:
        reason = f"The body is too large: {size} bytes, over the limit of {limit} bytes. "
    else:
        reason = f"The body is too large: it was sent without a length and grew over the limit of {limit} bytes. "
    reason += "Raise DENO_CI_WEBHOOK_MAX_BYTES if the forge's payloads need more."
    if forge_name not in FORGES or project is None:
        return DeliveryResult(413, reason)
    return _reject(get_forge(forge_name), project, headers, 413, reason)


def _hook_target(forge: Forge, project_name: str, headers: dict[str, str]) -> Project | None:
    """Return the project of this forge that the hook URL names, or None, logging why there is none."""
    project = db.session.scalar(select(Project).where(Project.name == project_name))
    if project is not None and project.forge == forge.name:
        return project
    delivery_id = (forge.delivery_id(headers) or "")[:MAX_DELIVERY_ID] or None
    if project is None:
        log.info("%s delivery %s rejected: no project is named %r", forge.name, delivery_id, project_name)
    else:
        log.info("project %s: %s delivery %s rejected: the project is connected to %r", project.id, forge.name,
                 delivery_id, project.forge)
    return None


def _no_such_target(forge: Forge, project_name: str) -> DeliveryResult:
    # Anyone can post here, so an unknown project and a project of another forge get the same
    # response. A different one would tell outsiders which project names exist.
    return DeliveryResult(404, f"No project named {project_name!r} receives {forge.title} webhooks here. "
                               f"Check the project name and the forge in the webhook URL, /hooks/{forge.name}/<project name>.")


def _target_problem(project: Project, project_name: str) -> tuple[int, str] | None:
    # NOTE: a project of this forge returns 401 here or after the signature check, not the 404
    # of `_no_such_target`, so a caller who tries each forge can still tell that its name exists.
    if not project.webhook_secret_encrypted:
        return 401, (f"Project {project_name!r} has no webhook secret, so no delivery can be verified; "
                     "set one with `deno-ci project add --webhook-secret` or connect the repository again")
    return None


def process(forge: Forge, project: Project, headers: dict[str, str], body: bytes, *,
            redelivery_of: WebhookDelivery | None = None) -> DeliveryResult:
    """Parse a verified delivery and act on it; a redelivery skips both duplicate checks."""
    # The project row lock orders concurrent deliveries of one project, so duplicate checks see each other.
    db.session.execute(select(Project.id).where(Project.id == project.id).with_for_update())
    delivery_id = (forge.delivery_id(headers) or "")[:MAX_DELIVERY_ID] or None
    previous = _previous_delivery(project, delivery_id) if redelivery_of is None else None
    if previous is not None and previous.status_code in (200, 202):
        return _repeat(previous)
    try:
        outcome = forge.parse(headers, decode_payload(headers, body))
    except MalformedPayloadError as error:
        log.info("project %s: %s delivery %s is invalid: %s", project.id, forge.name, delivery_id, error)
        return _record(forge, project, headers, body, 400, str(error), previous, redelivery_of)
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        # The parsers check the fields they read, so this is a shape they missed: the delivery
        # is invalid, and the log has the Python error for a fix.
        log.warning("project %s: %s delivery %s has an unexpected shape: %r", project.id, forge.name, delivery_id, error)
        return _record(forge, project, headers, body, 400,
                       "The payload has a field of an unexpected type or lacks one, so the event cannot be read; "
                       "check that the webhook sends the forge's documented payload for this event.",
                       previous, redelivery_of)
    mismatch = _repository_mismatch(project, outcome)
    if mismatch:
        return _record(forge, project, headers, body, 404, mismatch, previous, redelivery_of)
    if outcome.kind != OutcomeKind.RUN:
        log.info("project %s: %s delivery %s: %s", project.id, forge.name, delivery_id, outcome.reason)
        return _record(forge, project, headers, body, 200, _sentence(outcome), previous, redelivery_of)
    return _start_run(forge, project, headers, body, outcome, previous, redelivery_of)


def decode_payload(headers: dict[str, str], body: bytes) -> dict:
    """Return the JSON object in the body; raise MalformedPayloadError for an empty or invalid body.

    GitHub can also send the JSON form-encoded as the `payload` field.
    """
    if not body.strip():
        raise MalformedPayloadError("The body is empty; expected the event's payload as a JSON object.")
    text = body
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        fields = parse_qs(body.decode("utf-8", "replace"))
        if "payload" not in fields:
            raise MalformedPayloadError("The form-encoded body has no 'payload' field. Forges send JSON: on GitHub, "
                                        "set the webhook's content type to application/json; anything else "
                                        "posting here should send the payload as JSON.")
        text = fields["payload"][0]
    payload = _parse_json(text)
    if not isinstance(payload, dict):
        raise MalformedPayloadError(f"The body is {_json_kind(payload)}; expected an object with the event's fields.")
    return payload


def _parse_json(text: str | bytes):
    if nests_deeper_than(text):
        raise MalformedPayloadError(f"The body is malformed JSON: its objects and arrays nest more than {MAX_JSON_DEPTH} "
                                    "levels deep. Expected the event's payload, which nests far less.")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        # str(error) places the message itself: "Unterminated string starting at: line 1 column 38 (char 37)".
        raise MalformedPayloadError(f"The body is malformed JSON: {error}. Expected the event's payload as a JSON "
                                    "object.") from error
    except UnicodeDecodeError as error:
        raise MalformedPayloadError(f"The body is malformed JSON: byte {error.start} is not valid UTF-8. "
                                    "Expected the event's payload as UTF-8 JSON.") from error
    except ValueError as error:
        # A number of more than 4,300 digits (sys.int_info.default_max_str_digits).
        raise MalformedPayloadError("The body is malformed JSON: it has a number too long to read. "
                                    "Expected the event's payload.") from error
    return payload


def _json_kind(value) -> str:
    if value is None or isinstance(value, bool):
        return f"JSON {json.dumps(value)}"
    kinds = {str: "a JSON string", int: "a JSON number", float: "a JSON number", list: "a JSON array"}
    return kinds.get(type(value), "not a JSON object")


def _sentence(outcome: HookOutcome) -> str:
    if outcome.kind == OutcomeKind.PING:
        return outcome.reason[0].upper() + outcome.reason[1:]
    prefix = "Nothing to run" if outcome.kind == OutcomeKind.NOTHING else "Ignored"
    return f"{prefix}: {outcome.reason}"


def _repository_mismatch(project: Project, outcome: HookOutcome) -> str | None:
    # Forges treat repository names case-insensitively.
    if not project.forge_repo or not outcome.repository or outcome.repository.casefold() == project.forge_repo.casefold():
        return None
    return (f"Repository {outcome.repository!r} is not connected to project {project.name!r}, "
            f"which expects deliveries from {project.forge_repo!r}")


def _previous_delivery(project: Project, delivery_id: str | None) -> WebhookDelivery | None:
    if delivery_id is None:
        return None
    return db.session.scalar(select(WebhookDelivery).where(
        WebhookDelivery.project_id == project.id, WebhookDelivery.forge_delivery_id == delivery_id,
    ))


def _repeat(previous: WebhookDelivery) -> DeliveryResult:
    previous.received_count += 1
    previous.last_received_at = utcnow()
    db.session.commit()
    run = db.session.get(Run, previous.run_id) if previous.run_id else None
    reason = f"Already received as delivery {previous.id} ({previous.reason}); it is not acted on twice"
    return DeliveryResult(200, reason, previous.id, run)


def dedupe_key(event: dict) -> str:
    """Return the key that makes the same push or pull request update, sent twice, start one run."""
    number = (event.get("pullRequest") or {}).get("number")
    return f"{event['kind']}|{event.get('ref')}|{number or ''}|{event.get('commit')}"


def _start_run(forge: Forge, project: Project, headers: dict, body: bytes, outcome: HookOutcome,
               previous: WebhookDelivery | None, redelivery_of: WebhookDelivery | None) -> DeliveryResult:
    key = dedupe_key(outcome.event) if redelivery_of is None else None
    if key is not None:
        same = db.session.scalar(select(WebhookDelivery).where(
            WebhookDelivery.project_id == project.id, WebhookDelivery.dedupe_key == key))
        if same is not None:
            reason = f"Nothing to run: the same event ({outcome.reason}) was received as delivery {same.id}"
            return _record(forge, project, headers, body, 200, reason, previous, redelivery_of, run_id=same.run_id)
    delivery = _record(forge, project, headers, body, 202, f"Run queued: {outcome.reason}", previous, redelivery_of,
                       commit=False, dedupe=key)
    try:
        run = create_run(project, trigger="webhook", event=outcome.event)
    except RunError as error:
        row = db.session.get(WebhookDelivery, delivery.delivery_id)
        row.status_code, row.reason, row.dedupe_key = 503, str(error), None
        db.session.commit()
        return DeliveryResult(503, str(error), row.id)
    row = db.session.get(WebhookDelivery, delivery.delivery_id)
    row.run_id = run.id
    # create_run marks a run of a pull request from a fork as needing approval: until a maintainer
    # approves it, it gets no secrets (app/secret_store.py) and its deploy stages wait
    # (app/runs/service.py, advance_run).
    db.session.commit()
    log.info("project %s: %s delivery %s queued run %s", project.id, forge.name, row.forge_delivery_id, run.id)
    return DeliveryResult(202, row.reason, row.id, run)


# Anyone can post to a project's hook address; without a cap, unsigned requests could fill the delivery log.
MAX_LOGGED_REJECTIONS_PER_MINUTE = 60


def _may_log_rejection(project_id: int) -> bool:
    """Count a rejected delivery of the project in this minute; return whether it is within the cap."""
    key = f"deno-ci:rejected-deliveries:{project_id}:{int(time.time() // 60)}"
    try:
        connection = redis_connection()
        count, _ = connection.pipeline().incr(key).expire(key, 120).execute()
    except redis.RedisError as error:
        log.warning("project %s: rejected deliveries not counted, Redis failed: %s", project_id, error)
        return True
    return count <= MAX_LOGGED_REJECTIONS_PER_MINUTE


def _reject(forge: Forge, project: Project | None, headers: dict, status_code: int, reason: str) -> DeliveryResult:
    """Log a delivery rejected before its signature was verified: without its body or delivery id.

    An unverified request must not claim the delivery id that the genuine delivery will use.
    """
    if project is None:
        log.info("%s delivery to an unknown project: %s", forge.name, reason)
        return DeliveryResult(status_code, reason)
    if not _may_log_rejection(project.id):
        log.warning("project %s: %s delivery rejected (%s); not logged, over %d rejections a minute",
                    project.id, forge.name, reason, MAX_LOGGED_REJECTIONS_PER_MINUTE)
        return DeliveryResult(status_code, reason)
    row = WebhookDelivery(project_id=project.id, forge=forge.name, event=(headers.get(forge.event_header) or "")[:100] or None,
                          headers=kept_headers(headers), status_code=status_code, reason=reason)
    db.session.add(row)
    db.session.commit()
    return DeliveryResult(status_code, reason, row.id)


def _record(forge: Forge, project: Project, headers: dict, body: bytes | None, status_code: int, reason: str,
            previous: WebhookDelivery | None = None, redelivery_of: WebhookDelivery | None = None, *,
            run_id: int | None = None, commit: bool = True, dedupe: str | None = None) -> DeliveryResult:
    """Write the log row of a verified delivery (a new one, or the earlier row of the same forge delivery id)."""
    delivery_id = None if redelivery_of is not None else ((forge.delivery_id(headers) or "")[:MAX_DELIVERY_ID] or None)
    row = previous or WebhookDelivery(project_id=project.id, forge=forge.name, forge_delivery_id=delivery_id)
    if previous is not None:
        row.received_count += 1
        row.last_received_at = utcnow()
    row.event = (headers.get(forge.event_header) or "")[:100] or None
    row.headers, row.body, row.status_code, row.reason = kept_headers(headers), body, status_code, reason
    row.run_id, row.dedupe_key, row.redelivery_of_id = run_id, dedupe, redelivery_of.id if redelivery_of else None
    db.session.add(row)
    db.session.flush()
    if commit:
        db.session.commit()
    return DeliveryResult(status_code, reason, row.id, db.session.get(Run, run_id) if run_id else None)
