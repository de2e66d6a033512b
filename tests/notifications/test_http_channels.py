"""Slack, Teams, Discord and the signed webhook against a real HTTP server on 127.0.0.1."""

import json
import time

import pytest

from app.models import AttemptOutcome
from app.notifications.channels.discord import DiscordChannel
from app.notifications.channels.slack import SlackChannel
from app.notifications.channels.teams import TeamsChannel
from app.notifications.channels.webhook import WebhookChannel, sign, verify_signature
from app.notifications.message import Message
from tests.notifications.conftest import Reply, free_port

MESSAGE = Message(
    event="run_failed", title="Run #7 of web failed", status="failed", project="web",
    url="http://ci.test/runs/42", run_id=42, run_number=7, branch="main", commit="0123456789abcdef",
    author="Ada", commit_message="Fix the parser", duration_seconds=75,
)


def test_slack_webhook_message_shows_the_run(receiver):
    result = SlackChannel(settings={}, secrets={"webhook_url": receiver.url("/services/T/B/x")}, timeout=2).send(MESSAGE)

    assert result.outcome == AttemptOutcome.DELIVERED
    [request] = receiver.requests
    assert request.path == "/services/T/B/x"
    body = request.json()
    text = json.dumps(body["blocks"])
    for expected in ("Run #7 of web failed", "*Status*\\nfailed", "*Project*\\nweb", "*Branch*\\nmain",
                     "*Commit*\\n0123456789", "*Author*\\nAda", "*Duration*\\n1 min 15 s", "http://ci.test/runs/42"):
        assert expected in text


def test_slack_bot_token_posts_chat_message(receiver):
    receiver.default = Reply(200, json.dumps({"ok": True, "ts": "1.2"}), {"Content-Type": "application/json"})
    channel = SlackChannel(settings={"channel": "#builds", "api_url": receiver.url("/api/")},
                           secrets={"bot_token": "xoxb-test"}, timeout=2)

    result = channel.send(MESSAGE)

    assert result.outcome == AttemptOutcome.DELIVERED, result.error
    [request] = receiver.requests
    assert request.path == "/api/chat.postMessage"
    assert request.headers["Authorization"] == "Bearer xoxb-test"
    body = request.json()
    assert body["channel"] == "#builds"
    assert "http://ci.test/runs/42" in json.dumps(body["blocks"])


def test_slack_bot_wrong_token_is_permanent(receiver):
    receiver.default = Reply(200, json.dumps({"ok": False, "error": "invalid_auth"}), {"Content-Type": "application/json"})
    channel = SlackChannel(settings={"channel": "#builds", "api_url": receiver.url("/api/")},
                           secrets={"bot_token": "xoxb-wrong"}, timeout=2)

    result = channel.send(MESSAGE)

    assert result.outcome == AttemptOutcome.PERMANENT
    assert "invalid_auth" in result.error


def test_slack_bot_rate_limit_honours_retry_after(receiver):
    receiver.default = Reply(429, json.dumps({"ok": False, "error": "ratelimited"}),
                             {"Content-Type": "application/json", "Retry-After": "9"})
    channel = SlackChannel(settings={"channel": "#b", "api_url": receiver.url("/api/")}, secrets={"bot_token": "x"},
                           timeout=2)

    result = channel.send(MESSAGE)

    assert result.outcome == AttemptOutcome.RETRYABLE
    assert result.retry_after == 9


def test_slack_webhook_404_is_permanent(receiver):
    receiver.default = Reply(404, "no_service")

    result = SlackChannel(settings={}, secrets={"webhook_url": receiver.url()}, timeout=2).send(MESSAGE)

    assert result.outcome == AttemptOutcome.PERMANENT
    assert result.response_code == 404
    assert result.response_text == "no_service"


def test_slack_webhook_429_is_retryable_after(receiver):
    receiver.default = Reply(429, "rate_limited", {"Retry-After": "30"})

    result = SlackChannel(settings={}, secrets={"webhook_url": receiver.url()}, timeout=2).send(MESSAGE)

    assert result.outcome == AttemptOutcome.RETRYABLE
    assert result.retry_after == 30


