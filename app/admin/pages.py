"""Administrator pages: users, every API token, the audit log."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.admin import admin
from app.auth import tokens
from app.auth.accounts import AccountError, invite_user, update_user
from app.auth.audit import OUTCOMES, audit
from app.auth.permissions import MAX_ID, Action, requires
from app.extensions import db
from app.models import ApiToken, AuditEntry, User

AUDIT_PER_PAGE = 50
USER_CHANGES = {
    "activate": {"active": True}, "deactivate": {"active": False},
    "grant_admin": {"is_admin": True}, "revoke_admin": {"is_admin": False},
}


def _user(user_id: int) -> User:
    user = db.session.get(User, user_id) if 0 < user_id <= MAX_ID else None
    return user or abort(404, f"User {user_id} not found.")


@admin.get("/admin/users")
@requires(Action.ADMIN)
def users():
    """List users with the invite form."""
    return render_template("admin/users.html", users=db.session.scalars(select(User).order_by(User.username)).all())


@admin.post("/admin/users")
@requires(Action.ADMIN)
def invite():
    """Create a user with a one-time password, shown on the page this once."""
    username = request.form.get("username", "").strip()
    try:
        user, password = invite_user(username, request.form.get("email", "").strip() or None, request.form.get("is_admin") == "on")
    except AccountError as error:
        flash(str(error))
        return render_template("admin/users.html", users=db.session.scalars(select(User).order_by(User.username)).all()), 422
    audit("user_invite", target=f"user {user.username}", detail="administrator" if user.is_admin else None)
    return render_template("admin/users.html", users=db.session.scalars(select(User).order_by(User.username)).all(),
                           invited=user, password=password)


@admin.post("/admin/users/<int:user_id>")
@requires(Action.ADMIN)
def change_user(user_id: int):
    """Activate, deactivate, or set or clear the administrator flag; HTMX gets the row back."""
    user = _user(user_id)
    change = USER_CHANGES.get(request.form.get("change", ""))
    if change is None:
        abort(422, f"Change {request.form.get('change', '')[:50]!r} is invalid: expected one of {', '.join(USER_CHANGES)}.")
    try:
        changes = update_user(user, current_user, **change)
    except AccountError as error:
        abort(409, str(error))
    if changes:
        audit("user_update", target=f"user {user.username}", detail=", ".join(changes))
    if request.headers.get("HX-Request"):
        return render_template("admin/_user_row.html", user=user)
    return redirect(url_for("admin.users"))


@admin.get("/admin/tokens")
@requires(Action.ADMIN)
def all_tokens():
    """List every user's API tokens."""
    found = db.session.scalars(select(ApiToken).order_by(ApiToken.id.desc())).all()
    return render_template("admin/tokens.html", tokens=found, state=tokens.token_state, revoke_endpoint="admin.revoke_any_token")


@admin.post("/admin/tokens/<int:token_id>/revoke")
@requires(Action.ADMIN)
def revoke_any_token(token_id: int):
    """Revoke any user's token."""
    token = db.session.get(ApiToken, token_id) if 0 < token_id <= MAX_ID else None
    if token is None:
        abort(404, f"Token {token_id} not found.")
    if tokens.revoke(token):
        audit("token_revoke", target=f"token {token.prefix}... of user {token.user.username}")
    return redirect(url_for("admin.all_tokens"))


@admin.get("/admin/audit")
@requires(Action.ADMIN)
def audit_log():
    """Show the audit log, newest first, filtered by action, user and outcome."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    filters = {key: request.args.get(key, "").replace("\x00", "")[:100] for key in ("action", "actor", "outcome")}
    if filters["action"]:
        query = query.where(AuditEntry.action == filters["action"])
    if filters["actor"]:
        query = query.where(AuditEntry.actor_name == filters["actor"])
    if filters["outcome"] in OUTCOMES:
        query = query.where(AuditEntry.outcome == filters["outcome"])
    page = max(1, min(request.args.get("page", 1, type=int), 100_000))
    entries = db.session.scalars(query.limit(AUDIT_PER_PAGE + 1).offset((page - 1) * AUDIT_PER_PAGE)).all()
    return render_template("admin/audit.html", entries=entries[:AUDIT_PER_PAGE], filters=filters, page=page,
                           has_next=len(entries) > AUDIT_PER_PAGE, outcomes=OUTCOMES)
