"""Slack through an incoming webhook URL, or through a bot token and the Web API's chat.postMessage."""

import socket
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from app.notifications.channels._http import classify_status, parse_retry_after
from app.notifications.channels.base import Channel, DeliveryResult, Field
from app.notifications.message import Message

DEFAULT_API_URL = "https://slack.com/api/"
# Web API error codes (returned with HTTP 200 and "ok": false) that a later attempt may get past.
RETRYABLE_API_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
STATUS_EMOJI = {"success": ":white_check_mark:", "failed": ":x:", "error": ":boom:", "cancelled": ":no_entry_sign:"}


class SlackChannel(Channel):
    """Posts a Block Kit message; settings hold either a webhook URL or a bot token and a channel."""

    kind = "slack"
    label = "Slack"
    fields = (
        Field("webhook_url", "Incoming webhook URL", secret=True, required=False, type="url",
              help="Leave empty to use a bot token."),
        Field("bot_token", "Bot token", secret=True, required=False, help="xoxb-…, needs the chat:write scope."),
        Field("channel", "Channel for the bot", required=False, help="Such as #builds or a channel id."),
        Field("api_url", "Web API URL", required=False, type="url", default=DEFAULT_API_URL),
    )

    @classmethod
    def validate(cls, settings: dict, secrets: dict) -> list[str]:
        problems = super().validate(settings, secrets)
        if bool(secrets.get("webhook_url")) == bool(secrets.get("bot_token")):
            problems.append("Enter either an incoming webhook URL or a bot token, not both.")
        if secrets.get("bot_token") and not settings.get("channel"):
            problems.append("A bot token needs a channel to post to.")
        return problems

    def describe(self) -> str:
        if self.settings.get("channel"):
            return f"Slack bot to {self.settings['channel']}"
        return "Slack incoming webhook"

    def send(self, message: Message) -> DeliveryResult:
        text = f"{message.title}: {message.url}"
        blocks = render_blocks(message)
        try:
            if self.secrets.get("bot_token"):
                return self._post_with_bot(text, blocks)
            return self._post_to_webhook(text, blocks)
        except (socket.timeout, TimeoutError):
            return DeliveryResult.retryable(f"Timed out after {self.timeout:g} s waiting for Slack")
        except URLError as error:
            return DeliveryResult.retryable(f"Cannot connect to Slack: {error.reason}")
        except OSError as error:
            return DeliveryResult.retryable(f"Cannot connect to Slack: {error}")
        except SlackClientError as error:
            return DeliveryResult.permanent(f"Invalid Slack request: {error}")

    def _post_to_webhook(self, text: str, blocks: list) -> DeliveryResult:
        client = WebhookClient(self.secrets["webhook_url"], timeout=self.timeout, retry_handlers=[])
        response = client.send(text=text, blocks=blocks)
        return classify_status(response.status_code, response.body, _header(response.headers, "Retry-After"))

    def _post_with_bot(self, text: str, blocks: list) -> DeliveryResult:
        client = WebClient(token=self.secrets["bot_token"], base_url=self.settings.get("api_url") or DEFAULT_API_URL,
                           timeout=self.timeout, retry_handlers=[])
        try:
            response = client.chat_postMessage(channel=self.settings["channel"], text=text, blocks=blocks)
        except SlackApiError as error:
            return _classify_api_error(error)
        return DeliveryResult.delivered(response.status_code, f"ok, ts={response.get('ts')}")


def _classify_api_error(error: SlackApiError) -> DeliveryResult:
    response = error.response
    data = response.data if isinstance(response.data, dict) else {}
    code = data.get("error") or str(response.data)[:100]
    body = str(response.data)
    if response.status_code != 200:
        return classify_status(response.status_code, body, _header(response.headers, "Retry-After"))
    if code in RETRYABLE_API_ERRORS:
        retry_after = parse_retry_after(_header(response.headers, "Retry-After"))
        return DeliveryResult.retryable(f"Slack API error {code!r}", response.status_code, body, retry_after)
    return DeliveryResult.permanent(f"Slack API error {code!r}: check the bot token and channel",
                                    response.status_code, body)


def _header(headers: dict | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) else value
    return None


def render_blocks(message: Message) -> list[dict]:
    """Render the Block Kit blocks: a headline, the facts as fields, and a link button."""
    emoji = STATUS_EMOJI.get(message.status, ":information_source:")
    fields = [{"type": "mrkdwn", "text": f"*{label}*\n{_escape(value)}"} for label, value in message.facts()]
    blocks: list[dict] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"{emoji} *{_escape(message.title)}*"}}]
    if fields:
        # Slack allows at most 10 fields in one section block.
        blocks.append({"type": "section", "fields": fields[:10]})
    blocks.append({"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Open in Deno CI"}, "url": message.url},
    ]})
    return blocks


def _escape(text: str) -> str:
    # Slack's mrkdwn gives &, < and > a meaning, so they are sent as entities.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
