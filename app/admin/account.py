"""One's own account: API tokens and password."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from app.admin import admin
from app.auth import tokens
from app.auth.accounts import AccountError, change_password
from app.auth.audit import audit
from app.auth.permissions import MAX_ID, signed_in
from app.extensions import db
from app.models import ApiToken


def _render(status: int = 200, **extra):
    own = db.session.scalars(select(ApiToken).where(ApiToken.user_id == current_user.id).order_by(ApiToken.id.desc())).all()
    return render_template("admin/account.html", tokens=own, state=tokens.token_state, scopes=list(tokens.Scope),
                           revoke_endpoint="admin.revoke_own_token", **extra), status


@admin.get("/account")
@signed_in
def account():
    """Show the user's tokens and the password form."""
    return _render()


@admin.post("/account/tokens")
@signed_in
def create_own_token():
    """Create a token; its value is shown on the answer page only."""
    try:
        days = int(request.form.get("expires_in_days", tokens.DEFAULT_EXPIRY_DAYS))
        token, value = tokens.create_token(current_user, request.form.get("name", ""), request.form.get("scope", ""), days)
    except ValueError as error:
        flash(str(error) if "invalid" in str(error) or "missing" in str(error) else "Expiry must be a whole number of days.")
        return _render(422)
    audit("token_create", target=f"token {token.prefix}... of user {current_user.username}", detail=f"scope {token.scope}, {days} days")
    return _render(new_token=value)


@admin.post("/account/tokens/<int:token_id>/revoke")
@signed_in
def revoke_own_token(token_id: int):
    """Revoke one of the user's own tokens."""
    token = db.session.get(ApiToken, token_id) if 0 < token_id <= MAX_ID else None
    if token is None or token.user_id != current_user.id:
        abort(404, f"Token {token_id} not found.")
    if tokens.revoke(token):
        audit("token_revoke", target=f"token {token.prefix}... of user {current_user.username}")
    return redirect(url_for("admin.account"))


@admin.post("/account/password")
@signed_in
def password():
    """Change the user's password."""
    try:
        change_password(current_user, request.form.get("current", ""), request.form.get("new", ""))
    except AccountError as error:
        audit("password_change", target=f"user {current_user.username}", outcome="failure", detail=str(error))
        flash(str(error))
        return _render(422)
    audit("password_change", target=f"user {current_user.username}")
    flash("Password changed.")
    return redirect(url_for("admin.account"))
