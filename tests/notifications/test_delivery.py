"""Planning and sending notifications of finished runs: rules, retries, at-most-once sending, the run service hook."""

import os
import subprocess
import sys
import time
from datetime import timedelta

from sqlalchemy import select, text

from app.extensions import db
from app.models import DeliveryAttempt, DeliveryStatus, Membership, NotificationDelivery, RunStatus, User
from app.models._columns import utcnow
from app.notifications import delivery, plan
from app.notifications.channels.webhook import verify_signature
from app.notifications.settings import set_email_enabled
from app.runs import service
from jobs.notifications import deliver_notification, plan_deployment_notifications, plan_run_notifications
from tests.notifications.conftest import RecordingHandler, Reply, queued_job_count, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def deliveries() -> list[NotificationDelivery]:
    db.session.expire_all()
    return list(db.session.scalars(select(NotificationDelivery).order_by(NotificationDelivery.id)))


def send_all() -> None:
    for row in deliveries():
        deliver_notification(row.id)


def test_failed_run_sends_signed_webhook(receiver, add_channel, make_run):
    add_channel("webhook", {"url": receiver.url()}, {"signing_secret": "k"}, events=["run_failed"])
    run = make_run(RunStatus.FAILED)

    assert plan_run_notifications(run.id) == 1
    send_all()

    [row] = deliveries()
    assert row.status == DeliveryStatus.DELIVERED
    assert row.attempt_records[0].response_code == 200
    [request] = receiver.requests
    assert verify_signature("k", request.headers["X-Deno-CI-Timestamp"], request.headers["X-Deno-CI-Signature"],
                            request.body)
    assert request.json()["message"]["url"].endswith(f"/runs/{run.id}")


def test_fixed_run_sends_fixed_not_succeeded(receiver, add_channel, make_run):
    add_channel("teams", {}, {"webhook_url": receiver.url()}, events=["run_fixed", "run_succeeded"])
    make_run(RunStatus.FAILED)
    make_run(RunStatus.CANCELLED)
    fixed = make_run(RunStatus.SUCCESS)

    plan_run_notifications(fixed.id)

    assert [row.event for row in deliveries()] == ["run_fixed"]


def test_success_after_success_is_not_fixed(receiver, add_channel, make_run):
    add_channel("teams", {}, {"webhook_url": receiver.url()}, events=["run_fixed"])
    make_run(RunStatus.SUCCESS)
    again = make_run(RunStatus.SUCCESS)

    plan_run_notifications(again.id)

    assert deliveries() == []


def test_branch_globs_select_runs(receiver, add_channel, make_run):
    add_channel("teams", {}, {"webhook_url": receiver.url()}, events=["run_failed"], branches=["release/*"])

    plan_run_notifications(make_run(RunStatus.FAILED, branch="main").id)
    assert deliveries() == []

    plan_run_notifications(make_run(RunStatus.FAILED, branch="release/1.2").id)
    assert len(deliveries()) == 1


def test_planning_twice_creates_one_delivery(receiver, add_channel, make_run):
    add_channel("teams", {}, {"webhook_url": receiver.url()}, events=["run_failed"])
    run = make_run(RunStatus.FAILED)

    plan_run_notifications(run.id)
    plan_run_notifications(run.id)

    assert len(deliveries()) == 1


def test_retried_job_never_sends_twice(receiver, add_channel, make_run):
    add_channel("teams", {}, {"webhook_url": receiver.url()}, events=["run_failed"])
    plan_run_notifications(make_run(RunStatus.FAILED).id)
    [row] = deliveries()

    first = deliver_notification(row.id)
    second = deliver_notification(row.id)

    assert first == "delivered"
    assert second is None
    assert len(receiver.requests) == 1


