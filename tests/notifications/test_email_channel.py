"""The email channel against a real aiosmtpd server on 127.0.0.1: plain, STARTTLS, TLS, and servers that misbehave."""

import email
from email.policy import default as default_policy

import pytest
from aiosmtpd.smtp import AuthResult

from app.models import AttemptOutcome
from app.notifications.channels.email import EmailChannel
from app.notifications.message import Message
from tests.notifications.conftest import RecordingHandler, server_tls_context

MESSAGE = Message(
    event="run_failed", title="Run #7 of web failed", status="failed", project="web",
    url="http://ci.test/runs/42", run_id=42, run_number=7, branch="main", commit="0123456789abcdef",
    author="Ada <b>", commit_message="Fix the parser", duration_seconds=75,
)


def channel(port: int, security: str = "none", ca_file: str | None = None, **settings) -> EmailChannel:
    values = {"host": "127.0.0.1", "port": port, "security": security, "from_address": "ci@example.test", **settings}
    if ca_file:
        values["ca_file"] = ca_file
    return EmailChannel(settings=values, secrets={"password": "right"} if "username" in settings else {},
                        timeout=2, recipient="dev@example.test")


def parts(raw: bytes) -> dict[str, str]:
    parsed = email.message_from_bytes(raw, policy=default_policy)
    assert parsed.get_content_type() == "multipart/alternative"
    return {part.get_content_type(): part.get_content() for part in parsed.iter_parts()}


def test_plain_smtp_delivers_text_and_html(smtp_server):
    handler = RecordingHandler()
    port = smtp_server(handler)

    result = channel(port).send(MESSAGE)

    assert result.outcome == AttemptOutcome.DELIVERED
    assert result.response_code == 250
    [received] = handler.messages
    assert received["to"] == ["dev@example.test"]
    bodies = parts(received["content"])
    assert "Run #7 of web failed" in bodies["text/plain"]
    assert "Branch: main" in bodies["text/plain"]
    assert "Duration: 1 min 15 s" in bodies["text/plain"]
    assert "http://ci.test/runs/42" in bodies["text/plain"]
    assert '<a href="http://ci.test/runs/42">' in bodies["text/html"]
    assert "Ada &lt;b&gt;" in bodies["text/html"]


def test_starttls_with_trusted_certificate(smtp_server, certificate):
    handler = RecordingHandler()
    port = smtp_server(handler, tls_context=server_tls_context(certificate), require_starttls=True)

    result = channel(port, "starttls", ca_file=str(certificate[0])).send(MESSAGE)

    assert result.outcome == AttemptOutcome.DELIVERED, result.error
    [received] = handler.messages
    assert received["tls"] is True
    assert "text/html" in parts(received["content"])


def test_implicit_tls_with_trusted_certificate(smtp_server, certificate):
    handler = RecordingHandler()
    port = smtp_server(handler, ssl_context=server_tls_context(certificate))

    result = channel(port, "tls", ca_file=str(certificate[0])).send(MESSAGE)

    assert result.outcome == AttemptOutcome.DELIVERED, result.error
    assert len(handler.messages) == 1


def test_untrusted_certificate_is_permanent(smtp_server, certificate):
    port = smtp_server(RecordingHandler(), ssl_context=server_tls_context(certificate))

    result = channel(port, "tls").send(MESSAGE)

    assert result.outcome == AttemptOutcome.PERMANENT
    assert "certificate is not trusted" in result.error


def test_smtp_5xx_refusal_is_permanent(smtp_server):
    port = smtp_server(RecordingHandler(rcpt_reply="550 No such user here"))

    result = channel(port).send(MESSAGE)

    assert result.outcome == AttemptOutcome.PERMANENT
    assert result.response_code == 550
    assert "No such user here" in result.error


def test_smtp_4xx_is_retryable(smtp_server):
    port = smtp_server(RecordingHandler(data_reply="451 Mailbox busy, try later"))

    result = channel(port).send(MESSAGE)

    assert result.outcome == AttemptOutcome.RETRYABLE
    assert result.response_code == 451


def test_wrong_smtp_password_is_permanent(smtp_server):
    def authenticator(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=auth_data.password == b"other", handled=False)

    port = smtp_server(RecordingHandler(), authenticator=authenticator, auth_require_tls=False)

    result = channel(port, username="ci").send(MESSAGE)

    assert result.outcome == AttemptOutcome.PERMANENT
    assert "user name or password" in result.error


def test_silent_server_times_out_retryably(scripted_smtp):
    port = scripted_smtp("silent")

    result = channel(port).send(MESSAGE)

    assert result.outcome == AttemptOutcome.RETRYABLE
    assert "Timed out" in result.error


def test_close_mid_message_is_retryable(scripted_smtp):
    port = scripted_smtp("close-in-data")

    result = channel(port).send(MESSAGE)

    assert result.outcome == AttemptOutcome.RETRYABLE
    assert "closed the connection" in result.error or "Cannot talk" in result.error


@pytest.mark.parametrize("settings, problem", [
    ({"port": 25, "from_address": "a@b"}, "SMTP host is missing."),
    ({"host": "h", "port": 25, "from_address": "a@b", "security": "ssl"}, "Security 'ssl' is invalid"),
])
def test_email_settings_validation(settings, problem):
    problems = EmailChannel.validate(settings, {})

    assert any(problem in text for text in problems), problems
