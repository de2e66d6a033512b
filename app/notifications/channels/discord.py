"""Discord through a channel's incoming webhook, with one embed."""

import json

from app.notifications.channels._http import post_json, url_host
from app.notifications.channels.base import Channel, DeliveryResult, Field
from app.notifications.message import Message

# Embed side colours as RGB integers: green, red, grey, and blue for anything else.
STATUS_COLOURS = {"success": 0x2EA043, "failed": 0xD1242F, "error": 0xD1242F, "cancelled": 0x8C959F}
OTHER_COLOUR = 0x0969DA


class DiscordChannel(Channel):
    """Posts an embed with the facts as inline fields."""

    kind = "discord"
    label = "Discord"
    fields = (Field("webhook_url", "Webhook URL", secret=True, type="url"),)

    def describe(self) -> str:
        return f"Discord webhook on {url_host(self.secrets.get('webhook_url'))}"

    def send(self, message: Message) -> DeliveryResult:
        body = json.dumps(render_embed(message)).encode()
        return post_json(self.secrets["webhook_url"], body, {}, self.timeout)


def render_embed(message: Message) -> dict:
    """Render the webhook body; mentions are disabled so a commit message cannot ping @everyone."""
    return {
        "content": message.title,
        "allowed_mentions": {"parse": []},
        "embeds": [{
            "title": message.title,
            "url": message.url,
            "color": STATUS_COLOURS.get(message.status, OTHER_COLOUR),
            "description": (message.commit_message or "").splitlines()[0] if message.commit_message else "",
            "fields": [{"name": label, "value": value, "inline": True} for label, value in message.facts()],
        }],
    }
