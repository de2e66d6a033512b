"""Signing in and out with a local account."""

import logging

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from app.auth import rate_limit
from app.auth.accounts import find_user
from app.auth.audit import audit
from app.auth.passwords import verify_password
from app.auth.permissions import public
from app.extensions import db, login_manager
from app.models import User
from app.web import web

log = logging.getLogger(__name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    # A deactivated user's open sessions end with their next request.
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.active else None


@web.route("/login", methods=["GET", "POST"])
@public
def login():
    """Show the sign-in form, or sign in with the posted name and password."""
    if request.method == "GET":
        return render_template("auth/login.html")
    # PostgreSQL text cannot hold NUL, and no user name contains one.
    username = request.form.get("username", "")[:100].replace("\x00", "")
    address = request.remote_addr or "unknown"

    wait = rate_limit.retry_after(username, address)
    if wait is not None:
        audit("sign_in", target=f"user {username}", outcome="denied", actor_name=username,
              detail=f"too many failed sign-ins; blocked for {wait} s more")
        flash(f"Too many failed sign-ins. Try again in {wait} seconds.")
        return render_template("auth/login.html", username=username), 429, {"Retry-After": str(wait)}

    user = find_user(username)
    if user is None or not user.active or not verify_password(user.password_hash, request.form.get("password", "")):
        rate_limit.record_failure(username, address)
        reason = "deactivated account" if user is not None and not user.active else "wrong user name or password"
        audit("sign_in", target=f"user {username}", outcome="failure", actor_name=username, detail=reason)
        log.info("failed sign-in for %r from %s", username, address)
        flash("Wrong user name or password.")
        return render_template("auth/login.html", username=username), 401

    rate_limit.reset(username, address)
    login_user(user)
    audit("sign_in", target=f"user {username}", actor=user)
    log.info("user %s signed in", user.id)
    target = request.args.get("next", "")
    return redirect(target if target.startswith("/") and not target.startswith("//") else url_for("web.index"))


@web.post("/logout")
@public
def logout():
    """Sign out."""
    if current_user.is_authenticated:
        audit("sign_out", target=f"user {current_user.username}")
    logout_user()
    return redirect(url_for("web.login"))


# Endpoints open to a user whose password must change: the form that changes it, and signing out.
OPEN_UNTIL_PASSWORD_CHANGE = frozenset({"admin.account", "admin.password", "web.login", "web.logout", "static"})


@web.before_app_request
def require_password_change():
    """Send an invited user to choose a password before anything else: an administrator saw the one-time one."""
    from app.errors import error_response

    # Read from the session, not through current_user: loading current_user in this app-wide
    # hook made test sessions set without the sign-in form lose their user.
    user_id = session.get("_user_id")
    if user_id is None or request.endpoint in OPEN_UNTIL_PASSWORD_CHANGE or request.headers.get("Authorization"):
        return None
    user = db.session.get(User, int(user_id)) if str(user_id).isdigit() else None
    if user is None or not user.password_must_change:
        return None
    if request.blueprint == "api":
        return error_response(403, "Forbidden", "Your password was a one-time password: choose a new one on "
                                                "/account before you use the API.")
    flash("Choose a new password: the one you signed in with was for one use only.")
    return redirect(url_for("admin.account"))
