"""The webhook delivery page: the list with pages, who sees Redeliver, redelivery from the page, the detail view."""

import json
import re

import pytest

from app.extensions import db
from app.forges.crypto import encrypt
from app.models import Run, WebhookDelivery
from app.queue import run_queue
from tests.forges.conftest import SECRET, own_payload, post_hook
from tests.people import client_for, clear_sign_in_limits, world  # noqa: F401  (fixtures)

HX = {"HX-Request": "true"}
PUSH_DELIVERY = "5e1d0c1c-0000-4000-8000-000000000001"


@pytest.fixture
def alpha(world):
    """Project "alpha" connected to GitHub repository acme/web, with the tests' webhook secret."""
    world.alpha.forge, world.alpha.forge_repo = "github", "acme/web"
    world.alpha.webhook_secret_encrypted = encrypt(SECRET)
    db.session.commit()
    return world.alpha


def push(hook_client, delivery: str = PUSH_DELIVERY):
    response = post_hook(hook_client, "github", "alpha", own_payload("github", "push"), "push", delivery=delivery)
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def run_count() -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(Run))


def rows(page: str) -> list[str]:
    return re.findall(r'<tr id="delivery-(\d+)"', page)


def test_page_lists_deliveries_newest_first(db_app, world, alpha, hook_client):
    started = push(hook_client)
    post_hook(hook_client, "github", "alpha", own_payload("github", "ping"), "ping", delivery="ping-1")
    run = db.session.get(Run, started["run_id"])

    response = client_for(db_app, world, "viewer").get("/projects/alpha/webhook-deliveries")
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert rows(page) == [str(started["delivery"] + 1), str(started["delivery"])]
    assert PUSH_DELIVERY in page
    assert "ping-1" in page
    assert "Run queued: " in page
    assert ">202</span>" in page
    assert f'href="/runs/{run.id}">#{run.number}</a>' in page
    assert f'href="/projects/alpha/webhook-deliveries/{started["delivery"]}"' in page


def test_page_shows_pages_of_25(db_app, world, alpha):
    for number in range(30):
        db.session.add(WebhookDelivery(project_id=alpha.id, forge="github", forge_delivery_id=f"d-{number}",
                                       event="push", headers={}, status_code=401, reason="Signature check failed"))
    db.session.commit()
    client = client_for(db_app, world, "viewer")

    first = client.get("/projects/alpha/webhook-deliveries").get_data(as_text=True)
    second = client.get("/projects/alpha/webhook-deliveries?page=2", headers=HX).get_data(as_text=True)

    assert rows(first) == [str(number) for number in range(30, 5, -1)]
    assert "page 1 of 2 · 30 deliveries" in first
    assert "?page=2" in first
    assert second.startswith('<section id="webhook-deliveries">')
    assert rows(second) == ["5", "4", "3", "2", "1"]


@pytest.mark.parametrize("role, sees_button", [
    ("viewer", False), ("developer", False), ("project_admin", True), ("admin", True),
])
def test_redeliver_button_by_role(db_app, world, alpha, hook_client, role, sees_button):
    push(hook_client)

    page = client_for(db_app, world, role).get("/projects/alpha/webhook-deliveries").get_data(as_text=True)

    assert ("hx-post=\"/projects/alpha/webhook-deliveries/1/redeliver\"" in page) is sees_button


def test_deliveries_tab_on_project_page(db_app, world, alpha):
    page = client_for(db_app, world, "viewer").get("/projects/alpha").get_data(as_text=True)

    assert 'href="/projects/alpha/webhook-deliveries"' in page


def test_redeliver_from_page_queues_run(db_app, world, alpha, hook_client):
    first = push(hook_client)
    queued_before = run_queue().count

    response = client_for(db_app, world, "project_admin").post(
        f"/projects/alpha/webhook-deliveries/{first['delivery']}/redeliver", headers=HX)
    page = response.get_data(as_text=True)

    newest = db.session.scalars(db.select(Run).where(Run.project_id == alpha.id).order_by(Run.number.desc())).first()
    assert response.status_code == 200
    assert page.startswith('<section id="webhook-deliveries">')
    assert f"Delivery {first['delivery']} redelivered as delivery {first['delivery'] + 1} (HTTP 202)" in page
    assert newest.id != first["run_id"]
    assert newest.status == "queued"
    assert run_queue().count == queued_before + 1
    assert f'href="/runs/{newest.id}">#{newest.number}</a>' in page


def test_redeliver_without_body_explains(db_app, world, alpha):
    rejected = WebhookDelivery(project_id=alpha.id, forge="github", event="push", headers={}, status_code=401,
                               reason="Signature check failed")
    db.session.add(rejected)
    db.session.commit()

    response = client_for(db_app, world, "project_admin").post(
        f"/projects/alpha/webhook-deliveries/{rejected.id}/redeliver", headers=HX)

    assert response.status_code == 409
    assert "its body was not kept" in response.get_data(as_text=True)


def test_viewer_cannot_redeliver(db_app, world, alpha, hook_client):
    first = push(hook_client)
    runs_before = run_count()

    response = client_for(db_app, world, "viewer").post(
        f"/projects/alpha/webhook-deliveries/{first['delivery']}/redeliver", headers=HX)

    assert response.status_code == 403
    assert run_count() == runs_before


def test_redeliver_needs_csrf_token(db_app, world, alpha, hook_client, monkeypatch):
    first = push(hook_client)
    runs_before = run_count()
    monkeypatch.setitem(db_app.config, "WTF_CSRF_ENABLED", True)
    client = client_for(db_app, world, "project_admin")
    url = f"/projects/alpha/webhook-deliveries/{first['delivery']}/redeliver"

    without = client.post(url, headers=HX)
    page = client.get("/projects/alpha/webhook-deliveries").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    with_token = client.post(url, headers={**HX, "X-CSRFToken": token})

    assert without.status_code == 400
    assert with_token.status_code == 200
    assert run_count() == runs_before + 1


def test_detail_shows_headers_without_signature(db_app, world, alpha, hook_client):
    first = push(hook_client)

    page = client_for(db_app, world, "viewer").get(
        f"/projects/alpha/webhook-deliveries/{first['delivery']}").get_data(as_text=True)

    assert "x-github-event" in page
    assert PUSH_DELIVERY in page
    assert "signature" not in page.replace("Signature and token headers are never stored", "").lower()
    assert "sha256=" not in page
    # The body comes back indented by two spaces, one key a line.
    assert '\n  &#34;ref&#34;: &#34;refs/heads/main&#34;,\n' in page


def test_detail_cuts_huge_body(db_app, world, alpha):
    body = json.dumps({"commits": [{"message": "x" * 1000} for _ in range(200)]}).encode()
    huge = WebhookDelivery(project_id=alpha.id, forge="github", forge_delivery_id="big", event="push",
                           headers={"x-github-event": "push", "x-hub-signature-256": "sha256=leaked"},
                           body=body, status_code=200, reason="Ignored: test")
    db.session.add(huge)
    db.session.commit()

    page = client_for(db_app, world, "viewer").get(f"/projects/alpha/webhook-deliveries/{huge.id}").get_data(as_text=True)

    assert f"The body is {len(body)} bytes; only the first 65536 characters are shown." in page
    assert page.count("x" * 1000) < 200
    assert "sha256=leaked" not in page