def test_job_for_row_being_sent_does_nothing(receiver, add_channel, make_run):
    add_channel("teams", {}, {"webhook_url": receiver.url()}, events=["run_failed"])
    plan_run_notifications(make_run(RunStatus.FAILED).id)
    [row] = deliveries()
    db.session.execute(text("UPDATE notification_deliveries SET status = 'sending'"))
    db.session.commit()

    assert deliver_notification(row.id) is None
    assert receiver.requests == []


def test_retry_after_sets_next_attempt(receiver, add_channel, make_run):
    add_channel("slack", {}, {"webhook_url": receiver.url()}, events=["run_failed"])
    receiver.replies = [Reply(429, "rate_limited", {"Retry-After": "120"})]
    plan_run_notifications(make_run(RunStatus.FAILED).id)
    [row] = deliveries()
    before = utcnow()

    assert deliver_notification(row.id) == "retryable"

    [row] = deliveries()
    assert row.status == DeliveryStatus.RETRYING
    assert timedelta(seconds=119) <= row.next_attempt_at - before <= timedelta(seconds=125)
    assert deliver_notification(row.id) is None
    assert delivery.enqueue_due_deliveries(now=before + timedelta(seconds=60)) == 0
    assert delivery.enqueue_due_deliveries(now=row.next_attempt_at + timedelta(seconds=1)) == 1
    assert deliver_notification(row.id) == "delivered"
    [row] = deliveries()
    assert [attempt.response_code for attempt in row.attempt_records] == [429, 200]
    assert len(receiver.requests) == 2


def test_backoff_doubles_without_retry_after(notify_app):
    assert delivery.retry_delay(1, None) == 30
    assert delivery.retry_delay(3, None) == 120
    assert delivery.retry_delay(2, 7.0) == 7.0
    assert delivery.retry_delay(2, 99999.0) == delivery.MAX_RETRY_DELAY


def test_server_errors_give_up_after_max_attempts(receiver, add_channel, make_run):
    receiver.default = Reply(503, "unavailable")
    add_channel("discord", {}, {"webhook_url": receiver.url()}, events=["run_failed"])
    plan_run_notifications(make_run(RunStatus.FAILED).id)
    [row] = deliveries()

    for _ in range(3):
        deliver_notification(row.id)
        delivery.enqueue_due_deliveries(now=utcnow() + timedelta(hours=2))

    [row] = deliveries()
    assert row.status == DeliveryStatus.FAILED
    assert row.attempts == 3
    assert "gave up after 3 attempts" in row.last_error
    assert len(receiver.requests) == 3


def test_404_fails_without_retry(receiver, add_channel, make_run):
    receiver.default = Reply(404, "no_service")
    add_channel("slack", {}, {"webhook_url": receiver.url()}, events=["run_failed"])
    plan_run_notifications(make_run(RunStatus.FAILED).id)

    send_all()
    queued = delivery.enqueue_due_deliveries(now=utcnow() + timedelta(hours=2))

    [row] = deliveries()
    assert row.status == DeliveryStatus.FAILED
    assert queued == 0
    assert "HTTP 404" in row.last_error


def test_smtp_refusal_fails_and_temporary_error_retries(smtp_server, add_channel, make_run, project):
    refusing = smtp_server(RecordingHandler(rcpt_reply="550 Unknown user"))
    busy = smtp_server(RecordingHandler(data_reply="421 Closing, try later"))
    for name, port in (("refusing", refusing), ("busy", busy)):
        add_channel("email", {"host": "127.0.0.1", "port": port, "security": "none", "from_address": "ci@x.test",
                              "to": ["dev@x.test"], "members": False}, name=name, events=["run_failed"])
    plan_run_notifications(make_run(RunStatus.FAILED).id)

    send_all()

    statuses = {row.channel.name: row.status for row in deliveries()}
    assert statuses == {"refusing": DeliveryStatus.FAILED, "busy": DeliveryStatus.RETRYING}


