"""Email over SMTP: plain, STARTTLS or implicit TLS, with a text and an HTML body in one message."""

import html
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid

from app.notifications.channels.base import Channel, DeliveryResult, Field
from app.notifications.message import Message

SECURITY_MODES = ("starttls", "tls", "none")


class EmailChannel(Channel):
    """Sends one message per recipient through the configured SMTP server."""

    kind = "email"
    label = "Email (SMTP)"
    per_recipient = True
    fields = (
        Field("host", "SMTP host"),
        Field("port", "SMTP port", type="int", default=587, help="587 for STARTTLS, 465 for TLS, 25 for none."),
        Field("security", "Security", type="select", choices=SECURITY_MODES, default="starttls"),
        Field("username", "User name", required=False),
        Field("password", "Password", secret=True, required=False),
        Field("from_address", "From address"),
        Field("to", "Other recipients", type="list", required=False, help="Comma-separated addresses."),
        Field("members", "Send to project members", type="bool", default=True,
              help="Members who turned email off for this project get none."),
        Field("ca_file", "CA bundle file", required=False,
              help="PEM file to trust instead of the system's CAs, for a server with a private certificate."),
    )

    @classmethod
    def validate(cls, settings: dict, secrets: dict) -> list[str]:
        problems = super().validate(settings, secrets)
        if settings.get("security", "starttls") not in SECURITY_MODES:
            problems.append(f"Security {settings.get('security')!r} is invalid: expected one of {', '.join(SECURITY_MODES)}.")
        if secrets.get("password") and not settings.get("username"):
            problems.append("A password needs a user name.")
        return problems

    def describe(self) -> str:
        return f"{self.settings.get('host')}:{self.settings.get('port')} ({self.settings.get('security', 'starttls')})"

    def send(self, message: Message) -> DeliveryResult:
        if not self.recipient:
            return DeliveryResult.permanent("The email has no recipient.")
        email = self.compose(message)
        try:
            return self._transmit(email)
        except smtplib.SMTPAuthenticationError as error:
            return DeliveryResult.permanent(
                f"The SMTP server rejected the user name or password ({error.smtp_code})", error.smtp_code,
                _reply(error.smtp_error))
        except smtplib.SMTPNotSupportedError as error:
            return DeliveryResult.permanent(f"The SMTP server does not support a required extension: {error}")
        except smtplib.SMTPResponseException as error:
            return _classify_reply(error.smtp_code, _reply(error.smtp_error), "The SMTP server replied")
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()))
            return _classify_reply(code, _reply(text), f"The SMTP server refused recipient {self.recipient!r}")
        except smtplib.SMTPServerDisconnected as error:
            # smtplib reports a read that timed out as a disconnection, so the exception context distinguishes the two.
            if isinstance(error.__context__, TimeoutError):
                return DeliveryResult.retryable(f"Timed out after {self.timeout:g} s talking to {self.describe()}")
            return DeliveryResult.retryable(f"The SMTP server closed the connection: {error}")
        except ssl.SSLCertVerificationError as error:
            return DeliveryResult.permanent(f"The SMTP server's certificate is not trusted: {error.verify_message}")
        except (socket.timeout, TimeoutError):
            return DeliveryResult.retryable(f"Timed out after {self.timeout:g} s talking to {self.describe()}")
        except (OSError, smtplib.SMTPException) as error:
            return DeliveryResult.retryable(f"Cannot talk to the SMTP server {self.describe()}: {error}")

    def compose(self, message: Message) -> EmailMessage:
        """Build the multipart/alternative email: text first, then HTML, as mail readers expect."""
        email = EmailMessage(policy=SMTP_POLICY)
        email["Subject"] = message.title
        email["From"] = self.settings["from_address"]
        email["To"] = self.recipient
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = make_msgid(domain="deno-ci")
        email.set_content(message.plain_text())
        email.add_alternative(render_html(message), subtype="html")
        return email

    def _transmit(self, email: EmailMessage) -> DeliveryResult:
        with self._connect() as server:
            server.ehlo_or_helo_if_needed()
            if self.settings.get("username"):
                server.login(self.settings["username"], self.secrets.get("password", ""))
            code, reply = server.mail(self.settings["from_address"])
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, reply, self.settings["from_address"])
            code, reply = server.rcpt(self.recipient)
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({self.recipient: (code, reply)})
            code, reply = server.data(email.as_bytes())
            if code != 250:
                raise smtplib.SMTPDataError(code, reply)
            return DeliveryResult.delivered(code, _reply(reply))

    def _connect(self) -> smtplib.SMTP:
        host, port = self.settings["host"], int(self.settings.get("port") or 587)
        security = self.settings.get("security", "starttls")
        if security == "tls":
            return smtplib.SMTP_SSL(host, port, timeout=self.timeout, context=self._tls_context())
        server = smtplib.SMTP(host, port, timeout=self.timeout)
        if security == "starttls":
            try:
                server.ehlo()
                server.starttls(context=self._tls_context())
                server.ehlo()
            except BaseException:
                server.close()
                raise
        return server

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.get("ca_file") or None)


def _classify_reply(code: int, text: str, prefix: str) -> DeliveryResult:
    # SMTP replies: 4xx is a transient failure worth retrying, 5xx a permanent one (RFC 5321, section 4.2.1).
    if 400 <= code < 500:
        return DeliveryResult.retryable(f"{prefix} {code} (temporary): {text}", code, text)
    return DeliveryResult.permanent(f"{prefix} {code}: {text}", code, text)


def _reply(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def render_html(message: Message) -> str:
    """Render the HTML body: the title, a table of facts and a link; every value is escaped."""
    rows = "".join(
        f"<tr><th align=\"left\">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in message.facts()
    )
    summary = ""
    if message.commit_message:
        summary = f"<p>{html.escape(message.commit_message.splitlines()[0])}</p>"
    return (
        f"<html><body><h2>{html.escape(message.title)}</h2>{summary}<table>{rows}</table>"
        f"<p><a href=\"{html.escape(message.url)}\">Open in Deno CI</a></p></body></html>"
    )
