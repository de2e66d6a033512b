"""Microsoft Teams through an incoming webhook (a Workflows or connector URL), with an Adaptive Card."""

import json

from app.notifications.channels._http import post_json, url_host
from app.notifications.channels.base import Channel, DeliveryResult, Field
from app.notifications.message import Message


class TeamsChannel(Channel):
    """Posts an Adaptive Card wrapped in a message, the shape Teams webhooks accept."""

    kind = "teams"
    label = "Microsoft Teams"
    fields = (Field("webhook_url", "Incoming webhook URL", secret=True, type="url"),)

    def describe(self) -> str:
        return f"Teams webhook on {url_host(self.secrets.get('webhook_url'))}"

    def send(self, message: Message) -> DeliveryResult:
        body = json.dumps(render_card(message)).encode()
        return post_json(self.secrets["webhook_url"], body, {}, self.timeout)


def render_card(message: Message) -> dict:
    """Render the message body: one Adaptive Card with a title, a fact set and a link."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": True, "text": message.title},
            {"type": "FactSet", "facts": [{"title": label, "value": value} for label, value in message.facts()]},
        ],
        "actions": [{"type": "Action.OpenUrl", "title": "Open in Deno CI", "url": message.url}],
    }
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}],
    }