def test_undecryptable_secret_fails_with_reason(receiver, add_channel, make_run, notify_app):
    add_channel("teams", {}, {"webhook_url": receiver.url()}, events=["run_failed"])
    plan_run_notifications(make_run(RunStatus.FAILED).id)
    saved = notify_app.config["SECRET_KEY"]
    notify_app.config["SECRET_KEY"] = "a different key"
    try:
        send_all()
    finally:
        notify_app.config["SECRET_KEY"] = saved

    [row] = deliveries()
    assert row.status == DeliveryStatus.FAILED
    assert "SECRET_KEY changed" in row.last_error
    assert receiver.requests == []


def test_secrets_are_encrypted_at_rest(add_channel):
    add_channel("slack", {}, {"webhook_url": "http://127.0.0.1:9/services/very-secret-token"})

    stored = db.session.execute(text("SELECT settings::text || coalesce(secrets, '') FROM notification_channels")).scalar()

    assert "very-secret-token" not in stored


def test_member_who_turned_email_off_gets_none(smtp_server, add_channel, make_run, project):
    handler = RecordingHandler()
    port = smtp_server(handler)
    for name in ("ada", "bob"):
        user = User(username=name, email=f"{name}@x.test")
        db.session.add(user)
        db.session.flush()
        db.session.add(Membership(user_id=user.id, project_id=project.id, role="developer"))
    db.session.commit()
    bob = db.session.scalar(select(User).where(User.username == "bob"))
    set_email_enabled(bob.id, project.id, False)
    add_channel("email", {"host": "127.0.0.1", "port": port, "security": "none", "from_address": "ci@x.test",
                          "to": ["BOB@x.test", "team@x.test"], "members": True}, events=["run_failed"])

    plan_run_notifications(make_run(RunStatus.FAILED).id)
    send_all()

    assert sorted(row.recipient for row in deliveries()) == ["ada@x.test", "team@x.test"]
    assert sorted(message["to"][0] for message in handler.messages) == ["ada@x.test", "team@x.test"]


def test_pipeline_notifications_use_only_project_channels(receiver, smtp_server, add_channel, make_run, project):
    port = smtp_server(RecordingHandler())
    member = User(username="ada", email="ada@x.test")
    db.session.add(member)
    db.session.flush()
    db.session.add(Membership(user_id=member.id, project_id=project.id))
    db.session.commit()
    add_channel("webhook", {"url": receiver.url()}, {"signing_secret": "k"}, name="ops-hook")
    add_channel("email", {"host": "127.0.0.1", "port": port, "security": "none", "from_address": "ci@x.test",
                          "members": False}, name="mail")
    plan_doc = {"notifications": [
        {"on": ["failure"], "channel": "ops-hook"},
        {"on": ["failure"], "channel": "https://attacker.example/collect"},
        {"on": ["failure"], "channel": "email", "to": ["ada@x.test", "outsider@evil.test"]},
        {"on": ["failure"], "channel": "webhook", "to": "https://attacker.example/collect"},
        {"on": ["success"], "channel": "ops-hook"},
    ]}

    plan_run_notifications(make_run(RunStatus.FAILED, plan=plan_doc).id)

    rows = deliveries()
    sent = [(row.channel.name, row.recipient) for row in rows if row.status == DeliveryStatus.PENDING]
    assert sorted(sent, key=str) == sorted([("mail", "ada@x.test"), ("ops-hook", None)], key=str)
    rejected = [row.last_error for row in rows if row.status == DeliveryStatus.FAILED]
    assert len(rejected) == 3
    assert any("'https://attacker.example/collect' is not a channel" in reason for reason in rejected)
    assert any("'outsider@evil.test' is not a project member" in reason for reason in rejected)
    assert any("'to' is accepted only for email" in reason for reason in rejected)


def test_deployment_event_notifies_matching_rules(receiver, add_channel, project):
    add_channel("teams", {}, {"webhook_url": receiver.url()}, events=["deployment_failed"])

    queued = plan_deployment_notifications(project.id, "deployment_failed", 5,
                                           {"environment": "production", "status": "failed", "branch": "main"})
    plan_deployment_notifications(project.id, "deployment_failed", 5, {"environment": "production"})
    send_all()

    assert queued == 1
    [row] = deliveries()
    assert row.status == DeliveryStatus.DELIVERED
    assert "production" in receiver.requests[0].body.decode()


