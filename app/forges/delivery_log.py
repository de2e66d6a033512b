"""Reading the webhook delivery log and replaying a stored delivery, for the delivery page and the API."""

import json
import logging
from dataclasses import dataclass

from sqlalchemy import func, select

from app.extensions import db
from app.forges import get_forge
from app.forges.deliveries import SECRET_HEADERS, DeliveryResult, decode_payload, process
from app.forges.base import MalformedPayloadError
from app.models import Project, Run, WebhookDelivery

log = logging.getLogger(__name__)

PAGE_SIZE = 25
# Characters of a body shown on the detail page; forges send up to WEBHOOK_MAX_BYTES (5 MB by default).
BODY_PREVIEW_CHARS = 64 * 1024


class RedeliveryError(Exception):
    """A stored delivery cannot be processed again; the message gives the reason."""


@dataclass(frozen=True)
class DeliveryPage:
    """One page of a project's deliveries, newest first, with the runs they started by id."""

    deliveries: list[WebhookDelivery]
    runs: dict[int, Run]
    page: int
    pages: int
    total: int


@dataclass(frozen=True)
class BodyPreview:
    """A delivery's body as shown: JSON indented when it parses, cut at BODY_PREVIEW_CHARS."""

    text: str
    size: int
    truncated: bool


def list_page(project: Project, page: int, page_size: int = PAGE_SIZE) -> DeliveryPage:
    """Return page `page` (from 1) of the project's deliveries; a page past the end gives the last one."""
    total = db.session.scalar(select(func.count()).select_from(WebhookDelivery)
                              .where(WebhookDelivery.project_id == project.id))
    pages = max(1, -(-total // page_size))
    page = min(max(page, 1), pages)
    rows = list(db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.project_id == project.id)
                                   .order_by(WebhookDelivery.id.desc()).offset((page - 1) * page_size)
                                   .limit(page_size)))
    run_ids = {row.run_id for row in rows if row.run_id}
    runs = {run.id: run for run in db.session.scalars(select(Run).where(Run.id.in_(run_ids)))} if run_ids else {}
    return DeliveryPage(rows, runs, page, pages, total)


def find(project: Project, delivery_id: int) -> WebhookDelivery | None:
    """Return the project's delivery `delivery_id`, or None when the project has no such delivery."""
    return db.session.scalar(select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.project_id == project.id))


def shown_headers(delivery: WebhookDelivery) -> list[tuple[str, str]]:
    """Return the stored headers sorted by name, leaving out any that carries a secret or a signature.

    Deliveries are stored without those headers; this check also covers rows written by older versions.
    """
    return sorted((name, value) for name, value in (delivery.headers or {}).items()
                  if name.lower() not in SECRET_HEADERS)


def body_preview(delivery: WebhookDelivery, limit: int = BODY_PREVIEW_CHARS) -> BodyPreview | None:
    """Return the body for display, or None when it was not kept (deliveries rejected before verification)."""
    if delivery.body is None:
        return None
    try:
        text = json.dumps(decode_payload(delivery.headers or {}, delivery.body), indent=2, ensure_ascii=False)
    except MalformedPayloadError:
        text = delivery.body.decode("utf-8", "replace")
    return BodyPreview(text[:limit], len(delivery.body), len(text) > limit)


def redeliver(project: Project, delivery: WebhookDelivery) -> DeliveryResult:
    """Process a stored delivery again as a new delivery; a run event starts a new run even if one ran before.

    Raises RedeliveryError when the delivery's body was not kept.
    """
    if delivery.body is None:
        raise RedeliveryError(f"Delivery {delivery.id} cannot be redelivered: it was rejected "
                              f"({delivery.status_code}) before its signature was verified, so its body was not kept.")
    result = process(get_forge(delivery.forge), project, dict(delivery.headers), delivery.body, redelivery_of=delivery)
    log.info("project %s: delivery %s redelivered as delivery %s with status %s",
             project.id, delivery.id, result.delivery_id, result.status_code)
    return result


def run_of(delivery: WebhookDelivery) -> Run | None:
    """Return the run the delivery started, or None."""
    return db.session.get(Run, delivery.run_id) if delivery.run_id else None
