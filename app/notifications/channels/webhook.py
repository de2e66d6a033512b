"""A generic JSON webhook signed with HMAC-SHA256.

The receiver gets a POST with a JSON body and these headers:
- `X-Deno-CI-Timestamp`: Unix time in seconds when the request was signed;
- `X-Deno-CI-Signature`: `sha256=` and the hex HMAC-SHA256, keyed with the channel's
  secret, of the timestamp, a dot, and the raw body bytes;
- `X-Deno-CI-Event`: the event name; `X-Deno-CI-Delivery`: the delivery id, the same
  on every attempt, so a receiver can drop a message it already has.
Signing the timestamp lets a receiver reject replays older than a few minutes.
"""

import hashlib
import hmac
import json
import time

from app.notifications.channels._http import post_json
from app.notifications.channels.base import Channel, DeliveryResult, Field
from app.notifications.message import Message

SIGNATURE_HEADER = "X-Deno-CI-Signature"
TIMESTAMP_HEADER = "X-Deno-CI-Timestamp"
# Seconds by which a receiver using verify_signature tolerates clock skew and delay.
DEFAULT_TOLERANCE = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Return the signature header value for `body` sent at `timestamp`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(secret: str, timestamp: str, signature: str, body: bytes, now: float | None = None,
                     tolerance: float = DEFAULT_TOLERANCE) -> bool:
    """Check a received request: the signature matches and the timestamp is within `tolerance` seconds."""
    try:
        age = abs((now if now is not None else time.time()) - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookChannel(Channel):
    """POSTs `{"event", "delivery", "message"}` as JSON, signed with the channel's secret."""

    kind = "webhook"
    label = "Webhook (signed JSON)"
    fields = (
        Field("url", "URL", type="url"),
        Field("signing_secret", "Signing secret", secret=True, help="Shared with the receiver to check signatures."),
    )

    def describe(self) -> str:
        return f"POST {self.settings.get('url')}"

    def send(self, message: Message) -> DeliveryResult:
        body = json.dumps({"event": message.event, "delivery": self.delivery_id, "message": message.to_dict()},
                          sort_keys=True).encode()
        timestamp = str(int(time.time()))
        headers = {
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.secrets["signing_secret"], timestamp, body),
            "X-Deno-CI-Event": message.event,
            "X-Deno-CI-Delivery": str(self.delivery_id or ""),
        }
        return post_json(self.settings["url"], body, headers, self.timeout)