def test_run_service_queues_notification_when_run_ends(make_run, project, notify_app):
    from app.models import Run

    for end in ("fail", "cancel"):
        run = Run(project_id=project.id, number=100 + len(end), trigger="cli", event="push", event_data={})
        db.session.add(run)
        db.session.commit()
        before = queued_job_count()
        if end == "fail":
            service.fail_run(run.id, "The pipeline file is missing.")
        else:
            service.cancel_run(run.id, "cancelled by a test")
        assert queued_job_count() == before + 1
        assert db.session.get(Run, run.id).status in (RunStatus.ERROR, RunStatus.CANCELLED)


def test_run_ends_when_notification_queue_is_unreachable(project, notify_app):
    from app.models import Run
    from tests.notifications.conftest import free_port

    run = Run(project_id=project.id, number=1, trigger="cli", event="push", event_data={})
    db.session.add(run)
    db.session.commit()
    saved = notify_app.config["REDIS_URL"]
    notify_app.config["REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"
    try:
        assert service.cancel_run(run.id, "stop") is True
    finally:
        notify_app.config["REDIS_URL"] = saved

    db.session.expire_all()
    assert db.session.get(Run, run.id).status == RunStatus.CANCELLED


def test_hanging_receiver_neither_slows_nor_fails_run(receiver, add_channel, project, notify_app):
    """Through a real RQ worker: the run ends at once, and the worker records the timeout."""
    from app.models import Run

    receiver.default = Reply(delay=30)
    add_channel("teams", {}, {"webhook_url": receiver.url()}, events=["run_failed"])
    run = Run(project_id=project.id, number=1, trigger="cli", event="push", branch="main", event_data={})
    db.session.add(run)
    db.session.commit()
    worker = subprocess.Popen([sys.executable, "-m", "app.notifications.worker"], cwd=ROOT,
                              env={**os.environ, "DENO_CI_NOTIFY_TIMEOUT": "1"})
    try:
        started = time.monotonic()
        service.fail_run(run.id, "The pipeline file is missing.")
        ending_took = time.monotonic() - started

        row = wait_until(lambda: next((r for r in deliveries() if r.status == DeliveryStatus.RETRYING), None))
    finally:
        worker.terminate()
        try:
            worker.wait(10)
        except subprocess.TimeoutExpired:
            # This test is about the delivery, not about how fast the worker stops: on a busy
            # machine RQ's warm shutdown took longer than 10 s once.
            worker.kill()
            worker.wait()

    assert ending_took < 5
    assert db.session.get(Run, run.id).status == RunStatus.ERROR
    attempt = db.session.scalar(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == row.id))
    assert "Timed out after 1 s" in attempt.error
    assert len(receiver.requests) == 1


def test_lost_send_fails_without_resending(receiver, add_channel, make_run):
    add_channel("teams", {}, {"webhook_url": receiver.url()}, events=["run_failed"])
    plan_run_notifications(make_run(RunStatus.FAILED).id)
    db.session.execute(text("UPDATE notification_deliveries SET status = 'sending'"))
    db.session.commit()

    delivery.enqueue_due_deliveries(now=utcnow() + timedelta(hours=1))

    [row] = deliveries()
    assert row.status == DeliveryStatus.FAILED
    assert "may have been sent" in row.last_error
    assert receiver.requests == []


def test_rule_targets_skip_disabled_channels(receiver, add_channel, make_run):
    channel = add_channel("teams", {}, {"webhook_url": receiver.url()}, events=["run_failed"])
    channel.enabled = False
    db.session.commit()

    assert plan.rule_targets(channel.project_id, ["run_failed"], "main") == []
