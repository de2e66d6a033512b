"""Posting JSON over HTTP with `requests`, and classifying the response for the channels that do that."""

from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import requests

from app.models._columns import utcnow
from app.notifications.channels.base import DeliveryResult

# Statuses worth retrying besides 5xx: a request timeout and rate limiting.
RETRYABLE_STATUSES = {408, 429}


def parse_retry_after(value: str | None) -> float | None:
    """Return the delay an HTTP Retry-After header requests, in seconds; the header is either seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max((parsedate_to_datetime(value) - utcnow()).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


def classify_status(code: int, text: str, retry_after: str | None) -> DeliveryResult:
    """Turn an HTTP status into a result: 2xx delivered, 408/429/5xx retryable, other 4xx permanent."""
    if 200 <= code < 300:
        return DeliveryResult.delivered(code, text)
    if code in RETRYABLE_STATUSES or code >= 500:
        wait = parse_retry_after(retry_after)
        hint = f", asked to retry after {wait:.0f} s" if wait is not None else ""
        return DeliveryResult.retryable(f"HTTP {code} from the receiver{hint}", code, text, wait)
    return DeliveryResult.permanent(f"HTTP {code} from the receiver: {_status_hint(code)}", code, text)


def _status_hint(code: int) -> str:
    if code == 404:
        return "the URL does not exist (deleted webhook?); check the URL"
    if 300 <= code < 400:
        return "the URL redirects; enter the address it redirects to"
    if code in (401, 403):
        return "the receiver rejected the credentials or signature; check the secret"
    return "the receiver rejected the request"


def post_json(url: str, body: bytes, headers: dict[str, str], timeout: float) -> DeliveryResult:
    """POST an encoded JSON body and classify what happened; connection problems are retryable."""
    host = urlsplit(url).netloc
    try:
        response = requests.post(url, data=body, headers={"Content-Type": "application/json", **headers},
                                 timeout=timeout, allow_redirects=False)
    except requests.Timeout:
        return DeliveryResult.retryable(f"Timed out after {timeout:g} s waiting for {host}")
    except requests.ConnectionError as error:
        return DeliveryResult.retryable(f"Cannot connect to {host}: {_reason(error)}")
    except requests.RequestException as error:
        return DeliveryResult.permanent(f"Invalid request to {host}: {error}")
    return classify_status(response.status_code, response.text, response.headers.get("Retry-After"))


def _reason(error: Exception) -> str:
    # requests wraps urllib3's error, which wraps the socket error, and the innermost one names the cause.
    inner = error
    while inner.__context__ is not None and inner.__context__ is not inner:
        inner = inner.__context__
    return str(inner) or type(inner).__name__


def url_host(url: str | None) -> str:
    """Return the host of a URL for display, without the path, which may hold a token."""
    return urlsplit(url or "").netloc or "?"
