"""The project's notification settings page and its HTMX endpoints."""

from sqlalchemy import select

from app.auth.passwords import hash_password
from app.extensions import db
from app.models import AuditEntry, DeliveryStatus, Membership, NotificationChannel, NotificationDelivery, NotificationRule, RunStatus, User
from app.notifications.crypto import decrypt_secrets
from jobs.notifications import deliver_notification, plan_run_notifications
from tests.notifications.conftest import Reply, queued_job_count

HX = {"HX-Request": "true"}


def test_add_channel_encrypts_secret_and_renders_fragment(client, project, receiver):
    response = client.post("/projects/web/notifications/channels", headers=HX, data={
        "name": "builds", "kind": "slack", "webhook_url": receiver.url("/services/secret-part")})

    assert response.status_code == 200
    assert response.headers["HX-Trigger"] == "channels-changed"
    page = response.get_data(as_text=True)
    assert page.startswith('<section id="notification-channels">')
    assert "builds" in page
    assert "secret-part" not in page
    channel = db.session.scalar(select(NotificationChannel))
    assert "secret-part" not in channel.secrets
    assert decrypt_secrets(client.application.config["SECRET_KEY"], channel.secrets)["webhook_url"].endswith("secret-part")
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "notification_channel_create"))
    assert entry.target == f"channel {channel.id} (builds) of project web"
    assert entry.detail == "kind slack"


def test_invalid_channel_lists_every_problem(client, project):
    response = client.post("/projects/web/notifications/channels", headers=HX, data={
        "name": "bad name!", "kind": "email", "port": "twenty", "password": "hunter2"})

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Channel name &#39;bad name!&#39; is invalid" in page
    assert "SMTP port must be a whole number" in page
    assert "SMTP host is missing." in page
    assert "hunter2" not in page
    assert db.session.scalar(select(NotificationChannel)) is None


def test_add_and_delete_rule(client, project, add_channel):
    channel = add_channel("teams", {}, {"webhook_url": "http://127.0.0.1:9/x"})

    response = client.post("/projects/web/notifications/rules", headers=HX, data={
        "channel_id": channel.id, "events": ["run_failed", "run_fixed"], "branches": "main, release/*"})

    assert response.status_code == 200
    rule = db.session.scalar(select(NotificationRule))
    assert rule.events == ["run_failed", "run_fixed"]
    assert rule.branches == ["main", "release/*"]
    assert "Run fixed" in response.get_data(as_text=True)
    response = client.post(f"/projects/web/notifications/rules/{rule.id}/delete", headers=HX)
    assert response.status_code == 200
    assert db.session.scalar(select(NotificationRule)) is None
    actions = db.session.scalars(select(AuditEntry.action).where(AuditEntry.action.startswith("notification_"))
                                 .order_by(AuditEntry.id)).all()
    assert actions == ["notification_rule_create", "notification_rule_delete"]


def test_rule_with_unknown_event_is_rejected(client, project, add_channel):
    channel = add_channel("teams", {}, {"webhook_url": "http://127.0.0.1:9/x"})

    response = client.post("/projects/web/notifications/rules", headers=HX,
                           data={"channel_id": channel.id, "events": ["run_exploded"]})

    assert response.status_code == 422
    assert "Event &#39;run_exploded&#39; is invalid" in response.get_data(as_text=True)


def test_test_send_queues_and_delivers(client, project, add_channel, receiver):
    channel = add_channel("discord", {}, {"webhook_url": receiver.url()})

    response = client.post(f"/projects/web/notifications/channels/{channel.id}/test", headers=HX)

    assert response.status_code == 200
    assert 'hx-trigger="every 2s"' in response.get_data(as_text=True)
    assert queued_job_count() == 1
    row = db.session.scalar(select(NotificationDelivery))
    assert deliver_notification(row.id) == "delivered"
    assert "Test notification for web" in receiver.requests[0].body.decode()


def test_failure_reason_visible_on_settings_page(client, project, add_channel, make_run, receiver):
    receiver.default = Reply(401, "invalid signature")
    add_channel("webhook", {"url": receiver.url()}, {"signing_secret": "wrong"}, name="ops", events=["run_failed"])
    plan_run_notifications(make_run(RunStatus.FAILED).id)
    row = db.session.scalar(select(NotificationDelivery))
    deliver_notification(row.id)

    page = client.get("/projects/web/notifications").get_data(as_text=True)

    assert db.session.get(NotificationDelivery, row.id).status == DeliveryStatus.FAILED
    assert "HTTP 401 from the receiver" in page
    assert "check the secret" in page
    assert "invalid signature" in page


def test_person_turns_email_off(client, project, admin):
    response = client.post("/projects/web/notifications/preference", headers=HX, data={})

    assert response.status_code == 200
    assert "Email is off for you." in response.get_data(as_text=True)
    response = client.post("/projects/web/notifications/preference", headers=HX, data={"email_enabled": "on"})
    assert "Email is on for you." in response.get_data(as_text=True)


def test_viewer_cannot_add_channel(db_app, project):
    viewer = User(username="val", password_hash=hash_password("viewer-password"))
    db.session.add(viewer)
    db.session.flush()
    db.session.add(Membership(user_id=viewer.id, project_id=project.id, role="viewer"))
    db.session.commit()
    browser = db_app.test_client()
    browser.post("/login", data={"username": "val", "password": "viewer-password"})

    page = browser.get("/projects/web/notifications")
    response = browser.post("/projects/web/notifications/channels", headers=HX,
                            data={"name": "x", "kind": "teams", "webhook_url": "http://127.0.0.1:9/x"})

    assert page.status_code == 200
    assert "Add a channel" not in page.get_data(as_text=True)
    assert response.status_code == 403


def test_developer_cannot_delete_channel(db_app, project, add_channel):
    channel = add_channel("teams", {}, {"webhook_url": "http://127.0.0.1:9/x"})
    developer = User(username="dev", password_hash=hash_password("developer-password"))
    db.session.add(developer)
    db.session.flush()
    db.session.add(Membership(user_id=developer.id, project_id=project.id, role="developer"))
    db.session.commit()
    browser = db_app.test_client()
    browser.post("/login", data={"username": "dev", "password": "developer-password"})

    response = browser.post(f"/projects/web/notifications/channels/{channel.id}/delete", headers=HX)

    assert response.status_code == 403
    assert db.session.get(NotificationChannel, channel.id) is not None
    denied = db.session.scalar(select(AuditEntry).where(AuditEntry.outcome == "denied"))
    assert denied.action == "manage_project"
    assert denied.actor_name == "dev"
