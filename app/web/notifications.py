"""A project's notification settings page: channels, rules, the person's email choice and the delivery log."""

import redis
from flask import abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from app.extensions import db
from app.models import DeliveryStatus, Membership, NotificationChannel, NotificationRule, Project, Role
from app.notifications import settings as notify_settings
from app.notifications.channels import channel_kinds
from app.notifications.delivery import recent_deliveries
from app.notifications.events import EVENT_LABELS
from app.web import web

ACTIVE_STATUSES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.RETRYING)


def _project(name: str) -> Project:
    return db.session.scalar(select(Project).where(Project.name == name)) or abort(404, f"Project {name!r} not found.")


def _can_manage(project: Project) -> bool:
    # TODO: replace with the shared role check once app/auth provides one; until then admins and
    # the project's admins and developers manage its notifications.
    if current_user.is_admin:
        return True
    role = db.session.scalar(select(Membership.role).where(Membership.user_id == current_user.id,
                                                           Membership.project_id == project.id))
    return role in (Role.ADMIN, Role.DEVELOPER)


def _managed_project(name: str) -> Project:
    project = _project(name)
    if not _can_manage(project):
        abort(403, f"Managing the notifications of {name!r} needs the developer or admin role in the project.")
    return project


def _context(project: Project, **extra) -> dict:
    channels = db.session.scalars(select(NotificationChannel).where(NotificationChannel.project_id == project.id)
                                  .order_by(NotificationChannel.name)).all()
    rules = db.session.scalars(select(NotificationRule).where(NotificationRule.project_id == project.id)
                               .order_by(NotificationRule.id)).all()
    deliveries = recent_deliveries(project.id)
    return {
        "project": project, "channels": channels, "rules": rules, "deliveries": deliveries,
        "descriptions": {channel.id: notify_settings.describe_channel(channel) for channel in channels},
        "kinds": channel_kinds(), "event_labels": EVENT_LABELS, "can_manage": _can_manage(project),
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
@login_required
def notification_settings(name: str):
    """Show the project's channels, rules, the person's email choice and recent deliveries."""
    project = _project(name)
    return render_template("notifications/settings.html", **_context(project))


@web.get("/projects/<name>/notifications/channel-fields")
@login_required
def notification_channel_fields(name: str):
    """Render the settings fields of one channel kind, for the add-channel form."""
    _managed_project(name)
    kind = channel_kinds().get(request.args.get("kind", "")) or abort(404, "Unknown channel kind.")
    return render_template("notifications/_channel_fields.html", kind=kind, form={})


@web.post("/projects/<name>/notifications/channels")
@login_required
def notification_channel_create(name: str):
    """Add a channel; on invalid input, show the form again with every problem."""
    project = _managed_project(name)
    form = request.form.to_dict()
    try:
        notify_settings.add_channel(project, form.get("name", "").strip(), form.get("kind", ""), form,
                                          current_user.id)
    except notify_settings.NotificationSettingsError as error:
        safe_form = {key: value for key, value in form.items() if not _is_secret_field(form.get("kind"), key)}
        return _respond(project, "_channels", 422, form=safe_form, problems=error.problems)
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
@login_required
def notification_channel_delete(name: str, channel_id: int):
    """Delete a channel and its rules."""
    project = _managed_project(name)
    try:
        notify_settings.delete_channel(project, channel_id)
    except LookupError as error:
        abort(404, str(error))
    return _with_trigger(_respond(project, "_channels"), "channels-changed")


@web.post("/projects/<name>/notifications/channels/<int:channel_id>/test")
@login_required
def notification_channel_test(name: str, channel_id: int):
    """Queue a test message to a channel; the delivery log shows how it went."""
    project = _managed_project(name)
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
@login_required
def notification_rule_create(name: str):
    """Add a rule; on invalid input, show the form again with every problem."""
    project = _managed_project(name)
    try:
        notify_settings.add_rule(project, request.form.get("channel_id"), request.form.getlist("events"),
                                       request.form.get("branches", ""))
    except notify_settings.NotificationSettingsError as error:
        return _respond(project, "_rules", 422, problems=error.problems, form=request.form.to_dict())
    return _respond(project, "_rules")


@web.post("/projects/<name>/notifications/rules/<int:rule_id>/delete")
@login_required
def notification_rule_delete(name: str, rule_id: int):
    """Delete one rule."""
    project = _managed_project(name)
    try:
        notify_settings.delete_rule(project, rule_id)
    except LookupError as error:
        abort(404, str(error))
    return _respond(project, "_rules")


@web.post("/projects/<name>/notifications/preference")
@login_required
def notification_preference(name: str):
    """Turn the signed-in person's email notifications for the project on or off."""
    project = _project(name)
    notify_settings.set_email_enabled(current_user.id, project.id, request.form.get("email_enabled") == "on")
    return _respond(project, "_preference")


@web.get("/projects/<name>/notifications/deliveries")
@login_required
def notification_deliveries(name: str):
    """Render the delivery log alone; it polls itself while a delivery is still going."""
    return render_template("notifications/_deliveries.html", **_context(_project(name)))
