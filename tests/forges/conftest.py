"""Helpers for the forge tests: signed deliveries, projects with secrets, fake forge servers."""

import hashlib
import hmac
import json
import uuid
from copy import deepcopy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import SHARED_FIXTURES, serve_in_thread

PAYLOADS = Path(__file__).parent / "payloads"
SHARED_WEBHOOKS = SHARED_FIXTURES / "webhooks"
SECRET = "s3cret-for-tests"
EVENT_HEADERS = {"github": "X-GitHub-Event", "gitlab": "X-Gitlab-Event", "bitbucket": "X-Event-Key"}
DELIVERY_HEADERS = {"github": "X-GitHub-Delivery", "gitlab": "X-Gitlab-Event-UUID", "bitbucket": "X-Request-UUID"}


def own_payload(forge: str, name: str) -> dict:
    return deepcopy(json.loads((PAYLOADS / forge / f"{name}.json").read_text()))


def shared_payload(forge: str, name: str) -> bytes:
    path = SHARED_WEBHOOKS / forge / f"{name}.json"
    if not path.exists():
        pytest.skip(f"shared webhook fixtures are absent ({path}); they exist only beside the project's own clone")
    return path.read_bytes()


def signed_headers(forge: str, body: bytes, event: str, secret: str = SECRET, delivery: str | None = None) -> dict:
    """Return the headers the forge would send with `body`, signed with `secret`."""
    headers = {"Content-Type": "application/json", EVENT_HEADERS[forge]: event,
               DELIVERY_HEADERS[forge]: delivery or str(uuid.uuid4())}
    if forge == "gitlab":
        headers["X-Gitlab-Token"] = secret
    else:
        digest = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256" if forge == "github" else "X-Hub-Signature"] = digest
    return headers


def post_hook(client, forge: str, project: str, body, event: str, **options):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = options.pop("headers", None) or signed_headers(forge, data, event, **options)
    return client.post(f"/hooks/{forge}/{project}", data=data, headers=headers)


@pytest.fixture
def forge_project(db_app):
    """Create a project connected to a forge by hand, with the test secret; returns a factory."""
    from app.extensions import db
    from app.forges.crypto import encrypt
    from app.projects import add_project

    def create(forge: str, repo: str = "acme/web", name: str = "web"):
        project = add_project(name, "/nowhere", forge=forge, forge_repo=repo)
        project.webhook_secret_encrypted = encrypt(SECRET)
        db.session.commit()
        return project

    return create


@pytest.fixture
def hook_client(db_app):
    """A test client with nobody signed in, as a forge is."""
    return db_app.test_client()


class FakeForge:
    """An HTTP server on 127.0.0.1 that answers planned responses and records every request."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.routes: dict[tuple[str, str], list] = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                      "body": body})
                status, document, headers = fake._answer(self.command, self.path)
                payload = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = _handle

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        serve_in_thread(self.server)

    def answer(self, method: str, path: str, document, status: int = 200, headers: dict | None = None) -> None:
        """Plan the answer to `method path` (path with its query string); several plans are used in turn."""
        self.routes.setdefault((method, path), []).append((status, document, headers or {}))

    def _answer(self, method: str, path: str):
        planned = self.routes.get((method, path))
        if not planned:
            return 404, {"message": f"no plan for {method} {path}"}, {}
        return planned.pop(0) if len(planned) > 1 else planned[0]

    def json_body(self, index: int = -1):
        return json.loads(self.requests[index]["body"])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_forge(db_app, monkeypatch):
    """Start a fake forge and point all three forges' web and API addresses at it."""
    server = FakeForge()
    for name in ("github", "gitlab", "bitbucket"):
        settings = dict(db_app.config["FORGES"][name])
        api_path = {"github": "/api", "gitlab": "/api/v4", "bitbucket": "/2.0"}[name]
        settings.update(web_url=server.url, api_url=server.url + api_path, client_id=f"{name}-client",
                        client_secret=f"{name}-client-secret")
        monkeypatch.setitem(db_app.config["FORGES"], name, settings)
    yield server
    server.close()