def test_slack_webhook_timeout_is_retryable(receiver):
    receiver.default = Reply(delay=5)

    result = SlackChannel(settings={}, secrets={"webhook_url": receiver.url()}, timeout=0.5).send(MESSAGE)

    assert result.outcome == AttemptOutcome.RETRYABLE
    assert "Timed out" in result.error or "timed out" in result.error


def test_teams_posts_adaptive_card(receiver):
    result = TeamsChannel(settings={}, secrets={"webhook_url": receiver.url()}, timeout=2).send(MESSAGE)

    assert result.outcome == AttemptOutcome.DELIVERED
    body = receiver.requests[0].json()
    card = body["attachments"][0]["content"]
    assert body["attachments"][0]["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["body"][0]["text"] == "Run #7 of web failed"
    assert {"title": "Branch", "value": "main"} in card["body"][1]["facts"]
    assert card["actions"][0]["url"] == "http://ci.test/runs/42"


def test_discord_posts_embed_without_mentions(receiver):
    receiver.default = Reply(204, "")

    result = DiscordChannel(settings={}, secrets={"webhook_url": receiver.url()}, timeout=2).send(MESSAGE)

    assert result.outcome == AttemptOutcome.DELIVERED
    body = receiver.requests[0].json()
    assert body["allowed_mentions"] == {"parse": []}
    assert body["embeds"][0]["url"] == "http://ci.test/runs/42"
    assert {"name": "Author", "value": "Ada", "inline": True} in body["embeds"][0]["fields"]


def test_webhook_signature_verifies(receiver):
    channel = WebhookChannel(settings={"url": receiver.url()}, secrets={"signing_secret": "s3cret"}, timeout=2,
                             delivery_id=17)

    result = channel.send(MESSAGE)

    assert result.outcome == AttemptOutcome.DELIVERED
    [request] = receiver.requests
    timestamp = request.headers["X-Deno-CI-Timestamp"]
    signature = request.headers["X-Deno-CI-Signature"]
    assert signature.startswith("sha256=")
    assert verify_signature("s3cret", timestamp, signature, request.body)
    assert not verify_signature("other", timestamp, signature, request.body)
    assert not verify_signature("s3cret", timestamp, signature, request.body + b" ")
    assert abs(int(timestamp) - time.time()) < 60
    assert request.headers["X-Deno-CI-Delivery"] == "17"
    assert request.json()["message"]["url"] == "http://ci.test/runs/42"


def test_signature_covers_timestamp():
    body = b'{"a": 1}'

    assert sign("k", "100", body) != sign("k", "101", body)
    assert not verify_signature("k", "100", sign("k", "100", body), body, now=100 + 301)


def test_webhook_rejected_signature_is_permanent(receiver):
    receiver.default = Reply(401, "bad signature")
    channel = WebhookChannel(settings={"url": receiver.url()}, secrets={"signing_secret": "wrong"}, timeout=2)

    result = channel.send(MESSAGE)

    assert result.outcome == AttemptOutcome.PERMANENT
    assert "check the secret" in result.error


@pytest.mark.parametrize("status, outcome", [
    (500, AttemptOutcome.RETRYABLE), (503, AttemptOutcome.RETRYABLE), (408, AttemptOutcome.RETRYABLE),
    (400, AttemptOutcome.PERMANENT), (403, AttemptOutcome.PERMANENT), (404, AttemptOutcome.PERMANENT),
    (410, AttemptOutcome.PERMANENT), (202, AttemptOutcome.DELIVERED),
])
def test_http_status_classification(receiver, status, outcome):
    receiver.default = Reply(status, "answer")

    result = TeamsChannel(settings={}, secrets={"webhook_url": receiver.url()}, timeout=2).send(MESSAGE)

    assert result.outcome == outcome


def test_refused_connection_is_retryable():
    url = f"http://127.0.0.1:{free_port()}/hook"

    result = DiscordChannel(settings={}, secrets={"webhook_url": url}, timeout=2).send(MESSAGE)

    assert result.outcome == AttemptOutcome.RETRYABLE
    assert "Cannot connect" in result.error


def test_slack_refused_connection_is_retryable():
    url = f"http://127.0.0.1:{free_port()}/hook"

    result = SlackChannel(settings={}, secrets={"webhook_url": url}, timeout=2).send(MESSAGE)

    assert result.outcome == AttemptOutcome.RETRYABLE
