"""Real receivers on 127.0.0.1 for notification tests: an HTTP server and aiosmtpd SMTP servers, with TLS."""

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import serve_in_thread


@dataclass
class ReceivedRequest:
    path: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: str = "ok"
    headers: dict = field(default_factory=dict)
    # Seconds to wait before responding, to stand in for a receiver that hangs.
    delay: float = 0.0


class HttpReceiver:
    """An HTTP server on 127.0.0.1 that records every POST and responds with queued replies (then 200 ok)."""

    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self.replies: list[Reply] = []
        self.default = Reply()
        self.stop_waiting = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802  (the name http.server calls)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append(ReceivedRequest(self.path, dict(self.headers), body))
                reply = receiver.replies.pop(0) if receiver.replies else receiver.default
                if reply.delay:
                    receiver.stop_waiting.wait(reply.delay)
                payload = reply.body.encode()
                self.send_response(reply.status)
                for name, value in {"Content-Type": "text/plain", **reply.headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = serve_in_thread(self.server)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def close(self) -> None:
        self.stop_waiting.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = HttpReceiver()
    yield server
    server.close()


class RecordingHandler:
    """An aiosmtpd handler that keeps each accepted message, or replies to DATA or RCPT with a fixed reply."""

    def __init__(self, rcpt_reply: str | None = None, data_reply: str | None = None) -> None:
        self.messages: list[dict] = []
        self.rcpt_reply = rcpt_reply
        self.data_reply = data_reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802  (aiosmtpd hook name)
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802  (aiosmtpd hook name)
        if self.data_reply:
            return self.data_reply
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "content": envelope.original_content, "tls": session.ssl is not None})
        return "250 Message accepted"


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (certificate path, key path)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def server_tls_context(certificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    """Start aiosmtpd on 127.0.0.1 with the given handler and options; stop every one started."""
    started = []

    def start(handler, **options) -> int:
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
        controller.start()
        started.append(controller)
        return port

    yield start
    for controller in started:
        controller.stop()


class ScriptedSmtpServer:
    """A raw TCP server that misbehaves: never greets (`silent`) or closes the connection mid-message."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        self.connections.append(connection)
        if self.mode == "silent":
            return
        reader = connection.makefile("rb")
        connection.sendall(b"220 test ESMTP\r\n")
        for line in reader:
            command = line.strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                connection.sendall(b"250 test\r\n")
            elif command.startswith((b"MAIL", b"RCPT")):
                connection.sendall(b"250 OK\r\n")
            elif command == b"DATA":
                connection.sendall(b"354 go ahead\r\n")
                reader.readline()
                connection.close()
                return

    def close(self) -> None:
        self.listener.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def scripted_smtp():
    servers = []

    def start(mode: str) -> int:
        server = ScriptedSmtpServer(mode)
        servers.append(server)
        return server.port

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def notify_app(db_app):
    """The app with an empty notification queue and short notification timeouts."""
    from app.queue import NOTIFY_QUEUE_NAME, redis_connection

    redis_connection().delete(f"rq:queue:{NOTIFY_QUEUE_NAME}")
    saved = {key: db_app.config[key] for key in ("NOTIFY_TIMEOUT", "NOTIFY_MAX_ATTEMPTS", "NOTIFY_RETRY_BASE_SECONDS")}
    db_app.config.update(NOTIFY_TIMEOUT=1.0, NOTIFY_MAX_ATTEMPTS=3, NOTIFY_RETRY_BASE_SECONDS=30.0)
    yield db_app
    db_app.config.update(saved)


@pytest.fixture
def project(notify_app):
    from app.extensions import db
    from app.models import Project

    created = Project(name="web", clone_url="/nowhere")
    db.session.add(created)
    db.session.commit()
    return created


@pytest.fixture
def make_run(project):
    """Insert an ended run of `project` directly (stage execution is not needed to test notifications)."""
    from app.extensions import db
    from app.models import Run
    from app.models._columns import utcnow

    numbers = iter(range(1, 1000))

    def create(status: str, branch: str | None = "main", plan: dict | None = None) -> "Run":
        now = utcnow()
        run = Run(project_id=project.id, number=next(numbers), trigger="cli", event="push", branch=branch,
                  commit_sha="0123456789abcdef0123", author="Ada", message="Fix the parser\n\nLonger text",
                  status=status, event_data={}, plan=plan, queued_at=now - datetime.timedelta(seconds=75),
                  started_at=now - datetime.timedelta(seconds=72), finished_at=now)
        db.session.add(run)
        db.session.commit()
        return run

    return create


@pytest.fixture
def add_channel(project):
    """Store a channel of `project` with encrypted secrets, and optionally a rule for it."""
    from flask import current_app

    from app.extensions import db
    from app.models import NotificationChannel, NotificationRule
    from app.notifications.crypto import encrypt_secrets

    def create(kind: str, settings: dict, secrets: dict | None = None, name: str | None = None,
               events: list[str] | None = None, branches: list[str] | None = None) -> NotificationChannel:
        channel = NotificationChannel(project_id=project.id, name=name or kind, kind=kind, settings=settings,
                                      secrets=encrypt_secrets(current_app.config["SECRET_KEY"], secrets or {}))
        db.session.add(channel)
        db.session.flush()
        if events:
            db.session.add(NotificationRule(project_id=project.id, channel_id=channel.id, events=events,
                                            branches=branches or []))
        db.session.commit()
        return channel

    return create


def queued_job_count() -> int:
    from app.queue import notify_queue

    return notify_queue().count


def wait_until(predicate, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout} s")
