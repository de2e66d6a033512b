"""A project's notification settings page: channels, rules, the person's email choice and the delivery log."""

import redis
from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.auth.audit import audit
from app.auth.permissions import Action, can, project_by_name, requires
from app.extensions import db
from app.models import DeliveryStatus, NotificationChannel, NotificationRule, Project
from app.notifications import settings as notify_settings
from app.notifications.channels import channel_kinds
from app.notifications.delivery import recent_deliveries
from app.notifications.events import EVENT_LABELS
from app.web import web

ACTIVE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.RETRYING)


def _context(project: Project, **extra) -> dict:
    channels = db.session.scalars(select(NotificationChannel).where(NotificationChannel.project_id == project.id)
                                  .order_by(NotificationChannel.name)).all()
    rules = db.session.scalars(select(NotificationRule).where(NotificationRule.project_id == project.id)
                               .order_by(NotificationRule.id)).all()
    deliveries = recent_deliveries(project.id)
    return {
        "project": project, "channels": channels, "rules": rules, "deliveries": deliveries,
        "descriptions": {channel.id: notify_settings.describe_channel(channel) for channel in channels},
        "kinds": channel_kinds(), "event_labels": EVENT_LABELS,
        "can_manage": can(current_user, Action.MANAGE_PROJECT, project),
        "email_enabled": notify_settings.email_enabled(current_user.id, project.id),
        "polling": any(delivery.status in ACTIVE_STATUSES for delivery in deliveries),
        "form": {}, "problems": [], **extra,
    }


def _respond(project: Project, fragment: str, status: int = 200, **extra):
    if request.headers.get("HX-Request") != "true":
        if status >= 400:
            return render_template("notifications/settings.html", **_context(project, **extra)), status
        return redirect(url_for("web.notification_settings", name=project.name))
    return render_template(f"notifications/{fragment}.html", **_context(project, **extra)), status


@web.get("/projects/<name>/notifications")
@requires(Action.VIEW_PROJECT, project_by_name)
def notification_settings(name: str):
    """Show the project's channels, rules, the person's email choice and recent deliveries."""
    project = project_by_name(name)
    return render_template("notifications/settings.html", **_context(project))


@web.get("/projects/<name>/notifications/channel-fields")
@requires(Action.MANAGE_PROJECT, project_by_name)
def notification_channel_fields(name: str):
    """Render the settings fields of one channel kind, for the add-channel form."""
    kind = channel_kinds().get(request.args.get("kind", "")) or abort(404, "Unknown channel kind.")
    return render_template("notifications/_channel_fields.html", kind=kind, form={})


@web.post("/projects/<name>/notifications/channels")
@requires(Action.MANAGE_PROJECT, project_by_name)
def notification_channel_create(name: str):
    """Add a channel; on invalid input, show the form again with every problem."""
    project = project_by_name(name)
    form = request.form.to_dict()
    try:
        channel = notify_settings.add_channel(project, form.get("name", "").strip(), form.get("kind", ""), form,
                                              current_user.id)
    except notify_settings.NotificationSettingsError as error:
        safe_form = {key: value for key, value in form.items() if not _is_secret_field(form.get("kind"), key)}
        return _respond(project, "_channels", 422, form=safe_form, problems=error.problems)
    audit("notification_channel_create", target=f"channel {channel.id} ({channel.name}) of project {name}",
          detail=f"kind {channel.kind}")

    response = _respond(project, "_channels")
    return _with_trigger(response, "channels-changed")


def _is_secret_field(kind: str | None, field_name: str) -> bool:
    kind_class = channel_kinds().get(kind or "")
    return bool(kind_class) and any(item.secret and item.name == field_name for item in kind_class.fields)


def _with_trigger(response, event: str):
    if isinstance(response, tuple):
        body, status = response
        return body, status, {"HX-Trigger": event}
    return response


@web.post("/projects/<name>/notifications/channels/<int:channel_id>/delete")
@requires(Action.MANAGE_PROJECT, project_by_name)
def notification_channel_delete(name: str, channel_id: int):
    """Delete a channel and its rules."""
    project = project_by_name(name)
    try:
        notify_settings.delete_channel(project, channel_id)
    except LookupError as error:
        abort(404, str(error))
    audit("notification_channel_delete", target=f"channel {channel_id} of project {name}")

    return _with_trigger(_respond(project, "_channels"), "channels-changed")


@web.post("/projects/<name>/notifications/channels/<int:channel_id>/test")
@requires(Action.MANAGE_PROJECT, project_by_name)
def notification_channel_test(name: str, channel_id: int):
    """Queue a test message to a channel; the delivery log shows how it went."""
    project = project_by_name(name)
    try:
        notify_settings.send_test(project, channel_id, current_user)
    except LookupError as error:
        abort(404, str(error))
    except notify_settings.NotificationSettingsError as error:
        return _respond(project, "_deliveries", 422, problems=error.problems)
    except redis.RedisError as error:
        return _respond(project, "_deliveries", 503, problems=[f"Cannot queue the test message: Redis is unreachable ({error})."])
    return _respond(project, "_deliveries")


@web.post("/projects/<name>/notifications/rules")
@requires(Action.MANAGE_PROJECT, project_by_name)
def notification_rule_create(name: str):
    """Add a rule; on invalid input, show the form again with every problem."""
    project = project_by_name(name)
    try:
        rule = notify_settings.add_rule(project, request.form.get("channel_id"), request.form.getlist("events"),
                                        request.form.get("branches", ""))
    except notify_settings.NotificationSettingsError as error:
        return _respond(project, "_rules", 422, problems=error.problems, form=request.form.to_dict())
    audit("notification_rule_create", target=f"rule {rule.id} of project {name}",
          detail=f"channel {rule.channel_id}, events {', '.join(rule.events)}")

    return _respond(project, "_rules")


@web.post("/projects/<name>/notifications/rules/<int:rule_id>/delete")
@requires(Action.MANAGE_PROJECT, project_by_name)
def notification_rule_delete(name: str, rule_id: int):
    """Delete one rule."""
    project = project_by_name(name)
    try:
        notify_settings.delete_rule(project, rule_id)
    except LookupError as error:
        abort(404, str(error))
    audit("notification_rule_delete", target=f"rule {rule_id} of project {name}")

    return _respond(project, "_rules")


@web.post("/projects/<name>/notifications/preference")
@requires(Action.VIEW_PROJECT, project_by_name)
def notification_preference(name: str):
    """Turn the signed-in person's email notifications for the project on or off."""
    project = project_by_name(name)
    notify_settings.set_email_enabled(current_user.id, project.id, request.form.get("email_enabled") == "on")
    return _respond(project, "_preference")


@web.get("/projects/<name>/notifications/deliveries")
@requires(Action.VIEW_PROJECT, project_by_name)
def notification_deliveries(name: str):
    """Render the delivery log alone; it polls itself while a delivery is still going."""
    return render_template("notifications/_deliveries.html", **_context(project_by_name(name)))
